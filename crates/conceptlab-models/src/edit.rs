//! The edit operation: a data set and a request ("set these concepts to
//! these values in the cells that match") in, the counterfactual data set
//! out. The CLI's `edit`, the benchmark and a future Python binding share it.
//!
//! The output is the input with only the edited cells changed: every
//! element (var with all genes, layers, obsm, varm, obsp, varp, raw, uns) is
//! carried over, and every value outside the edited rows is the input's. The
//! edited rows are written into the matrix the model reads (X, or the layer
//! it was fitted on) in that matrix's own representation: counts when the
//! model normalised them (expm1 of the edited log-normalised expression
//! times the cell's own size factor), the matrix's scale otherwise; the
//! genes the model does not use keep the cell's values. obs gets the edited
//! concept values and obs["conceptlab_edited"] (the cells this or an earlier
//! edit changed), obsm["X_conceptlab_pca"] the model's PC scores of every
//! cell when it works on PCs (the user's X_pca is left alone), and
//! uns["conceptlab_edit"] records the request, which matrix holds the edit
//! and on what scale, and the previous record when the input was an edit's
//! output.

mod chunked;
mod rows;
#[cfg(test)]
mod tests;

pub use chunked::{EDIT_BLOCK, block_sampling, edit_chunked, placeholder};

use std::ops::Range;

use conceptlab_core::preprocess::{
    ConceptGroup, Concepts, dense_matrix, encode_with, select_rows, set_obs, size_factors_for,
};
use conceptlab_core::{CellData, Column, DType, DenseArray, NumVec, UnsValue};
use indexmap::IndexMap;
use ndarray::{Array2, Axis};

use crate::ModelError;
use crate::checkpoint::{Loaded, Meta};
use crate::flow::{CbmFm, ConceptSource, Sampling};
use crate::input::{EDIT_RECORD, EDITED_COLUMN, matrix_name, model_input, previously_edited};
use crate::model::{Annotations, Counterfactual, EditRequest, Residual};

/// The obsm key of the model's PC scores of every cell (conceptlab's own,
/// so a user's X_pca is never replaced).
pub const PCA_KEY: &str = "X_conceptlab_pca";

/// Which part of a checkpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The model itself (scCBGM's decoder, a baseline's rule).
    Model,
    /// The flow-matching generator trained on top (CBM-FM).
    Flow,
}

/// What to change, where and how.
#[derive(Debug, Clone)]
pub struct EditSpec {
    /// (obs column, value) pairs to set.
    pub set: Vec<(String, String)>,
    /// (obs column, value) pairs a cell must all match to be edited.
    pub filter: Vec<(String, String)>,
    pub residual: Residual,
    pub stage: Stage,
    /// How the flow integrates (with [`Stage::Flow`], or a model that is a
    /// flow: raw-fm, ConceptFlow).
    pub sampling: Sampling,
    /// How uns["conceptlab_edit"] names the model (e.g. its directory).
    pub model_label: String,
}

/// A request checked against the model before any data is read: the
/// stage exists, and the concept columns each `set` pair writes with their
/// values.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    spec: &'a EditSpec,
    actions: Vec<Action<'a>>,
}

/// What one `--set` writes into the concept columns `columns`.
#[derive(Debug, Clone)]
struct Action<'a> {
    group: ConceptGroup,
    target: Target<'a>,
}

#[derive(Debug, Clone)]
enum Target<'a> {
    /// A value given in the request, already encoded.
    Fixed(Vec<f32>),
    /// `from:COLUMN=VALUE`: the soft concept's mean over the cells of the
    /// data that match, resolved once the data is read.
    MeanOf { column: &'a str, value: &'a str },
}

/// The prefix of a `--set` value that takes a soft concept's level from a
/// reference group of cells (`--set IFN=from:stim=stimulated`).
pub const FROM_GROUP: &str = "from:";

fn find_group<'a>(meta: &'a Meta, column: &str) -> Result<&'a ConceptGroup, ModelError> {
    let groups = &meta.data.concept_groups;
    groups.iter().find(|g| g.column == column).ok_or_else(|| {
        let known: Vec<&str> = groups.iter().map(|g| g.column.as_str()).collect();
        ModelError::Input(format!(
            "`{column}`: not a concept of this model (its concepts come from: {})",
            known.join(", ")
        ))
    })
}

