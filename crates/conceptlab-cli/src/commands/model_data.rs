//! What `fit`, `encode` and `edit` share: reading the expression matrix a
//! model uses, checking data against a checkpoint, and writing files
//! atomically.

use std::path::Path;

use anyhow::Result;
use conceptlab_core::{CellData, Matrix};
use conceptlab_models::checkpoint::Meta;

use crate::exit::user_error;

/// X, or the named layer.
pub fn expression<'a>(data: &'a CellData, layer: Option<&str>, path: &Path) -> Result<&'a Matrix> {
    match layer {
        None => Ok(&data.x),
        Some(name) => data.layers.get(name).ok_or_else(|| {
            let available: Vec<&str> = data.layers.keys().map(String::as_str).collect();
            user_error!(
                "{}: no layer `{name}` (layers: {})",
                path.display(),
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            )
        }),
    }
}

/// Refuses data whose genes differ from the model's, saying exactly how.
pub fn check_genes(meta: &Meta, data: &CellData, path: &Path, model: &Path) -> Result<()> {
    let want = &meta.data.var_names;
    let have = data.var_names();
    if want == have {
        return Ok(());
    }
    let wanted: std::collections::HashSet<&str> = want.iter().map(String::as_str).collect();
    let present: std::collections::HashSet<&str> = have.iter().map(String::as_str).collect();
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
    Err(user_error!(
        "{}: its genes (var_names) do not match model {} ({} genes in the data, {} in the model): {detail}",
        path.display(),
        model.display(),
        have.len(),
        want.len()
    ))
}
