//! CBGM, the concept-embedding baseline (Ismail et al.'s concept bottleneck
//! generative model, in the reference's CEM-VAE shell).
//!
//! Each concept k has a context generator giving two embeddings s_k⁺, s_k⁻
//! from the latent z, and a probability head ĉ_k = σ(w_k·[s_k⁺ ‖ s_k⁻] + b_k);
//! the decoder sees E = [ĉ_k·s_k⁺ + (1 − ĉ_k)·s_k⁻]_k and the unknown code u.
//! Loss MSE + β·KL + λ_c·concept loss + λ_o·L_orth(E, u) (|cos| by default).
//!
//! Choices that differ from the reference, and why:
//! - Edits abduct with z = μ (deterministic). The reference samples z when
//!   intervening on this model, unlike scCBGM's intervention; a sampled
//!   abduction makes an edit depend on the draw and is not what the
//!   abduction → action → prediction recipe asks for.
//! - Soft concept columns (values in [0, 1], as curation scales them) are
//!   mixed like hard ones, with the value as the mixing weight, and learnt by
//!   a masked squared error of the probability; an edit to a value outside
//!   [0, 1] is refused (the mixture would extrapolate the two embeddings).
//! - The [`ConceptModel`] view's unknown code is `[u ‖ contexts]`: the
//!   contexts s_k± depend on the cell's z, not on the probabilities, so
//!   `decode(known, unknown)` can rebuild E from given probabilities only if
//!   it is handed them. An encode → decode round trip is then the model's
//!   reconstruction, and edits through the default
//!   [`ConceptModel::edit`] keep each cell's contexts, as the reference's
//!   intervention does.
//! - Missing annotations are left out of the concept loss (masked).

mod config;
mod loss;
mod network;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod tests;

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, stream_rng, streams};
use ndarray::{Array2, ArrayView2, Axis, concatenate, s};

pub use config::{CbgmConfig, Sizes};
use network::Network;

use crate::ModelError;
use crate::convert::{INFERENCE_CHUNK, by_chunks, normal_tensor, rows_tensor, to_array, to_tensor};
use crate::data::ConceptData;
use crate::model::{ConceptModel, Counterfactual, Counterfactuals, EditRequest, Encoding, Model};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::{Dims, EpochSummary, History, LossTerms};
use crate::train::{self, F1Counts, Objective, Observer, Split, TrainConfig};

/// A trained (or freshly initialised) CBGM.
#[derive(Debug)]
pub struct Cbgm {
    config: CbgmConfig,
    net: Network,
    device: Device,
}

impl Cbgm {
    /// A new model on `device` with weights drawn from `seed`.
    pub fn new(
        config: CbgmConfig,
        dims: Dims,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let device = device.clone();
        let mut rng = stream_rng(seed, streams::INIT);
        let net = Network::new(&config, dims, &device, &mut rng)?;
        Ok(Cbgm {
            config,
            net,
            device,
        })
    }

    /// The architecture and loss weights.
    pub fn config(&self) -> &CbgmConfig {
        &self.config
    }

    /// The embedding and unknown widths used for these data.
    pub fn sizes(&self) -> Sizes {
        self.net.sizes
    }

    /// The parameters (for checkpoints).
    pub fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    fn tensor(&self, x: ArrayView2<f32>) -> Result<Tensor, ModelError> {
        to_tensor(x, &self.device)
    }

    /// Trains on `data` with the shared loop (validation split stratified
    /// by hard-concept pattern, early stopping, best weights kept).
    pub fn fit(
        &mut self,
        data: &ConceptData,
        train: &TrainConfig,
        seed: u64,
        observer: &mut Observer,
    ) -> Result<History, ModelError> {
        let dims = self.net.dims;
        if data.dims() != dims {
            return Err(ModelError::Input(format!(
                "the model takes {} features and {} hard + {} soft concepts, the data have {} and {} + {}",
                dims.input_dim,
                dims.n_hard,
                dims.n_soft,
                data.x.ncols(),
                data.n_hard,
                data.concepts.ncols() - data.n_hard
            )));
        }
        train::fit(
            &*self,
            data,
            Split::Stratified(data.strata()),
            train,
            seed,
            observer,
        )
    }

    fn check_width(&self, what: &str, got: usize, expected: usize) -> Result<(), ModelError> {
        if got != expected {
            return Err(ModelError::Input(format!(
                "{what} has {got} columns, the model expects {expected}"
            )));
        }
        Ok(())
    }

    /// Width of the contexts part of the unknown code (K·2e).
    fn contexts_dim(&self) -> usize {
        self.net.dims.n_concepts() * 2 * self.net.sizes.embedding
    }
}

/// Running totals of an epoch: loss terms weighted by batch size, F1 counts.
#[derive(Default)]
pub struct Totals {
    terms: LossTerms,
    f1: F1Counts,
}

impl Objective for Cbgm {
    type Data = ConceptData;
    type Summary = EpochSummary;
    type Accumulator = Totals;

    fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    fn batch_loss(
        &self,
        data: &ConceptData,
        batch: &[usize],
        rng: &mut Rng,
        acc: &mut Totals,
    ) -> Result<Tensor, ModelError> {
        let z = self.config.latent_dim;
        let x = rows_tensor(&data.x, batch, &self.device)?;
        let c = rows_tensor(&data.concepts, batch, &self.device)?;
        let o = rows_tensor(&data.observed, batch, &self.device)?;
        let eps = normal_tensor(rng, batch.len(), z, &self.device)?;
        let dropout_rng = (self.config.dropout > 0.0).then_some(&mut *rng);
        let out = self.net.forward(&x, Some(&eps), dropout_rng)?;
        let (total, terms) = loss::objective(&self.config, self.net.dims, &out, &x, &c, &o)?;
        acc.terms.add_scaled(&terms, batch.len() as f64);
        acc.f1.add_hard(&out.probs, &c, &o, data.n_hard)?;
        Ok(total)
    }