/// Whether the edit integrates a flow (the stacked generator, or a model
/// that is a flow itself), so that the spec's sampling applies.
pub fn integrates(spec: &EditSpec, meta: &Meta) -> bool {
    spec.stage == Stage::Flow || meta.model.kind().is_flow()
}

/// Validates the request against the model: the stage it asks for exists,
/// every column is one of its concepts and every value one it can encode.
pub fn plan<'a>(meta: &Meta, spec: &'a EditSpec) -> Result<Plan<'a>, ModelError> {
    if spec.stage == Stage::Flow && meta.generator.is_none() {
        return Err(ModelError::Input(
            "this model has no flow generator (train one with `fit --generator fm`, or on \
             this model with `fit DATA --generator fm --from MODEL_DIR`)"
                .into(),
        ));
    }
    if integrates(spec, meta) {
        spec.sampling.validate()?;
    }
    if spec.set.is_empty() {
        return Err(ModelError::Input(
            "an edit must set at least one concept".into(),
        ));
    }
    let mut actions = Vec::new();
    for (column, value) in &spec.set {
        let group = find_group(meta, column)?;
        let target = match value.strip_prefix(FROM_GROUP) {
            Some(reference) => {
                if group.kind() != conceptlab_core::preprocess::ConceptKind::Soft {
                    return Err(ModelError::Input(format!(
                        "`{column}={value}`: {FROM_GROUP} takes a level from a group of cells,                          which only soft (numeric) concepts have"
                    )));
                }
                let (c, v) = reference
                    .split_once('=')
                    .filter(|(c, v)| !c.trim().is_empty() && !v.trim().is_empty())
                    .ok_or_else(|| {
                        ModelError::Input(format!(
                            "`{column}={value}`: expected {FROM_GROUP}COLUMN=VALUE, e.g.                              {column}={FROM_GROUP}stim=stimulated"
                        ))
                    })?;
                Target::MeanOf {
                    column: c.trim(),
                    value: v.trim(),
                }
            }
            None => Target::Fixed(
                group
                    .encode_value(value)
                    .map_err(|e| ModelError::Input(format!("`{column}={value}`: {e}")))?,
            ),
        };
        actions.push(Action {
            group: group.clone(),
            target,
        });
    }
    Ok(Plan { spec, actions })
}

/// The mean of the soft concept `concept` over the cells of `data` whose
/// `column` equals `value` (cells without a value are left out).
fn group_mean(
    data: &CellData,
    concept: &str,
    column: &str,
    value: &str,
) -> Result<f64, ModelError> {
    let members = select_rows(&data.obs, column, value)
        .map_err(|e| ModelError::Input(format!("{FROM_GROUP}{column}={value}: {e}")))?;
    let values = match data.obs.columns.get(concept) {
        Some(Column::Numeric(v)) => v.to_f64(),
        _ => {
            return Err(ModelError::Input(format!(
                "`{concept}={FROM_GROUP}{column}={value}`: obs has no numeric column `{concept}` \
                 to take the group's level from"
            )));
        }
    };
    let (sum, n) = values
        .iter()
        .zip(&members)
        .filter(|(v, m)| **m && v.is_finite())
        .fold((0.0, 0usize), |(s, n), (v, _)| (s + v, n + 1));
    if n == 0 {
        return Err(ModelError::Input(format!(
            "`{concept}={FROM_GROUP}{column}={value}`: no cell with {column}={value} has a \
             value of {concept}"
        )));
    }
    Ok(sum / n as f64)
}

/// One action with its level known: the concept columns, their encoded
/// values, and the value written into obs.
struct Resolved {
    columns: Range<usize>,
    values: Vec<f32>,
    written: String,
}

impl Plan<'_> {
    /// Each action's encoded values and the value written into obs, with
    /// group levels taken from `data`.
    fn resolve(&self, data: &CellData) -> Result<Vec<Resolved>, ModelError> {
        self.actions
            .iter()
            .zip(&self.spec.set)
            .map(|(action, (concept, given))| match &action.target {
                Target::Fixed(v) => Ok(Resolved {
                    columns: action.group.columns.clone(),
                    values: v.clone(),
                    written: given.clone(),
                }),
                Target::MeanOf { column, value } => {
                    let level = group_mean(data, concept, column, value)?;
                    let text = level.to_string();
                    let encoded = action
                        .group
                        .encode_value(&text)
                        .map_err(|e| ModelError::Input(format!("`{concept}={given}`: {e}")))?;
                    Ok(Resolved {
                        columns: action.group.columns.clone(),
                        values: encoded,
                        written: text,
                    })
                }
            })
            .collect()
    }
}

