//! The two seams of the model layer.
//!
//! - [`Counterfactual`]: what every model offers the edit operation and the
//!   benchmark: cells and an edit request in, edited cells out. scCBGM, the
//!   flows, latent-arithmetic and matching baselines and the trivial
//!   predictors can all implement it honestly.
//! - [`ConceptModel`]: the interface of bottleneck models (scCBGM and its
//!   ablations): encode into predicted concepts and an unknown code, decode.
//!   CBM-FM conditions on it and concept metrics read it.
//!
//! [`Model`] is a trained model as the registry and checkpoints hold it.

use conceptlab_core::preprocess::Concepts;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::flow::Sampling;
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;

/// Concept annotations of a set of cells (cells × concept columns):
/// `values` where `observed` is 1, unknown where it is 0.
#[derive(Debug, Clone, Copy)]
pub struct Annotations<'a> {
    pub values: ArrayView2<'a, f32>,
    pub observed: ArrayView2<'a, f32>,
}

impl<'a> From<&'a Concepts> for Annotations<'a> {
    fn from(c: &'a Concepts) -> Self {
        Annotations {
            values: c.values.view(),
            observed: c.observed.view(),
        }
    }
}

/// What to change in which cells. Every array has one row per cell and one
/// column per concept column of the model (hard first, then soft).
#[derive(Debug, Clone, Copy)]
pub struct EditRequest<'a> {
    /// The cells, in the model's feature space.
    pub x: ArrayView2<'a, f32>,
    /// The cells' own concept annotations, where known (models that condition
    /// on annotations, or need the cells' current concept values, read them).
    pub annotations: Option<Annotations<'a>>,
    /// Target concept values, read where `mask` is 1.
    pub values: ArrayView2<'a, f32>,
    /// 1 for each concept the edit sets, 0 for those it leaves alone.
    pub mask: ArrayView2<'a, f32>,
    /// For decoder-based models: whether each cell keeps what the model does
    /// not reconstruct ([`ConceptModel::edit`]).
    pub residual: Residual,
    /// For flows: how the counterfactuals are integrated.
    pub sampling: Option<Sampling>,
}

impl EditRequest<'_> {
    /// Checks that every array has one row per cell and `n_concepts` columns.
    pub fn check(&self, n_concepts: usize) -> Result<(), ModelError> {
        let n = self.x.nrows();
        let expected = (n, n_concepts);
        let mut shapes = vec![("values", self.values.dim()), ("mask", self.mask.dim())];
        if let Some(a) = &self.annotations {
            shapes.push(("annotations", a.values.dim()));
            shapes.push(("observed annotations", a.observed.dim()));
        }
        for (what, dim) in shapes {
            if dim != expected {
                return Err(ModelError::Input(format!(
                    "edit request: {what} {dim:?} must be cells × concepts {expected:?}"
                )));
            }
        }
        Ok(())
    }
}

/// Edited cells, and how they relate to the cells they came from.
#[derive(Debug, Clone)]
pub struct Counterfactuals {
    /// One row per requested cell, in the model's feature space.
    pub x: Array2<f32>,
    /// [`Residual::Keep`]: each row is its source cell changed by the
    /// predicted effect, so the change is carried to the cell's own
    /// expression; [`Residual::Discard`]: each row is a new cell.
    pub carry: Residual,
    /// Network evaluations per cell (flows), for cost reports.
    pub evaluations: Option<f64>,
}

/// Anything that answers "what would these cells look like with these
/// concepts set": every model of the registry, and generators stacked on
/// a bottleneck model.
pub trait Counterfactual {
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError>;
    /// Whether the answer depends on [`EditRequest::annotations`] (callers
    /// need not read them from obs otherwise).
    fn reads_annotations(&self) -> bool {
        false
    }
    /// Whether each cell's answer depends on that cell alone (and the
    /// seed), so that cells can be answered in blocks: false for models
    /// that match the edited cells against each other or as a population.
    fn row_local(&self) -> bool {
        true
    }
}

