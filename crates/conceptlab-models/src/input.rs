//! What a trained model reads from a data set: the expression matrix it was
//! fitted on (X or a layer), checked gene for gene against the model's and
//! against the representation the model expects (counts, when it
//! normalised), and the features its preprocessing makes of it.

use std::collections::HashSet;

use conceptlab_core::preprocess::{NonCountKind, check_finite, first_non_count};
use conceptlab_core::{CellData, Column, Matrix, NumVec, UnsValue};
use ndarray::Array2;

use crate::ModelError;
use crate::checkpoint::Meta;
use crate::pipeline::Normalize;

/// The obs column an edit marks the cells it changed with.
pub const EDITED_COLUMN: &str = "conceptlab_edited";
/// The uns key of an edit's record.
pub const EDIT_RECORD: &str = "conceptlab_edit";

/// How messages name the matrix a model reads: `X` or `layers/NAME`.
pub fn matrix_name(layer: Option<&str>) -> String {
    layer.map_or_else(|| "X".to_string(), |l| format!("layers/{l}"))
}

/// The cells an earlier conceptlab edit changed. obs["conceptlab_edited"]
/// counts only beside the uns["conceptlab_edit"] record that edit writes: a
/// user's column of that name says nothing about how a matrix was made.
pub fn previously_edited(data: &CellData) -> Option<&[bool]> {
    match (
        data.obs.columns.get(EDITED_COLUMN),
        data.uns.get(EDIT_RECORD),
    ) {
        (Some(Column::Numeric(NumVec::Bool(marks))), Some(UnsValue::Mapping(_))) => {
            Some(marks.as_slice())
        }
        _ => None,
    }
}

/// The matrix the model reads, checked: the genes are the model's, every
/// value is finite, and when the model normalised at fit time the values
/// are what it normalised then (see [`check_counts`]).
pub fn model_input<'a>(meta: &Meta, data: &'a CellData) -> Result<&'a Matrix, ModelError> {
    check_genes(meta, data)?;
    let layer = meta.data.layer.as_deref();
    let matrix = expression(data, layer)?;
    check_finite(matrix, &matrix_name(layer))?;
    check_counts(meta, data, matrix)?;
    Ok(matrix)
}

/// Refuses a matrix that is not on the scale the model normalised at fit
/// time. The decision recorded then is applied, never re-made: a model that
/// normalised (`target_sum` set) gets counts. Negative values are never
/// counts. Fractional ones are allowed in cells an earlier edit changed
/// (their counts are expected counts), and everywhere when the user forced
/// normalisation at fit time (`normalize = always`, e.g. for ambient-corrected
/// counts); otherwise a model fitted under `auto` saw integer counts, and a
/// fractional value means the matrix has been transformed since — normalising
/// and log-transforming it again would change every cell.
fn check_counts(meta: &Meta, data: &CellData, matrix: &Matrix) -> Result<(), ModelError> {
    check_counts_at(meta, data, matrix, 0)
}

/// What [`model_input`] checks of the whole matrix, for rows
/// `start..start + rows.nrows()` of it read apart (dense or CSR): finite
/// values, and counts where the model normalised. `data` is the data set
/// (its obs and var; its matrices need not be read), and the message names
/// the cell by its place in the whole matrix.
pub fn check_rows(
    meta: &Meta,
    data: &CellData,
    rows: &Matrix,
    start: usize,
) -> Result<(), ModelError> {
    if let Some(k) = rows.values().first_non_finite() {
        let (_, n_cols) = rows.shape();
        let row = match rows {
            Matrix::Dense(_) => k / n_cols.max(1),
            Matrix::Sparse(s) => s.indptr.partition_point(|&p| p as usize <= k) - 1,
        };
        let col = match rows {
            Matrix::Dense(_) => k % n_cols.max(1),
            Matrix::Sparse(s) => s.indices[k] as usize,
        };
        let cell = data
            .obs_names()
            .get(start + row)
            .map_or("?", String::as_str);
        let gene = data.var_names().get(col).map_or("?", String::as_str);
        return Err(ModelError::Input(format!(
            "{}: cell `{cell}` (row {}), gene `{gene}` holds {}, which is not finite",
            matrix_name(meta.data.layer.as_deref()),
            start + row,
            rows.values().get_f64(k).unwrap_or(f64::NAN)
        )));
    }
    check_counts_at(meta, data, rows, start)
}

fn check_counts_at(
    meta: &Meta,
    data: &CellData,
    matrix: &Matrix,
    start: usize,
) -> Result<(), ModelError> {
    let pre = &meta.preprocessing;
    if pre.target_sum.is_none() {
        return Ok(());
    }
    let any_fraction;
    let fractional_ok = if pre.config.normalize == Normalize::Always {
        any_fraction = vec![true; data.n_obs()];
        Some(any_fraction.as_slice())
    } else {
        previously_edited(data)
    };
    let end = start + matrix.nrows();
    let fractional_ok = fractional_ok.and_then(|f| f.get(start..end));
    let Some(mut bad) = first_non_count(matrix, fractional_ok) else {
        return Ok(());
    };
    bad.row += start;
    let cell = data.obs_names().get(bad.row).map_or("?", String::as_str);
    let gene = data.var_names().get(bad.col).map_or("?", String::as_str);
    let what = match bad.kind {
        NonCountKind::Fractional => format!(
            "not an integer, in a cell no conceptlab edit changed (obs[\"{EDITED_COLUMN}\"] \
             with uns[\"{EDIT_RECORD}\"])"
        ),
        _ => bad.reason().to_string(),
    };
    Err(ModelError::Input(format!(
        "{}: cell `{cell}` (row {}), gene `{gene}` holds {} ({what}); the model was fitted on \
         counts (it normalises library sizes and log-transforms them), so this matrix looks \
         already transformed. Pass the counts{}, or fit a model on this matrix as it is \
         (--override preprocess.normalize=never)",
        matrix_name(meta.data.layer.as_deref()),
        bad.row,
        bad.value,
        meta.data
            .layer
            .as_ref()
            .map_or(String::new(), |l| format!(" in layer `{l}`")),
    )))
}

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

/// The model features of every cell of `data` (after the checks of
/// [`model_input`]).
pub fn features(meta: &Meta, data: &CellData) -> Result<Array2<f32>, ModelError> {
    meta.preprocessing.transform(model_input(meta, data)?)
}