/// The counterfactual data set, and what happened.
#[derive(Debug)]
pub struct Edited {
    pub cells: CellData,
    pub n_edited: usize,
    /// Things the caller should tell the user (nothing failed).
    pub warnings: Vec<String>,
    /// Network evaluations per edited cell (flows).
    pub evaluations: Option<f64>,
}

/// The edited cells' concept annotations (cells without one keep a 0 in
/// `observed`). None when obs cannot be read as the model's concepts: models
/// that need annotations then fall back as they do for missing ones.
fn annotations(
    meta: &Meta,
    data: &CellData,
    rows: &[usize],
    warnings: &mut Vec<String>,
) -> Option<Concepts> {
    match encode_with(&meta.data.concept_groups, &data.obs) {
        Ok(c) => Some(Concepts {
            values: c.values.select(Axis(0), rows),
            observed: c.observed.select(Axis(0), rows),
            ..c
        }),
        Err(e) => {
            warnings.push(format!(
                "the cells' concept annotations cannot be read ({e}); the model treats them \
                 as unknown"
            ));
            None
        }
    }
}

/// Edits `data` as `plan` says with the model of `loaded` (the plan made
/// from its metadata). A dense or CSR matrix is edited by
/// [`edit_chunked`] in one block, so a whole edit and a chunked one give the
/// same cells; a CSC matrix (which cannot be read a block of rows at a
/// time cheaply) is edited whole.
pub fn edit(loaded: &Loaded, data: &CellData, plan: &Plan) -> Result<Edited, ModelError> {
    let layer = loaded.meta.data.layer.as_deref();
    let matrix = crate::input::expression(data, layer)?;
    if let conceptlab_core::Matrix::Sparse(s) = matrix
        && s.format == conceptlab_core::SparseFormat::Csc
    {
        return with_editor(loaded, plan.spec, |editor| {
            edit_whole(loaded, editor, data, plan)
        });
    }
    let (n, n_cols) = matrix.shape();
    let stand_in = placeholder((n, n_cols), matrix.dtype())?;
    let head = CellData {
        x: match layer {
            None => stand_in.clone(),
            Some(_) => data.x.clone(),
        },
        obs: data.obs.clone(),
        var: data.var.clone(),
        layers: data
            .layers
            .iter()
            .map(|(k, m)| {
                let m = if Some(k.as_str()) == layer {
                    stand_in.clone()
                } else {
                    m.clone()
                };
                (k.clone(), m)
            })
            .collect(),
        obsm: data.obsm.clone(),
        varm: data.varm.clone(),
        obsp: data.obsp.clone(),
        varp: data.varp.clone(),
        uns: data.uns.clone(),
        raw: data.raw.clone(),
    };
    let mut blocks = Vec::new();
    let mut edited = edit_chunked(
        loaded,
        &head,
        plan,
        n.max(1),
        &mut |start, count| {
            let rows: Vec<usize> = (start..start + count).collect();
            Ok(matrix.select_rows(&rows)?)
        },
        &mut |block| {
            blocks.push(block);
            Ok(())
        },
    )?;
    let slot = match layer {
        None => &mut edited.cells.x,
        Some(l) => edited
            .cells
            .layers
            .get_mut(l)
            .ok_or_else(|| ModelError::Input(format!("no layer `{l}`")))?,
    };
    *slot = rows::stack(blocks, n_cols, slot.dtype())?;
    edited.cells.validate()?;
    Ok(edited)
}

/// Runs `f` with what answers the edit: the model, or the flow stacked on it.
fn with_editor<R>(
    loaded: &Loaded,
    spec: &EditSpec,
    f: impl FnOnce(&dyn Counterfactual) -> Result<R, ModelError>,
) -> Result<R, ModelError> {
    let meta = &loaded.meta;
    match spec.stage {
        Stage::Model => f(&*loaded.model),
        Stage::Flow => {
            let flow = loaded.flow.as_ref().ok_or_else(|| {
                ModelError::Input("the model's metadata names a flow it does not have".into())
            })?;
            let model = loaded.model.as_concept_model().ok_or_else(|| {
                ModelError::Input(format!(
                    "a {} model has no concept bottleneck for a flow to condition on",
                    loaded.model.kind().name()
                ))
            })?;
            let concepts = meta
                .generator
                .as_ref()
                .map_or(ConceptSource::Predicted, |g| g.concepts);
            f(&CbmFm {
                model,
                flow,
                concepts,
            })
        }
    }
}

