//! The edit operation: a data set and a request ("set these concepts to
//! these values in the cells that match") in, the counterfactual data set
//! out. The CLI's `edit`, the benchmark and a future Python binding share it.
//!
//! The output holds every input cell (obs kept, var restricted to the
//! model's genes), with the edited cells' expression in X (log-normalised
//! when the model normalised), their PC scores in obsm["X_pca"] when the
//! model works on PCs, the edited concept values written into obs,
//! obs["conceptlab_edited"] marking them and uns["conceptlab_edit"]
//! recording the request.

use std::ops::Range;

use conceptlab_core::preprocess::{
    ConceptGroup, Concepts, dense_matrix, encode_with, select_rows, set_obs,
};
use conceptlab_core::{CellData, Column, NumVec, UnsValue};
use indexmap::IndexMap;
use ndarray::{Array2, Axis};

use crate::ModelError;
use crate::checkpoint::{Loaded, Meta};
use crate::flow::{CbmFm, ConceptSource, Sampling};
use crate::input::{check_genes, expression};
use crate::model::{Annotations, Counterfactual, EditRequest, Residual};

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
    /// How the flow integrates (with [`Stage::Flow`]).
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
    actions: Vec<(Range<usize>, Vec<f32>)>,
}

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
    if spec.set.is_empty() {
        return Err(ModelError::Input(
            "an edit must set at least one concept".into(),
        ));
    }
    let mut actions = Vec::new();
    for (column, value) in &spec.set {
        let group = find_group(meta, column)?;
        let values = group
            .encode_value(value)
            .map_err(|e| ModelError::Input(format!("`{column}={value}`: {e}")))?;
        actions.push((group.columns.clone(), values));
    }
    Ok(Plan { spec, actions })
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
/// from its metadata).
pub fn edit(loaded: &Loaded, data: &CellData, plan: &Plan) -> Result<Edited, ModelError> {
    let (meta, spec) = (&loaded.meta, plan.spec);
    let cbm_fm;
    let editor: &dyn Counterfactual = match spec.stage {
        Stage::Model => &*loaded.model,
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
            cbm_fm = CbmFm {
                model,
                flow,
                concepts,
            };
            &cbm_fm
        }
    };
    check_genes(meta, data)?;
    let mut selected = vec![true; data.n_obs()];
    for (column, value) in &spec.filter {
        let mask = select_rows(&data.obs, column, value)
            .map_err(|e| ModelError::Input(format!("where {column}={value}: {e}")))?;
        for (s, m) in selected.iter_mut().zip(mask) {
            *s &= m;
        }
    }
    let rows: Vec<usize> = (0..data.n_obs()).filter(|&i| selected[i]).collect();
    if rows.is_empty() {
        return Err(ModelError::Input(
            "no cell matches the where conditions".into(),
        ));
    }

    let pre = &meta.preprocessing;
    let matrix = expression(data, meta.data.layer.as_deref())?;
    let mut expr = pre.expression(matrix)?;
    let features = pre.features_from_expression(expr.view())?;
    let source = features.select(Axis(0), &rows);
    let k = meta.dims.n_concepts();
    let mut values = Array2::<f32>::zeros((rows.len(), k));
    let mut mask = Array2::<f32>::zeros((rows.len(), k));
    for (range, v) in &plan.actions {
        for r in 0..rows.len() {
            for (j, &value) in range.clone().zip(v) {
                values[[r, j]] = value;
                mask[[r, j]] = 1.0;
            }
        }
    }
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
        sampling: (spec.stage == Stage::Flow).then_some(spec.sampling),
    };
    let result = editor.counterfactual(&request)?;
    if let Some((i, j)) = crate::first_non_finite(result.x.view()) {
        return Err(ModelError::Input(format!(
            "the model produced a non-finite value (cell {}, feature {j}); nothing was written",
            rows[i]
        )));
    }

    // Back to genes. A kept residual applies the predicted change to the
    // cell's own expression, so detail outside the PCs survives too.
    let edited_expr = pre.to_expression(result.x.view())?;
    let source_expr = pre.to_expression(source.view())?;
    for (i, &r) in rows.iter().enumerate() {
        let mut row = expr.row_mut(r);
        match result.carry {
            Residual::Keep => row += &(&edited_expr.row(i) - &source_expr.row(i)),
            Residual::Discard => row.assign(&edited_expr.row(i)),
        }
    }
    let mut scores = pre.unstandardized(features.view())?;
    let edited_scores = pre.unstandardized(result.x.view())?;
    for (i, &r) in rows.iter().enumerate() {
        scores.row_mut(r).assign(&edited_scores.row(i));
    }

    let mut obs = data.obs.clone();
    for (column, value) in &spec.set {
        if !set_obs(&mut obs, column, value, &rows) {
            warnings.push(format!(
                "obs column `{column}` could not be updated to `{value}`; obs keeps the original values"
            ));
        }
    }
    obs.insert("conceptlab_edited", Column::Numeric(NumVec::Bool(selected)))?;
    let var = data.var.select(&pre.genes)?;
    let mut out = CellData::new(
        dense_matrix(expr)?,
        data.obs_names().to_vec(),
        var.index.clone(),
    )?;
    out.obs = obs;
    out.var = var;
    if pre.uses_pca() {
        out.obsm.insert("X_pca".into(), dense_matrix(scores)?);
    }
    out.uns = data.uns.clone();
    out.uns.insert(
        "conceptlab_edit".into(),
        record(spec, loaded, result.carry)?,
    );
    out.validate()?;
    Ok(Edited {
        cells: out,
        n_edited: rows.len(),
        warnings,
        evaluations: result.evaluations,
    })
}

/// uns["conceptlab_edit"]: what was asked of which model.
fn record(spec: &EditSpec, loaded: &Loaded, carry: Residual) -> Result<UnsValue, ModelError> {
    let strings = |v: &[(String, String)]| UnsValue::StringArray {
        shape: vec![v.len()],
        values: v.iter().map(|(k, x)| format!("{k}={x}")).collect(),
    };
    let mut record = IndexMap::new();
    record.insert(
        "model".to_string(),
        UnsValue::String(spec.model_label.clone()),
    );
    record.insert(
        "model_type".to_string(),
        UnsValue::String(loaded.model.kind().name().into()),
    );
    record.insert("set".to_string(), strings(&spec.set));
    record.insert("where".to_string(), strings(&spec.filter));
    record.insert(
        "residual".to_string(),
        UnsValue::String(
            match carry {
                Residual::Keep => "keep",
                Residual::Discard => "discard",
            }
            .into(),
        ),
    );
    if spec.stage == Stage::Flow {
        record.insert("generator".to_string(), UnsValue::String("fm".into()));
        record.insert(
            "sampling".to_string(),
            UnsValue::String(
                serde_json::to_string(&spec.sampling)
                    .map_err(|e| ModelError::Input(format!("sampling settings: {e}")))?,
            ),
        );
    }
    Ok(UnsValue::Mapping(record))
}
