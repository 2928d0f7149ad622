//! How one obs column becomes concept columns, stored with a model so that
//! new data and user edits (`--set column=value`) are encoded identically.

use std::ops::Range;

use ndarray::ArrayViewMut2;
use serde::{Deserialize, Serialize};

use super::Result;
use super::obs_view::{ObsView, parse_bool, same_category};
use crate::CoreError;

/// Whether a concept is a hard (0/1) label or a soft value in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConceptKind {
    Hard,
    Soft,
}

/// The encoding of one source column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConceptEncoding {
    /// One 0/1 column `{col}={category}` per category, in category order.
    OneHot { categories: Vec<String> },
    /// A two-category column as one 0/1 column `{col}={category}` that is 1
    /// exactly for `category` (the second category) and 0 for `other`. The
    /// reference implementation names this column after the second category
    /// but stores the indicator of the first; here name and value agree.
    Binary { category: String, other: String },
    /// A boolean column as one column `{col}`, 1 for true.
    Bool,
    /// A numeric column holding only 0 and 1, as one column `{col}`.
    Indicator,
    /// A numeric column min–max scaled: `(v − min) / (max − min)`.
    Soft { min: f64, max: f64 },
}

/// One source column and the concept columns it became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptGroup {
    /// The obs column.
    pub column: String,
    pub encoding: ConceptEncoding,
    /// Its concept columns within the concept matrix.
    pub columns: Range<usize>,
}

impl ConceptGroup {
    pub fn kind(&self) -> ConceptKind {
        match self.encoding {
            ConceptEncoding::Soft { .. } => ConceptKind::Soft,
            _ => ConceptKind::Hard,
        }
    }

    /// Number of concept columns (`columns.len()`, derived from the encoding).
    pub fn width(&self) -> usize {
        match &self.encoding {
            ConceptEncoding::OneHot { categories } => categories.len(),
            _ => 1,
        }
    }

    /// Names of the concept columns: `{col}={category}` for categorical
    /// encodings, `{col}` otherwise.
    pub fn names(&self) -> Vec<String> {
        match &self.encoding {
            ConceptEncoding::OneHot { categories } => categories
                .iter()
                .map(|c| format!("{}={c}", self.column))
                .collect(),
            ConceptEncoding::Binary { category, .. } => vec![format!("{}={category}", self.column)],
            _ => vec![self.column.clone()],
        }
    }

    /// Categories in concept order (`[other, category]` for binary), or
    /// `None` for non-categorical encodings.
    fn category_list(&self) -> Option<Vec<String>> {
        match &self.encoding {
            ConceptEncoding::OneHot { categories } => Some(categories.clone()),
            ConceptEncoding::Binary { category, other } => {
                Some(vec![other.clone(), category.clone()])
            }
            _ => None,
        }
    }

    fn value_error(&self, value: &str, reason: impl Into<String>) -> CoreError {
        CoreError::InvalidConcept {
            column: self.column.clone(),
            reason: format!("cannot set it to `{value}`: {}", reason.into()),
        }
    }

    /// The concept values that `--set column=value` means for this group:
    /// a category name (one-hot / binary), `true/false/1/0` (boolean and
    /// indicator), or a number on the column's original scale (soft), scaled
    /// with the stored minimum and maximum. Soft values outside the range
    /// seen in training are allowed and come back unclipped (below 0 or
    /// above 1): extrapolating a dose is the caller's decision.
    pub fn encode_value(&self, value: &str) -> Result<Vec<f32>> {
        if let Some(categories) = self.category_list() {
            let Some(hit) = categories.iter().position(|c| same_category(c, value)) else {
                return Err(CoreError::UnknownCategory {
                    column: self.column.clone(),
                    value: value.to_owned(),
                    valid: categories,
                });
            };
            return Ok(match self.encoding {
                ConceptEncoding::Binary { .. } => vec![hit as f32],
                _ => (0..categories.len())
                    .map(|i| if i == hit { 1.0 } else { 0.0 })
                    .collect(),
            });
        }
        match self.encoding {
            ConceptEncoding::Bool | ConceptEncoding::Indicator => match parse_bool(value) {
                Some(b) => Ok(vec![if b { 1.0 } else { 0.0 }]),
                None => Err(self.value_error(value, "expected true, false, 1 or 0")),
            },
            ConceptEncoding::Soft { min, max } => match value.trim().parse::<f64>() {
                // Scaled to f32, a finite number can still overflow (1e39).
                Ok(v) if v.is_finite() && (((v - min) / (max - min)) as f32).is_finite() => {
                    Ok(vec![((v - min) / (max - min)) as f32])
                }
                _ => Err(self.value_error(value, "expected a finite number")),
            },
            _ => Err(self.value_error(value, "unsupported encoding")),
        }
    }