/// obs after an edit: each set column updated on the edited `rows`, and the
/// edited-cells mark, which keeps the cells an earlier edit changed.
fn edited_obs(
    data: &CellData,
    spec: &EditSpec,
    resolved: &[Resolved],
    rows: &[usize],
    selected: Vec<bool>,
    warnings: &mut Vec<String>,
) -> Result<conceptlab_core::Frame, ModelError> {
    let mut obs = data.obs.clone();
    for ((column, _), Resolved { written: value, .. }) in spec.set.iter().zip(resolved) {
        if !set_obs(&mut obs, column, value, rows) {
            warnings.push(format!(
                "obs column `{column}` could not be updated to `{value}`; obs keeps the original values"
            ));
        }
    }
    // Cells an earlier edit changed stay marked: their counts are expected
    // counts too, which the next edit must accept.
    let earlier = previously_edited(data);
    let marks: Vec<bool> = match earlier {
        Some(before) => selected.iter().zip(before).map(|(&a, &b)| a || b).collect(),
        None => selected,
    };
    if earlier.is_none() && obs.columns.contains_key(EDITED_COLUMN) {
        warnings.push(format!(
            "obs column `{EDITED_COLUMN}` is replaced by the cells this edit changed"
        ));
    }
    obs.insert(EDITED_COLUMN, Column::Numeric(NumVec::Bool(marks)))?;
    Ok(obs)
}

/// The cells the where conditions select.
fn selection(data: &CellData, spec: &EditSpec) -> Result<Vec<bool>, ModelError> {
    let mut selected = vec![true; data.n_obs()];
    for (column, value) in &spec.filter {
        let mask = select_rows(&data.obs, column, value)
            .map_err(|e| ModelError::Input(format!("where {column}={value}: {e}")))?;
        for (s, m) in selected.iter_mut().zip(mask) {
            *s &= m;
        }
    }
    Ok(selected)
}

/// The target values and the mask of the concepts set, for `n` cells.
fn targets(resolved: &[Resolved], n: usize, k: usize) -> (Array2<f32>, Array2<f32>) {
    let mut values = Array2::<f32>::zeros((n, k));
    let mut mask = Array2::<f32>::zeros((n, k));
    for Resolved {
        columns: range,
        values: v,
        ..
    } in resolved
    {
        for r in 0..n {
            for (j, &value) in range.clone().zip(v) {
                values[[r, j]] = value;
                mask[[r, j]] = 1.0;
            }
        }
    }
    (values, mask)
}