    fn summarize(acc: Totals, n_cells: usize) -> EpochSummary {
        let mut terms = LossTerms::default();
        terms.add_scaled(&acc.terms, 1.0 / n_cells as f64);
        EpochSummary {
            terms,
            concept_f1: acc.f1.f1(),
        }
    }

    /// Loss terms (z = μ, no dropout) and concept F1 on held-out cells.
    fn validate(&self, data: &ConceptData, _seed: u64) -> Result<EpochSummary, ModelError> {
        let mut sum = LossTerms::default();
        let mut f1 = F1Counts::default();
        for start in (0..data.n_cells()).step_by(INFERENCE_CHUNK) {
            let end = (start + INFERENCE_CHUNK).min(data.n_cells());
            let rows = s![start..end, ..];
            let x = self.tensor(data.x.slice(rows))?;
            let c = self.tensor(data.concepts.slice(rows))?;
            let o = self.tensor(data.observed.slice(rows))?;
            let out = self.net.forward(&x, None, None)?;
            let (_, terms) = loss::objective(&self.config, self.net.dims, &out, &x, &c, &o)?;
            sum.add_scaled(&terms, (end - start) as f64);
            f1.add_hard(&out.probs, &c, &o, data.n_hard)?;
        }
        let mut terms = LossTerms::default();
        terms.add_scaled(&sum, 1.0 / data.n_cells().max(1) as f64);
        Ok(EpochSummary {
            terms,
            concept_f1: f1.f1(),
        })
    }
}

impl ConceptModel for Cbgm {
    fn input_dim(&self) -> usize {
        self.net.dims.input_dim
    }

    fn n_concepts(&self) -> usize {
        self.net.dims.n_concepts()
    }

    /// U + K·2e: the unknown code u, then every concept's two contexts.
    fn unknown_dim(&self) -> usize {
        self.net.sizes.unknown + self.contexts_dim()
    }

    /// Probabilities ĉ and `[u ‖ contexts]`, from z = μ.
    fn encode(&self, x: ArrayView2<f32>) -> Result<Encoding, ModelError> {
        self.check_width("feature matrix", x.ncols(), self.input_dim())?;
        let mut known = Array2::zeros((x.nrows(), self.n_concepts()));
        let mut unknown = Array2::zeros((x.nrows(), self.unknown_dim()));
        for start in (0..x.nrows()).step_by(INFERENCE_CHUNK) {
            let end = (start + INFERENCE_CHUNK).min(x.nrows());
            let xt = self.tensor(x.slice(s![start..end, ..]))?;
            let (mu, _) = self.net.encode(&xt, None)?;
            let (_, probs, contexts, u) = self.net.heads(&mu)?;
            known
                .slice_mut(s![start..end, ..])
                .assign(&to_array(&probs)?);
            let code = concatenate(
                Axis(1),
                &[to_array(&u)?.view(), to_array(&contexts)?.view()],
            )
            .map_err(|e| ModelError::Input(e.to_string()))?;
            unknown.slice_mut(s![start..end, ..]).assign(&code);
        }
        Ok(Encoding { known, unknown })
    }

    /// Rebuilds E from the given probabilities and each cell's contexts
    /// (the tail of `unknown`), then decodes E with u.
    fn decode(
        &self,
        known: ArrayView2<f32>,
        unknown: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        self.check_width("concept matrix", known.ncols(), self.n_concepts())?;
        self.check_width("unknown code", unknown.ncols(), self.unknown_dim())?;
        if known.nrows() != unknown.nrows() {
            return Err(ModelError::Input(format!(
                "{} rows of concepts but {} of unknown code",
                known.nrows(),
                unknown.nrows()
            )));
        }
        let width = self.net.sizes.unknown;
        by_chunks(known.nrows(), self.input_dim(), |rows| {
            let c = self.tensor(known.slice(s![rows.clone(), ..]))?;
            let u = self.tensor(unknown.slice(s![rows.clone(), ..width]))?;
            let contexts = self.tensor(unknown.slice(s![rows, width..]))?;
            let e = self.net.embedding(&contexts, &c)?;
            self.net.decode(&e, &u, None)
        })
    }
}

impl Counterfactual for Cbgm {
    /// Abduction (z = μ) → action on the probabilities → prediction from the
    /// rebuilt embedding ([`ConceptModel::edit`]). Unedited concepts keep the
    /// model's own probabilities, as the reference does.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        request.check(self.n_concepts())?;
        for ((i, j), &m) in request.mask.indexed_iter() {
            let v = request.values[[i, j]];
            if m != 0.0 && !(0.0..=1.0).contains(&v) {
                return Err(ModelError::Input(format!(
                    "CBGM mixes each concept's two embeddings by a value in [0, 1]; \
                     the target of concept {j} for cell {i} is {v}"
                )));
            }
        }
        let x = self.edit(request.x, request.values, request.mask, request.residual)?;
        Ok(Counterfactuals {
            x,
            carry: request.residual,
            evaluations: None,
        })
    }
}

impl Model for Cbgm {
    fn kind(&self) -> ModelKind {
        ModelKind::Cbgm
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::Cbgm(self.config.clone())
    }
    fn dims(&self) -> Dims {
        self.net.dims
    }
    fn n_parameters(&self) -> usize {
        self.net.params.numel()
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        Ok(self.net.params.to_safetensors(&[])?)
    }
    fn as_concept_model(&self) -> Option<&dyn ConceptModel> {
        Some(self)
    }
}
