//! scGen (Lotfollahi et al. 2019) as the PyTorch `scgen` package defines
//! it: an unsupervised VAE with batch-normalised layers whose edit is latent
//! vector arithmetic, `decoder(μ(x) + δ)` with δ the difference between the
//! mean latents of the target and the source populations of the training
//! data ([`arithmetic`]).
//!
//! It trains through the shared loop like every model; concepts never enter
//! the network, only the edit (which reads the cells' annotations). The
//! checkpoint holds the weights, the batch-norm running statistics and the
//! training cells' latent means and annotations, so an edit after loading is
//! the edit before saving. docs/baselines.md (`## scGen`) lists what differs
//! from the reference and why.

mod arithmetic;
mod config;
mod network;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, stream_rng, streams};
use ndarray::{Array2, ArrayView2, s};

pub use config::{ScGenConfig, default_training};
pub use network::LossTerms;

use arithmetic::Populations;
use network::Network;

use crate::ModelError;
use crate::convert::{INFERENCE_CHUNK, by_chunks, normal_tensor, rows_tensor, to_array, to_tensor};
use crate::data::ConceptData;
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;
use crate::train::{self, Objective, Observer, Split, Summary, TrainConfig, TrainingRun};

const LATENTS: &str = "scgen.train_latents";
const ANNOTATIONS: &str = "scgen.train_annotations";
const OBSERVED: &str = "scgen.train_observed";

/// One pass over cells: scGen's mean loss terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochSummary {
    pub terms: LossTerms,
}

