//! What a trained model reads from a data set: the expression matrix it was
//! fitted on (X or a layer), checked gene for gene against the model's, and
//! the features its preprocessing makes of it.

use std::collections::HashSet;

use conceptlab_core::{CellData, Matrix};
use ndarray::Array2;

use crate::ModelError;
use crate::checkpoint::Meta;

/// X, or the named layer.
pub fn expression<'a>(data: &'a CellData, layer: Option<&str>) -> Result<&'a Matrix, ModelError> {
    match layer {
        None => Ok(&data.x),
        Some(name) => data.layers.get(name).ok_or_else(|| {
            let available: Vec<&str> = data.layers.keys().map(String::as_str).collect();
            ModelError::Input(format!(
                "no layer `{name}` (layers: {})",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            ))
        }),
    }
}

/// Refuses data whose genes differ from the model's, saying exactly how.
pub fn check_genes(meta: &Meta, data: &CellData) -> Result<(), ModelError> {
    let want = &meta.data.var_names;
    let have = data.var_names();
    if want == have {
        return Ok(());
    }
    let wanted: HashSet<&str> = want.iter().map(String::as_str).collect();
    let present: HashSet<&str> = have.iter().map(String::as_str).collect();
    let missing: Vec<&str> = want
        .iter()
        .map(String::as_str)
        .filter(|g| !present.contains(g))
        .collect();
    let extra: Vec<&str> = have
        .iter()
        .map(String::as_str)
        .filter(|g| !wanted.contains(g))
        .collect();
    let sample = |v: &[&str]| {
        let shown: Vec<&str> = v.iter().take(5).copied().collect();
        format!(
            "{}{}",
            shown.join(", "),
            if v.len() > 5 { ", ..." } else { "" }
        )
    };
    let detail = if missing.is_empty() && extra.is_empty() {
        "the same genes in a different order".to_string()
    } else {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "{} of the model's genes are missing ({})",
                missing.len(),
                sample(&missing)
            ));
        }
        if !extra.is_empty() {
            parts.push(format!(
                "{} genes are not in the model ({})",
                extra.len(),
                sample(&extra)
            ));
        }
        parts.join("; ")
    };
    Err(ModelError::Input(format!(
        "its genes (var_names) do not match the model's ({} genes in the data, {} in the model): {detail}",
        have.len(),
        want.len()
    )))
}

/// The model features of every cell of `data` (after the gene check).
pub fn features(meta: &Meta, data: &CellData) -> Result<Array2<f32>, ModelError> {
    check_genes(meta, data)?;
    let matrix = expression(data, meta.data.layer.as_deref())?;
    meta.preprocessing.transform(matrix)
}
