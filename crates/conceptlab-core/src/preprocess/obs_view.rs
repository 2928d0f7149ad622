//! An obs column read the way concept encoding reads it: categories with
//! per-row codes, booleans, or numbers — each with missing values explicit.

use std::collections::BTreeSet;

use crate::{Column, CoreError, Frame, NumVec, Values};

/// A column of a [`Frame`], its missing entries as `None`.
pub(super) enum ObsView {
    /// Categorical, string or nullable-string column: category labels in
    /// their order (declared order for categoricals, sorted unique values for
    /// strings) and each row's category index.
    Categories {
        categories: Vec<String>,
        codes: Vec<Option<usize>>,
    },
    /// Boolean column (plain or nullable).
    Bool(Vec<Option<bool>>),
    /// Any other numeric column; NaN is missing.
    Numbers(Vec<Option<f64>>),
}

impl ObsView {
    /// What kind of column this is, for error messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            ObsView::Categories { .. } => "categorical",
            ObsView::Bool(_) => "boolean",
            ObsView::Numbers(_) => "numeric",
        }
    }
}

/// The column `name` of `obs`, or an error listing the columns there are.
pub(super) fn obs_column<'a>(obs: &'a Frame, name: &str) -> Result<&'a Column, CoreError> {
    obs.columns
        .get(name)
        .ok_or_else(|| CoreError::UnknownColumn {
            column: name.to_owned(),
            available: obs.columns.keys().cloned().collect(),
        })
}

fn labels(values: &Values) -> Vec<String> {
    (0..values.len())
        .map(|i| values.label(i).unwrap_or_default())
        .collect()
}

fn strings_view(values: &[String], missing: impl Fn(usize) -> bool) -> ObsView {
    let set: BTreeSet<&str> = values
        .iter()
        .enumerate()
        .filter(|&(i, _)| !missing(i))
        .map(|(_, s)| s.as_str())
        .collect();
    let categories: Vec<String> = set.into_iter().map(str::to_owned).collect();
    let codes = values
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if missing(i) {
                None
            } else {
                categories.binary_search(s).ok()
            }
        })
        .collect();
    ObsView::Categories { categories, codes }
}

fn numbers_view(values: &NumVec, missing: impl Fn(usize) -> bool) -> ObsView {
    match values {
        NumVec::Bool(b) => ObsView::Bool(
            b.iter()
                .enumerate()
                .map(|(i, &v)| (!missing(i)).then_some(v))
                .collect(),
        ),
        other => ObsView::Numbers(
            other
                .to_f64()
                .into_iter()
                .enumerate()
                .map(|(i, v)| (!missing(i) && !v.is_nan()).then_some(v))
                .collect(),
        ),
    }
}

/// Reads any [`Column`] as an [`ObsView`].
pub(super) fn view(column: &Column) -> ObsView {
    match column {
        Column::Categorical(c) => ObsView::Categories {
            categories: labels(&c.categories),
            codes: c
                .codes
                .iter()
                .map(|&code| usize::try_from(code).ok())
                .collect(),
        },
        Column::Strings(v) => strings_view(v, |_| false),
        Column::Numeric(v) => numbers_view(v, |_| false),
        Column::Nullable { values, mask } => {
            let missing = |i: usize| mask.get(i).copied().unwrap_or(true);
            match values {
                Values::Strings(s) => strings_view(s, missing),
                Values::Numbers(n) => numbers_view(n, missing),
            }
        }
    }
}

/// Parses `true/false/1/0` (any case), the values a boolean concept or
/// filter accepts.
pub(super) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Whether a category label and a user-given value name the same category:
/// equal text, or equal numbers (so `3` selects the category `3.0`).
pub(super) fn same_category(label: &str, value: &str) -> bool {
    if label == value {
        return true;
    }
    match (label.trim().parse::<f64>(), value.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