impl Summary for EpochSummary {
    fn total(&self) -> f64 {
        self.terms.total
    }
    fn non_finite(&self) -> Option<(&'static str, f64)> {
        let t = &self.terms;
        [
            ("total", t.total),
            ("reconstruction", t.reconstruction),
            ("KL", t.kl),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// What a training run of scGen did.
pub type History = TrainingRun<EpochSummary>;

/// The per-epoch history as CSV (history.csv; no timings, so reruns are
/// byte-identical).
pub fn history_csv(history: &History) -> String {
    let mut out = String::from(
        "epoch,lr,train_total,train_reconstruction,train_kl,val_total,val_reconstruction,val_kl\n",
    );
    for r in &history.epochs {
        let t = r.train.terms;
        let _ = write!(
            out,
            "{},{:e},{},{},{}",
            r.epoch, r.lr, t.total, t.reconstruction, t.kl
        );
        match &r.validation {
            Some(v) => {
                let v = v.terms;
                let _ = writeln!(out, ",{},{},{}", v.total, v.reconstruction, v.kl);
            }
            None => out.push_str(",,,\n"),
        }
    }
    out
}

/// A trained (or freshly initialised) scGen.
#[derive(Debug)]
pub struct ScGen {
    config: ScGenConfig,
    dims: Dims,
    seed: u64,
    net: Network,
    device: Device,
    /// The training cells' latents and annotations (after fitting).
    populations: Option<Populations>,
}

/// Running loss totals of an epoch, weighted by batch size.
#[derive(Default)]
pub struct Totals(LossTerms);

impl ScGen {
    /// A new model on `device` with weights drawn from `seed`.
    pub fn new(
        config: ScGenConfig,
        dims: Dims,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let device = device.clone();
        let mut rng = stream_rng(seed, streams::INIT);
        let net = Network::new(&config, dims.input_dim, &device, &mut rng)?;
        Ok(ScGen {
            config,
            dims,
            seed,
            net,
            device,
            populations: None,
        })
    }

    /// Trains on `data`'s features (a seeded 10 % validation split decides
    /// when to stop, as scvi-tools' 90 % training share), then records every
    /// cell's latent mean and annotations for the edit's arithmetic.
    pub fn fit(
        &mut self,
        data: &ConceptData,
        train: &TrainConfig,
        observer: &mut Observer,
    ) -> Result<History, ModelError> {
        if data.x.ncols() != self.dims.input_dim || data.concepts.ncols() != self.dims.n_concepts()
        {
            return Err(ModelError::Input(format!(
                "the model takes {} features and {} concepts, the data have {} and {}",
                self.dims.input_dim,
                self.dims.n_concepts(),
                data.x.ncols(),
                data.concepts.ncols()
            )));
        }
        let history = train::fit(&*self, data, Split::Shuffled, train, self.seed, observer)?;
        let populations = Populations {
            latents: self.latent_means(data.x.view())?,
            values: data.concepts.clone(),
            observed: data.observed.clone(),
            n_hard: data.n_hard,
        };
        populations.check(self.config.latent_dim, self.dims.n_concepts())?;
        self.populations = Some(populations);
        Ok(history)
    }

    /// The architecture.
    pub fn config(&self) -> &ScGenConfig {
        &self.config
    }

    fn tensor(&self, x: ArrayView2<f32>) -> Result<Tensor, ModelError> {
        to_tensor(x, &self.device)
    }

    /// μ(x) in eval mode (running batch-norm statistics, no dropout).
    pub fn latent_means(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ModelError> {
        self.check_features(x)?;
        by_chunks(x.nrows(), self.config.latent_dim, |rows| {
            let (mu, _) = self
                .net
                .encode(&self.tensor(x.slice(s![rows, ..]))?, None)?;
            Ok(mu)
        })
    }

    /// decoder(z) in eval mode.
    pub fn decode(&self, z: ArrayView2<f32>) -> Result<Array2<f32>, ModelError> {
        if z.ncols() != self.config.latent_dim {
            return Err(ModelError::Input(format!(
                "latent codes have {} columns, the model {}",
                z.ncols(),
                self.config.latent_dim
            )));
        }
        by_chunks(z.nrows(), self.dims.input_dim, |rows| {
            self.net.decode(&self.tensor(z.slice(s![rows, ..]))?, None)
        })
    }

    fn check_features(&self, x: ArrayView2<f32>) -> Result<(), ModelError> {
        if x.ncols() != self.dims.input_dim {
            return Err(ModelError::Input(format!(
                "the model takes {} features, the cells have {}",
                self.dims.input_dim,
                x.ncols()
            )));
        }
        Ok(())
    }

    /// Rebuilds a model from [`Model::to_safetensors`]'s buffer.
    pub fn from_safetensors(
        config: ScGenConfig,
        dims: Dims,
        seed: u64,
        bytes: &[u8],
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut model = ScGen::new(config, dims, seed, device)?;
        let mut extra = model.net.params.load_safetensors(bytes)?;
        let mut take = |name: &str| -> Result<Array2<f32>, ModelError> {
            let t = extra
                .shift_remove(name)
                .ok_or_else(|| ModelError::Input(format!("the weights lack `{name}`")))?;
            if t.rank() != 2 {
                return Err(ModelError::Input(format!(
                    "`{name}` has shape {:?}, expected a matrix",
                    t.dims()
                )));
            }
            to_array(&t.to_dtype(candle_core::DType::F32)?)
        };
        let populations = Populations {
            latents: take(LATENTS)?,
            values: take(ANNOTATIONS)?,
            observed: take(OBSERVED)?,
            n_hard: dims.n_hard,
        };
        populations.check(model.config.latent_dim, dims.n_concepts())?;
        model.populations = Some(populations);
        Ok(model)
    }
}

impl Objective for ScGen {
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
        let eps = normal_tensor(rng, batch.len(), z, &self.device)?;
        let out = self.net.forward(&x, Some(&eps), Some(rng))?;
        let (total, terms) = network::objective(&out, &x, self.config.kl_weight)?;
        acc.0.add_scaled(&terms, batch.len() as f64);
        Ok(total)
    }

    fn summarize(acc: Totals, n_cells: usize) -> EpochSummary {
        let mut terms = LossTerms::default();
        terms.add_scaled(&acc.0, 1.0 / n_cells.max(1) as f64);
        EpochSummary { terms }
    }

    /// Loss terms in eval mode with z = μ (deterministic).
    fn validate(&self, data: &ConceptData, _seed: u64) -> Result<EpochSummary, ModelError> {
        let mut sum = LossTerms::default();
        for start in (0..data.n_cells()).step_by(INFERENCE_CHUNK) {
            let end = (start + INFERENCE_CHUNK).min(data.n_cells());
            let x = self.tensor(data.x.slice(s![start..end, ..]))?;
            let out = self.net.forward(&x, None, None)?;
            let (_, terms) = network::objective(&out, &x, self.config.kl_weight)?;
            sum.add_scaled(&terms, (end - start) as f64);
        }
        Ok(Self::summarize(Totals(sum), data.n_cells()))
    }
}

impl Counterfactual for ScGen {
    /// The cells' current values pick their source population.
    fn reads_annotations(&self) -> bool {
        true
    }

    /// `decoder(μ(x) + δ)` per cell, δ from its (current → target)
    /// populations; with [`Residual::Keep`] the cell keeps what the decoder
    /// does not reconstruct: `x + decoder(μ + δ) − decoder(μ)`. A cell the
    /// edit leaves alone gets δ = 0.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        self.check_features(request.x)?;
        request.check(self.dims.n_concepts())?;
        let populations = self.populations.as_ref().ok_or_else(|| {
            ModelError::Input("this scgen model has not been fitted: it has no populations".into())
        })?;
        let n = request.x.nrows();
        let mut deltas = Array2::<f32>::zeros((n, self.config.latent_dim));
        let mut cache: Vec<(arithmetic::Condition, ndarray::Array1<f32>)> = Vec::new();
        for i in 0..n {
            let current = request
                .annotations
                .as_ref()
                .map(|a| (a.values.row(i), a.observed.row(i)));
            let condition =
                Populations::condition(i, request.mask.row(i), request.values.row(i), current)?;
            let Some(condition) = condition else { continue };
            let delta = match cache.iter().find(|(c, _)| *c == condition) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = populations
                        .delta(&condition, self.seed)
                        .map_err(|e| ModelError::Input(format!("cell {i}: {e}")))?;
                    cache.push((condition, d.clone()));
                    d
                }
            };
            deltas.row_mut(i).assign(&delta);
        }
        let mu = self.latent_means(request.x)?;
        let edited = self.decode((&mu + &deltas).view())?;
        let x = match request.residual {
            Residual::Discard => edited,
            Residual::Keep => edited - self.decode(mu.view())? + request.x,
        };
        Ok(Counterfactuals {
            x,
            carry: request.residual,
            evaluations: None,
        })
    }
}

impl Model for ScGen {
    fn kind(&self) -> ModelKind {
        ModelKind::ScGen
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::ScGen(self.config.clone())
    }
    fn dims(&self) -> Dims {
        self.dims
    }
    /// Trained parameters (the batch-norm running statistics are buffers).
    fn n_parameters(&self) -> usize {
        self.net.params.numel() - self.net.n_buffers()
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let populations = self.populations.as_ref().ok_or_else(|| {
            ModelError::Input("an unfitted scgen model has no populations to save".into())
        })?;
        let cpu = Device::Cpu;
        let matrix = |a: &Array2<f32>| -> Result<Tensor, ModelError> {
            Ok(Tensor::from_vec(
                a.iter().copied().collect::<Vec<f32>>(),
                a.dim(),
                &cpu,
            )?)
        };
        let extra = vec![
            (LATENTS.to_string(), matrix(&populations.latents)?),
            (ANNOTATIONS.to_string(), matrix(&populations.values)?),
            (OBSERVED.to_string(), matrix(&populations.observed)?),
        ];
        Ok(self.net.params.to_safetensors(&extra)?)
    }
}
