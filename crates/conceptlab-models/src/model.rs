//! The interface every concept model offers (scCBGM, its ablations and
//! baselines, and the flow-matching generator built on top of them).

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::ModelError;

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

/// Which kind of model a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    ScCbgm,
}