/// A trained model of the registry.
pub trait Model: Counterfactual + std::fmt::Debug + Send + Sync {
    fn kind(&self) -> ModelKind;
    /// The configuration it was built with (stored in meta.json).
    fn config(&self) -> ModelConfig;
    /// Feature and concept sizes it was trained for.
    fn dims(&self) -> Dims;
    fn n_parameters(&self) -> usize;
    /// Its state as a safetensors buffer (`weights.safetensors`).
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError>;
    /// The bottleneck view, for models that have one (CBM-FM conditions on
    /// it; `encode` and concept metrics read it).
    fn as_concept_model(&self) -> Option<&dyn ConceptModel> {
        None
    }
}

/// What the encoder says about cells: predicted concepts (probabilities for
/// hard concepts) and the unknown code, both from z = μ.
#[derive(Debug, Clone)]
pub struct Encoding {
    pub known: Array2<f32>,
    pub unknown: Array2<f32>,
}

/// A concept-bottleneck generative model.
pub trait ConceptModel {
    /// Input features the model expects.
    fn input_dim(&self) -> usize;
    /// Concept columns (hard first, then soft).
    fn n_concepts(&self) -> usize;
    /// Width of the unknown code.
    fn unknown_dim(&self) -> usize;
    /// Width of the embedding [ĉ ‖ u] a generator on top is conditioned on.
    fn embedding_dim(&self) -> usize {
        self.n_concepts() + self.unknown_dim()
    }
    /// Abduction: concepts and unknown code of each cell.
    fn encode(&self, x: ArrayView2<f32>) -> Result<Encoding, ModelError>;
    /// Prediction: features from concepts and unknown code.
    fn decode(
        &self,
        known: ArrayView2<f32>,
        unknown: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError>;
    /// Abduction → action → prediction: encode, overwrite the concepts where
    /// `mask` is 1 with `values`, keep the model's own predictions elsewhere,
    /// decode.
    fn intervene(
        &self,
        x: ArrayView2<f32>,
        values: ArrayView2<f32>,
        mask: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        self.edit(x, values, mask, Residual::Discard)
    }

    /// [`ConceptModel::intervene`], optionally keeping what the model cannot
    /// reconstruct. With [`Residual::Keep`] the abduction also recovers each
    /// cell's residual `x − decode(ĉ, u)` and adds it back after the action:
    /// `x' = x + decode(c', u) − decode(ĉ, u)`. The edit then changes a cell
    /// only by the model's predicted concept effect, and cell-specific detail
    /// the bottleneck cannot carry survives; with unchanged concepts the cell
    /// is returned as it was.
    fn edit(
        &self,
        x: ArrayView2<f32>,
        values: ArrayView2<f32>,
        mask: ArrayView2<f32>,
        residual: Residual,
    ) -> Result<Array2<f32>, ModelError> {
        let enc = self.encode(x)?;
        let known = intervene_on(&enc.known, values, mask)?;
        let edited = self.decode(known.view(), enc.unknown.view())?;
        match residual {
            Residual::Discard => Ok(edited),
            Residual::Keep => {
                let reconstruction = self.decode(enc.known.view(), enc.unknown.view())?;
                Ok(edited - reconstruction + x)
            }
        }
    }
}

/// The action step: `known` with the entries where `mask` is 1 replaced by
/// `values` (all three cells × concepts).
pub fn intervene_on(
    known: &Array2<f32>,
    values: ArrayView2<f32>,
    mask: ArrayView2<f32>,
) -> Result<Array2<f32>, ModelError> {
    if values.dim() != known.dim() || mask.dim() != known.dim() {
        return Err(ModelError::Input(format!(
            "intervention values {:?} and mask {:?} must be cells × concepts {:?}",
            values.dim(),
            mask.dim(),
            known.dim()
        )));
    }
    Ok(known * &(1.0 - &mask) + &values * &mask)
}

/// Whether an edit keeps the part of a cell the model does not reconstruct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Residual {
    /// Return the decoder's output (the reference's behaviour).
    Discard,
    /// Add the cell's reconstruction residual back (see [`ConceptModel::edit`]).
    Keep,
}