    fn mismatch(&self, view: &ObsView) -> CoreError {
        let stored = match self.encoding {
            ConceptEncoding::OneHot { .. } | ConceptEncoding::Binary { .. } => "categorical",
            ConceptEncoding::Bool => "boolean",
            ConceptEncoding::Indicator => "0/1 indicator",
            ConceptEncoding::Soft { .. } => "soft (numeric)",
        };
        CoreError::InvalidConcept {
            column: self.column.clone(),
            reason: format!(
                "encoded as a {stored} concept but the column is {}",
                view.kind()
            ),
        }
    }

    /// Writes this group's columns of every row into `values` / `observed`
    /// (views of exactly this group's columns). A missing entry leaves value
    /// 0 and observed 0; a category the encoding does not know, or a number
    /// an indicator cannot hold, is an error naming it.
    pub(super) fn encode_rows(
        &self,
        view: &ObsView,
        mut values: ArrayViewMut2<'_, f32>,
        mut observed: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        match (&self.encoding, view) {
            (
                ConceptEncoding::OneHot { .. } | ConceptEncoding::Binary { .. },
                ObsView::Categories { categories, codes },
            ) => {
                let known = self.category_list().unwrap_or_default();
                // Each of the column's categories mapped to its concept slot.
                let slots: Vec<Option<usize>> = categories
                    .iter()
                    .map(|c| known.iter().position(|k| same_category(k, c)))
                    .collect();
                let binary = matches!(self.encoding, ConceptEncoding::Binary { .. });
                for (row, code) in codes.iter().enumerate() {
                    let Some(code) = code else { continue };
                    let Some(slot) = slots[*code] else {
                        return Err(CoreError::UnknownCategory {
                            column: self.column.clone(),
                            value: categories[*code].clone(),
                            valid: known,
                        });
                    };
                    observed.row_mut(row).fill(1.0);
                    if binary {
                        values[(row, 0)] = slot as f32;
                    } else {
                        values[(row, slot)] = 1.0;
                    }
                }
                Ok(())
            }
            (ConceptEncoding::Bool | ConceptEncoding::Indicator, ObsView::Bool(v)) => {
                for (row, b) in v.iter().enumerate() {
                    if let Some(b) = b {
                        values[(row, 0)] = if *b { 1.0 } else { 0.0 };
                        observed[(row, 0)] = 1.0;
                    }
                }
                Ok(())
            }
            (ConceptEncoding::Bool | ConceptEncoding::Indicator, ObsView::Numbers(v)) => {
                for (row, x) in v.iter().enumerate() {
                    let Some(x) = x else { continue };
                    if *x != 0.0 && *x != 1.0 {
                        return Err(CoreError::InvalidConcept {
                            column: self.column.clone(),
                            reason: format!(
                                "a hard numeric concept must hold only 0 and 1, found {x} in row {row} (list the column as soft to min-max scale it)"
                            ),
                        });
                    }
                    values[(row, 0)] = *x as f32;
                    observed[(row, 0)] = 1.0;
                }
                Ok(())
            }
            (ConceptEncoding::Soft { min, max }, ObsView::Numbers(_) | ObsView::Bool(_)) => {
                let numbers: Vec<Option<f64>> = match view {
                    ObsView::Numbers(v) => v.clone(),
                    ObsView::Bool(v) => v
                        .iter()
                        .map(|b| b.map(|b| f64::from(u8::from(b))))
                        .collect(),
                    ObsView::Categories { .. } => Vec::new(),
                };
                for (row, x) in numbers.iter().enumerate() {
                    if let Some(x) = x {
                        values[(row, 0)] = ((x - min) / (max - min)) as f32;
                        observed[(row, 0)] = 1.0;
                    }
                }
                Ok(())
            }
            _ => Err(self.mismatch(view)),
        }
    }
}