/// The edit of a whole matrix in memory, the model answering every
/// selected cell at once (CSC matrices).
fn edit_whole(
    loaded: &Loaded,
    editor: &dyn Counterfactual,
    data: &CellData,
    plan: &Plan,
) -> Result<Edited, ModelError> {
    let (meta, spec) = (&loaded.meta, plan.spec);
    // Genes, X or layer, and the scale the model expects, before any work.
    let matrix = model_input(meta, data)?;
    let selected = selection(data, spec)?;
    let rows: Vec<usize> = (0..data.n_obs()).filter(|&i| selected[i]).collect();
    if rows.is_empty() {
        return Err(ModelError::Input(
            "no cell matches the where conditions".into(),
        ));
    }

    let pre = &meta.preprocessing;
    let features = pre.transform(matrix)?;
    let source = features.select(Axis(0), &rows);
    let k = meta.dims.n_concepts();
    let resolved = plan.resolve(data)?;
    let (values, mask) = targets(&resolved, rows.len(), k);
    let mut warnings = Vec::new();
    let own = editor
        .reads_annotations()
        .then(|| annotations(meta, data, &rows, &mut warnings))
        .flatten();
    let request = EditRequest {
        x: source.view(),
        annotations: own.as_ref().map(Annotations::from),
        values: values.view(),
        mask: mask.view(),
        residual: spec.residual,
        sampling: integrates(spec, meta).then_some(spec.sampling),
    };
    let result = editor.counterfactual(&request)?;
    if let Some((i, j)) = crate::first_non_finite(result.x.view()) {
        return Err(ModelError::Input(format!(
            "the model produced a non-finite value (cell {}, feature {j}); nothing was written",
            rows[i]
        )));
    }

    // Back to genes, then to the matrix's own scale.
    let edited_expr = pre.to_expression(result.x.view())?;
    let change = match result.carry {
        Residual::Keep => Some(&edited_expr - &pre.to_expression(source.view())?),
        Residual::Discard => None,
    };
    let dtype = rows::output_dtype(matrix);
    let new_values = stored_values(
        matrix,
        &rows,
        &pre.genes,
        pre.target_sum,
        &edited_expr,
        change.as_ref(),
    )?;
    let layer = meta.data.layer.as_deref();
    let name = matrix_name(layer);
    if let Some((i, j)) = first_unwritable(&new_values, dtype) {
        return Err(ModelError::Input(format!(
            "the edit of cell `{}` makes gene `{}` of {name} {} (not a finite {}); nothing was \
             written",
            data.obs_names()[rows[i]],
            data.var_names()[pre.genes[j]],
            new_values[[i, j]],
            dtype.name()
        )));
    }
    let written = rows::replace(
        matrix,
        &rows::Replacement {
            rows: &rows,
            genes: &pre.genes,
            values: &new_values,
        },
        dtype,
    )?;
    if matrix.dtype() != dtype {
        warnings.push(format!(
            "{name} is written as {} (it was {}): the edited cells hold expected counts, which \
             are not integers; every other value is unchanged",
            dtype.name(),
            matrix.dtype().name()
        ));
    }

    let obs = edited_obs(data, spec, &resolved, &rows, selected, &mut warnings)?;

    let mut obsm = data.obsm.clone();
    if pre.uses_pca() {
        let mut scores = pre.unstandardized(features.view())?;
        let edited_scores = pre.unstandardized(result.x.view())?;
        for (i, &r) in rows.iter().enumerate() {
            scores.row_mut(r).assign(&edited_scores.row(i));
        }
        obsm.insert(PCA_KEY.into(), dense_matrix(scores)?);
    } else if obsm.shift_remove(PCA_KEY).is_some() {
        warnings.push(format!(
            "obsm[\"{PCA_KEY}\"] (an earlier model's PC scores) is dropped: this model works \
             on genes"
        ));
    }
    let (x, layers) = match layer {
        None => (written, data.layers.clone()),
        Some(l) => {
            warnings.push(format!(
                "the model reads layers/{l}: the edited cells are written there; X is unchanged"
            ));
            let mut layers = data.layers.clone();
            layers.insert(l.to_string(), written);
            (data.x.clone(), layers)
        }
    };
    let mut uns = data.uns.clone();
    let previous = uns.shift_remove(EDIT_RECORD);
    uns.insert(
        EDIT_RECORD.into(),
        record(spec, loaded, result.carry, &name, rows.len(), previous)?,
    );
    let out = CellData {
        x,
        obs,
        var: data.var.clone(),
        layers,
        obsm,
        varm: data.varm.clone(),
        obsp: data.obsp.clone(),
        varp: data.varp.clone(),
        uns,
        raw: data.raw.clone(),
    };
    out.validate()?;
    Ok(Edited {
        cells: out,
        n_edited: rows.len(),
        warnings,
        evaluations: result.evaluations,
    })
}

/// The edited cells' new values of the model's genes, on the scale of the
/// stored matrix. When the model normalised (`target_sum`), the matrix
/// holds counts and a log-normalised value y maps back with the cell's own
/// size factor f (its original total over every gene / target_sum, as
/// normalise_total divided by it): f·expm1(y). A kept residual carries the
/// predicted change d to the cell's own counts x, f·expm1(log1p(x/f) + d) =
/// x + (x + f)·expm1(d), which is x itself where d is 0. Expected counts
/// are never negative (log-normalised expression is at least 0). Without
/// normalisation the matrix is the model's scale: x + d, or the prediction.
fn stored_values(
    matrix: &conceptlab_core::Matrix,
    rows: &[usize],
    genes: &[usize],
    target_sum: Option<f64>,
    edited_expr: &Array2<f32>,
    change: Option<&Array2<f32>>,
) -> Result<Array2<f64>, ModelError> {
    let own = match change {
        Some(_) => rows::gather(matrix, rows, genes)?,
        None => Array2::zeros((0, 0)),
    };
    let factors = match target_sum {
        Some(t) => Some(size_factors_for(matrix, t)?),
        None => None,
    };
    let mut out = Array2::<f64>::zeros((rows.len(), genes.len()));
    for (i, &r) in rows.iter().enumerate() {
        for j in 0..genes.len() {
            let y = f64::from(edited_expr[[i, j]]);
            out[[i, j]] = match (&factors, change) {
                (Some(f), Some(d)) => {
                    let (f, x) = (f64::from(f[r]), own[[i, j]]);
                    (x + (x + f) * f64::from(d[[i, j]]).exp_m1()).max(0.0)
                }
                (Some(f), None) => (f64::from(f[r]) * y.exp_m1()).max(0.0),
                (None, Some(d)) => own[[i, j]] + f64::from(d[[i, j]]),
                (None, None) => y,
            };
        }
    }
    Ok(out)
}

