//! Concept matrices from obs columns (cleaned up):
//! hard concepts (categorical one-hot, binary, boolean, 0/1 indicator) first,
//! then soft ones (min–max scaled numbers), each with an observed-mask so
//! that missing annotations are left out of the concept loss.

use std::collections::HashSet;

use ndarray::{Array2, s};
use serde::{Deserialize, Serialize};

use super::encoding::{ConceptEncoding, ConceptGroup, ConceptKind};
use super::obs_view::{ObsView, obs_column, view};
use super::{Result, invalid};
use crate::{CoreError, Frame};

/// Concept values of a set of cells and how they were encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concepts {
    /// One name per concept column (`{col}={category}` or `{col}`).
    pub names: Vec<String>,
    /// `cells × concepts`; 0 where missing.
    pub values: Array2<f32>,
    /// `cells × concepts`; 1 where the value is annotated, 0 where missing.
    pub observed: Array2<f32>,
    pub kinds: Vec<ConceptKind>,
    /// The source columns, hard ones first, in the order listed.
    pub groups: Vec<ConceptGroup>,
}

impl Concepts {
    /// Number of concept columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of hard concept columns (they come first).
    pub fn n_hard(&self) -> usize {
        self.kinds
            .iter()
            .filter(|k| **k == ConceptKind::Hard)
            .count()
    }

    /// The group built from obs column `column`.
    pub fn group(&self, column: &str) -> Option<&ConceptGroup> {
        self.groups.iter().find(|g| g.column == column)
    }
}

fn concept_error(column: &str, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidConcept {
        column: column.to_owned(),
        reason: reason.into(),
    }
}

/// Builds concepts from the obs columns `hard` (categorical, string,
/// boolean, or numeric holding only 0/1) and `soft` (numeric, min–max scaled
/// over these cells). A categorical column becomes one-hot columns in its
/// declared category order (a string column: sorted distinct values), except
/// a two-category column, which becomes one column indicating its second
/// category. Missing entries (categorical code −1, nullable mask, NaN) are
/// value 0 and observed 0.
pub fn curate_concepts(obs: &Frame, hard: &[String], soft: &[String]) -> Result<Concepts> {
    let mut seen = HashSet::new();
    for name in hard.iter().chain(soft) {
        if !seen.insert(name.as_str()) {
            let reason = if hard.contains(name) && soft.contains(name) {
                "listed as both a hard and a soft concept"
            } else {
                "listed twice"
            };
            return Err(concept_error(name, reason));
        }
    }
    let mut groups = Vec::with_capacity(hard.len() + soft.len());
    let mut next = 0;
    let mut push = |column: &String, encoding: ConceptEncoding| {
        let mut group = ConceptGroup {
            column: column.clone(),
            encoding,
            columns: 0..0,
        };
        let width = group.width();
        group.columns = next..next + width;
        next += width;
        groups.push(group);
    };
    for name in hard {
        let encoding = match view(obs_column(obs, name)?) {
            ObsView::Categories { categories, .. } => match categories.len() {
                0 => return Err(concept_error(name, "the column has no values")),
                2 => ConceptEncoding::Binary {
                    category: categories[1].clone(),
                    other: categories[0].clone(),
                },
                _ => ConceptEncoding::OneHot { categories },
            },
            ObsView::Bool(_) => ConceptEncoding::Bool,
            // Checked for 0/1 while encoding, which names the first offender.
            ObsView::Numbers(_) => ConceptEncoding::Indicator,
        };
        push(name, encoding);
    }
    for name in soft {
        let numbers: Vec<f64> = match view(obs_column(obs, name)?) {
            ObsView::Numbers(v) => v.into_iter().flatten().collect(),
            ObsView::Bool(v) => v
                .into_iter()
                .flatten()
                .map(|b| f64::from(u8::from(b)))
                .collect(),
            ObsView::Categories { .. } => {
                return Err(concept_error(
                    name,
                    "a soft concept must be numeric, but the column is categorical",
                ));
            }
        };
        let (min, max) = numbers
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if numbers.is_empty() {
            return Err(concept_error(name, "the column has no non-missing values"));
        }
        let spread = min.is_finite() && max.is_finite() && max > min;
        if !spread {
            return Err(concept_error(
                name,
                format!(
                    "a soft concept needs at least two distinct finite values, \
                     found only {min}..{max}"
                ),
            ));
        }
        push(name, ConceptEncoding::Soft { min, max });
    }
    encode_with(&groups, obs)
}

/// Encodes `obs` with stored groups (from [`curate_concepts`] on the
/// training data), so a model fitted on one file can be applied to
/// another. Errors name the missing column or the category the stored
/// encoding does not know.
pub fn encode_with(groups: &[ConceptGroup], obs: &Frame) -> Result<Concepts> {
    let mut expected_start = 0;
    for g in groups {
        if g.columns.start != expected_start || g.columns.len() != g.width() {
            return Err(invalid(
                "concept encoding",
                format!(
                    "group `{}` covers columns {:?}, expected {} columns from {}",
                    g.column,
                    g.columns,
                    g.width(),
                    expected_start
                ),
            ));
        }
        expected_start = g.columns.end;
    }
    let n = obs.len();
    let mut values = Array2::<f32>::zeros((n, expected_start));
    let mut observed = Array2::<f32>::zeros((n, expected_start));
    let mut names = Vec::with_capacity(expected_start);
    let mut kinds = Vec::with_capacity(expected_start);
    for g in groups {
        let column = obs_column(obs, &g.column)?;
        if column.len() != n {
            return Err(CoreError::ShapeMismatch {
                what: format!("length of obs column `{}`", g.column),
                expected: n.to_string(),
                found: column.len().to_string(),
            });
        }
        let cols = s![.., g.columns.clone()];
        g.encode_rows(
            &view(column),
            values.slice_mut(cols),
            observed.slice_mut(cols),
        )?;
        names.extend(g.names());
        kinds.extend(std::iter::repeat_n(g.kind(), g.width()));
    }
    Ok(Concepts {
        names,
        values,
        observed,
        kinds,
        groups: groups.to_vec(),
    })
}
