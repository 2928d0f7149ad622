//! scCBGM: the single-cell concept bottleneck generative model.

mod config;
pub(crate) mod decoder;
mod loss;
mod network;

#[cfg(test)]
mod golden_tests;

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, stream_rng, streams};
use ndarray::{Array2, ArrayView2, s};

pub use config::{DecoderKind, Orthogonality, ScCbgmConfig};
pub use loss::LossTerms;
pub use network::Dims;
use network::Network;

use std::fmt::Write as _;

use crate::ModelError;
use crate::convert::{INFERENCE_CHUNK, by_chunks, normal_tensor, rows_tensor, to_array, to_tensor};
use crate::data::ConceptData;
use crate::model::{ConceptModel, Counterfactual, Counterfactuals, EditRequest, Encoding, Model};
use crate::registry::{ModelConfig, ModelKind};
use crate::train::{
    self, Epoch, F1Counts, Objective, Observer, Split, Summary, TrainConfig, TrainingRun,
};

/// One epoch of scCBGM's training.
pub type EpochRecord = Epoch<EpochSummary>;

/// What a training run of scCBGM did.
pub type History = TrainingRun<EpochSummary>;

/// One pass over cells: mean loss terms and the concept F1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochSummary {
    pub terms: LossTerms,
    pub concept_f1: f64,
}

impl Summary for EpochSummary {
    fn total(&self) -> f64 {
        self.terms.total
    }
    fn non_finite(&self) -> Option<(&'static str, f64)> {
        self.terms.non_finite()
    }
    fn scores(&self) -> Vec<(&'static str, f64)> {
        vec![("concept F1", self.concept_f1)]
    }
}

impl History {
    /// The per-epoch history as CSV (history.csv; no timings, so reruns are
    /// byte-identical).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "epoch,lr,train_total,train_reconstruction,train_kl,train_concept,train_orthogonality,train_concept_f1,\
             val_total,val_reconstruction,val_kl,val_concept,val_orthogonality,val_concept_f1\n",
        );
        for r in &self.epochs {
            let t = r.train.terms;
            let _ = write!(
                out,
                "{},{:e},{},{},{},{},{},{}",
                r.epoch,
                r.lr,
                t.total,
                t.reconstruction,
                t.kl,
                t.concept,
                t.orthogonality,
                r.train.concept_f1
            );
            match r.validation {
                Some(EpochSummary {
                    terms: v,
                    concept_f1,
                }) => {
                    let _ = writeln!(
                        out,
                        ",{},{},{},{},{},{concept_f1}",
                        v.total, v.reconstruction, v.kl, v.concept, v.orthogonality
                    );
                }
                None => out.push_str(",,,,,,\n"),
            }
        }
        out
    }
}

/// A trained (or freshly initialised) scCBGM.
#[derive(Debug)]
pub struct ScCbgm {
    config: ScCbgmConfig,
    net: Network,
    device: Device,
}

impl ScCbgm {
    /// A new model on `device` with weights drawn from `seed`.
    pub fn new(
        config: ScCbgmConfig,
        dims: Dims,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let device = device.clone();
        let mut rng = stream_rng(seed, streams::INIT);
        let net = Network::new(&config, dims, &device, &mut rng)?;
        Ok(ScCbgm {
            config,
            net,
            device,
        })
    }

    /// The architecture and loss weights.
    pub fn config(&self) -> &ScCbgmConfig {
        &self.config
    }

    /// Input and concept sizes.
    pub fn dims(&self) -> Dims {
        self.net.dims
    }

    /// Trainable parameter count.
    pub fn n_parameters(&self) -> usize {
        self.net.params.numel()
    }

    /// The parameters (for checkpoints).
    pub fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    fn tensor(&self, x: ArrayView2<f32>) -> Result<Tensor, ModelError> {
        to_tensor(x, &self.device)
    }

    fn check_data(&self, data: &ConceptData) -> Result<(), ModelError> {
        let dims = self.net.dims;
        if data.x.ncols() != dims.input_dim {
            return Err(ModelError::Input(format!(
                "the model takes {} features, the data have {}",
                dims.input_dim,
                data.x.ncols()
            )));
        }
        if data.concepts.ncols() != dims.n_concepts() || data.n_hard != dims.n_hard {
            return Err(ModelError::Input(format!(
                "the model has {} hard + {} soft concepts, the data {} + {}",
                dims.n_hard,
                dims.n_soft,
                data.n_hard,
                data.concepts.ncols() - data.n_hard
            )));
        }
        Ok(())
    }