/// The first new value the output type cannot hold (non-finite, or beyond
/// f32's range when writing f32).
fn first_unwritable(values: &Array2<f64>, dtype: DType) -> Option<(usize, usize)> {
    values.indexed_iter().find_map(|(ij, &v)| {
        let ok = match dtype {
            DType::F64 => v.is_finite(),
            _ => (v as f32).is_finite(),
        };
        (!ok).then_some(ij)
    })
}

/// uns["conceptlab_edit"]: what was asked of which model, where the edit
/// is and on what scale, and the record of the edit the input came from.
fn record(
    spec: &EditSpec,
    loaded: &Loaded,
    carry: Residual,
    matrix: &str,
    n_edited: usize,
    previous: Option<UnsValue>,
) -> Result<UnsValue, ModelError> {
    let strings = |v: &[(String, String)]| UnsValue::StringArray {
        shape: vec![v.len()],
        values: v.iter().map(|(k, x)| format!("{k}={x}")).collect(),
    };
    let scalar = |v: f64| -> Result<UnsValue, ModelError> {
        Ok(UnsValue::Array(DenseArray::scalar(NumVec::F64(vec![v]))?))
    };
    let pre = &loaded.meta.preprocessing;
    let text = |s: &str| UnsValue::String(s.to_string());
    let mut record = IndexMap::new();
    record.insert("model".to_string(), text(&spec.model_label));
    record.insert("model_type".to_string(), text(loaded.model.kind().name()));
    record.insert("set".to_string(), strings(&spec.set));
    record.insert("where".to_string(), strings(&spec.filter));
    record.insert(
        "residual".to_string(),
        text(match carry {
            Residual::Keep => "keep",
            Residual::Discard => "discard",
        }),
    );
    record.insert("n_edited".to_string(), scalar(n_edited as f64)?);
    record.insert("matrix".to_string(), text(matrix));
    let values = match (pre.target_sum, carry) {
        (Some(_), Residual::Discard) => {
            "counts scale: expm1 of the predicted log-normalised expression times the cell's \
             library size (its original total over all genes) / target_sum, at least 0"
        }
        (Some(_), Residual::Keep) => {
            "counts scale: the cell's counts x changed by the predicted change d of its \
             log-normalised expression, x + (x + s) * expm1(d) with s the cell's library size \
             (its original total over all genes) / target_sum, at least 0"
        }
        (None, Residual::Discard) => {
            "the matrix's own scale (the model was fitted on it without normalisation): the \
             predicted expression"
        }
        (None, Residual::Keep) => {
            "the matrix's own scale (the model was fitted on it without normalisation): the \
             cell's values plus the predicted change"
        }
    };
    record.insert("values".to_string(), text(values));
    if let Some(t) = pre.target_sum {
        record.insert("target_sum".to_string(), scalar(t)?);
    }
    record.insert(
        "genes".to_string(),
        text(&format!(
            "the model's {} of {} genes are edited; the others keep the cell's values",
            pre.genes.len(),
            pre.n_input_genes
        )),
    );
    if pre.uses_pca() {
        record.insert("obsm".to_string(), text(PCA_KEY));
    }
    if spec.stage == Stage::Flow {
        record.insert("generator".to_string(), text("fm"));
    }
    if integrates(spec, &loaded.meta) {
        record.insert(
            "sampling".to_string(),
            UnsValue::String(
                serde_json::to_string(&spec.sampling)
                    .map_err(|e| ModelError::Input(format!("sampling settings: {e}")))?,
            ),
        );
    }
    if let Some(previous) = previous {
        record.insert("previous".to_string(), previous);
    }
    Ok(UnsValue::Mapping(record))
}