    /// Trains on `data`, holding out a validation split stratified by
    /// hard-concept pattern for early stopping, and keeps the weights of the
    /// best validation epoch. `observer` sees every epoch as it finishes.
    pub fn fit(
        &mut self,
        data: &ConceptData,
        train: &TrainConfig,
        seed: u64,
        observer: &mut Observer,
    ) -> Result<History, ModelError> {
        self.check_data(data)?;
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
}

/// Running totals of an epoch: loss terms weighted by batch size, F1 counts.
#[derive(Default)]
pub struct Totals {
    terms: LossTerms,
    f1: F1Counts,
}

impl Objective for ScCbgm {
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
        let eps = if self.config.variational {
            Some(normal_tensor(rng, batch.len(), z, &self.device)?)
        } else {
            None
        };
        let dropout_rng = (self.config.dropout > 0.0).then_some(&mut *rng);
        let teacher = self.config.teacher_forcing.then_some((&c, &o));
        let out = self.net.forward(&x, eps.as_ref(), teacher, dropout_rng)?;
        let (total, terms) = loss::objective(&self.config, self.net.dims, &out, &x, &c, &o)?;
        acc.terms.add_scaled(&terms, batch.len() as f64);
        acc.f1.add_hard(&out.concepts, &c, &o, data.n_hard)?;
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
        let n_hard = data.n_hard;
        for start in (0..data.n_cells()).step_by(INFERENCE_CHUNK) {
            let end = (start + INFERENCE_CHUNK).min(data.n_cells());
            let rows = s![start..end, ..];
            let x = self.tensor(data.x.slice(rows))?;
            let c = self.tensor(data.concepts.slice(rows))?;
            let o = self.tensor(data.observed.slice(rows))?;
            let teacher = self.config.teacher_forcing.then_some((&c, &o));
            let out = self.net.forward(&x, None, teacher, None)?;
            let (_, terms) = loss::objective(&self.config, self.net.dims, &out, &x, &c, &o)?;
            sum.add_scaled(&terms, (end - start) as f64);
            f1.add_hard(&out.concepts, &c, &o, n_hard)?;
        }
        let mut terms = LossTerms::default();
        terms.add_scaled(&sum, 1.0 / data.n_cells().max(1) as f64);
        Ok(EpochSummary {
            terms,
            concept_f1: f1.f1(),
        })
    }
}

impl ConceptModel for ScCbgm {
    fn input_dim(&self) -> usize {
        self.net.dims.input_dim
    }

    fn n_concepts(&self) -> usize {
        self.net.dims.n_concepts()
    }

    fn unknown_dim(&self) -> usize {
        self.config.n_unknown
    }

    fn encode(&self, x: ArrayView2<f32>) -> Result<Encoding, ModelError> {
        self.check_width("feature matrix", x.ncols(), self.input_dim())?;
        let mut known = Array2::zeros((x.nrows(), self.n_concepts()));
        let mut unknown = Array2::zeros((x.nrows(), self.config.n_unknown));
        for start in (0..x.nrows()).step_by(INFERENCE_CHUNK) {
            let end = (start + INFERENCE_CHUNK).min(x.nrows());
            let xt = self.tensor(x.slice(s![start..end, ..]))?;
            // Abduction uses z = μ: deterministic, as the reference's intervene.
            let (mu, _) = self.net.encode(&xt, None)?;
            let (_, c, u) = self.net.heads(&mu)?;
            known.slice_mut(s![start..end, ..]).assign(&to_array(&c)?);
            unknown.slice_mut(s![start..end, ..]).assign(&to_array(&u)?);
        }
        Ok(Encoding { known, unknown })
    }

    fn decode(
        &self,
        known: ArrayView2<f32>,
        unknown: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        self.check_width("concept matrix", known.ncols(), self.n_concepts())?;
        self.check_width("unknown code", unknown.ncols(), self.config.n_unknown)?;
        if known.nrows() != unknown.nrows() {
            return Err(ModelError::Input(format!(
                "{} rows of concepts but {} of unknown code",
                known.nrows(),
                unknown.nrows()
            )));
        }
        by_chunks(known.nrows(), self.input_dim(), |rows| {
            let c = self.tensor(known.slice(s![rows.clone(), ..]))?;
            let u = self.tensor(unknown.slice(s![rows, ..]))?;
            self.net.decode(&c, &u, None)
        })
    }
}

impl Counterfactual for ScCbgm {
    /// Abduction → action → prediction ([`ConceptModel::edit`]), keeping or
    /// discarding each cell's residual as the request says.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        request.check(self.n_concepts())?;
        let x = self.edit(request.x, request.values, request.mask, request.residual)?;
        Ok(Counterfactuals {
            x,
            carry: request.residual,
            evaluations: None,
        })
    }
}

impl Model for ScCbgm {
    fn kind(&self) -> ModelKind {
        ModelKind::ScCbgm
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::ScCbgm(self.config.clone())
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
