//! trVAE (Lotfollahi et al.): a conditional VAE whose condition is a one-hot
//! label, built from Linear (no bias) → BatchNorm → ReLU → Dropout blocks
//! with a ReLU output, trained with a per-cell sum of squared errors, α·KL
//! and a multi-kernel MMD between the conditions on the first decoder
//! layer, which pushes that layer to forget the condition.
//!
//! Here a condition is a pattern of the hard concepts (one label per
//! distinct pattern among the training cells), so trVAE edits any concept a
//! pattern names. An edit encodes each cell under its own pattern and decodes
//! under the edited one with z = μ (the reference samples z, so its edits
//! are random; deterministic here). The reference's wrapper is
//! broken (it rebinds its output AnnData to an array and passes a label that
//! is not a condition); this is the model it meant to call, not the wrapper.
//!
//! It cannot condition on soft concepts (no label for a continuous value),
//! nor edit to a pattern no training cell had.

mod config;
mod mmd;
mod network;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Write as _;

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, stream_rng, streams};
use ndarray::{Array2, ArrayView2, Axis, s};

pub use config::TrVaeConfig;
use network::Network;

use crate::ModelError;
use crate::convert::{by_chunks, normal_tensor, rows_tensor, to_tensor};
use crate::cvae::own_concepts;
use crate::data::ConceptData;
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual, intervene_on};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;
use crate::train::{self, Objective, Observer, Split, Summary, TrainConfig, TrainingRun};

/// The tensor holding the condition patterns (classes × hard concepts).
const CLASSES: &str = "trvae.classes";

/// Mean loss terms of a pass over cells.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrVaeLoss {
    pub total: f64,
    pub reconstruction: f64,
    pub kl: f64,
    pub mmd: f64,
}

impl TrVaeLoss {
    fn add_scaled(&mut self, o: &TrVaeLoss, w: f64) {
        self.total += o.total * w;
        self.reconstruction += o.reconstruction * w;
        self.kl += o.kl * w;
        self.mmd += o.mmd * w;
    }
}

impl Summary for TrVaeLoss {
    fn total(&self) -> f64 {
        self.total
    }
    fn non_finite(&self) -> Option<(&'static str, f64)> {
        [
            ("reconstruction", self.reconstruction),
            ("KL", self.kl),
            ("MMD", self.mmd),
            ("total", self.total),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// What a training run of trVAE did.
pub type TrVaeHistory = TrainingRun<TrVaeLoss>;

fn history_csv(h: &TrVaeHistory) -> String {
    let mut out =
        String::from("epoch,lr,train_total,train_reconstruction,train_kl,train_mmd,val_total\n");
    for e in &h.epochs {
        let t = e.train;
        let _ = writeln!(
            out,
            "{},{:e},{},{},{},{},{}",
            e.epoch,
            e.lr,
            t.total,
            t.reconstruction,
            t.kl,
            t.mmd,
            e.validation.map_or(String::new(), |v| v.total.to_string())
        );
    }
    out
}

/// A cell's hard-concept pattern as a label key.
fn pattern(row: ndarray::ArrayView1<f32>) -> Vec<u8> {
    row.iter().map(|&v| u8::from(v > 0.5)).collect()
}

/// A trained trVAE and its condition labels.
#[derive(Debug)]
pub struct TrVae {
    config: TrVaeConfig,
    dims: Dims,
    /// The hard-concept pattern of each label, in label order.
    classes: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
    net: Network,
    device: Device,
}

impl TrVae {
    fn build(
        config: TrVaeConfig,
        dims: Dims,
        classes: Vec<Vec<u8>>,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if dims.n_soft > 0 {
            return Err(ModelError::Input(format!(
                "trVAE conditions on discrete labels; the data have {} soft concept column(s), \
                 which it cannot condition on",
                dims.n_soft
            )));
        }
        if dims.n_hard == 0 || dims.input_dim == 0 {
            return Err(ModelError::Input(
                "trVAE needs features and at least one hard concept".into(),
            ));
        }
        let device = device.clone();
        let net = Network::new(
            &config,
            dims.input_dim,
            classes.len(),
            &device,
            &mut stream_rng(seed, streams::INIT),
        )?;
        let index = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Ok(TrVae {
            config,
            dims,
            classes,
            index,
            net,
            device,
        })
    }

    /// Trains on `data`: one label per hard-concept pattern of its cells
    /// (all annotated), a validation split stratified by that pattern.
    pub fn fit(
        config: TrVaeConfig,
        data: &ConceptData,
        train: &TrainConfig,
        seed: u64,
        device: &Device,
        observer: &mut Observer,
    ) -> Result<(Self, TrVaeHistory), ModelError> {
        crate::cvae::check_annotated(data.observed.view(), "training cell")?;
        if config.output_relu
            && let Some((i, j)) = data
                .x
                .indexed_iter()
                .find(|(_, v)| **v < 0.0)
                .map(|(ij, _)| ij)
        {
            return Err(ModelError::Input(format!(
                "trVAE's ReLU output cannot produce negative features (cell {i}, feature {j} \
                 is negative: PCA scores?); fit it on expression, or set output_relu = false"
            )));
        }
        let mut classes: Vec<Vec<u8>> = data.concepts.rows().into_iter().map(pattern).collect();
        classes.sort();
        classes.dedup();
        let model = TrVae::build(config, data.dims(), classes, seed, device)?;
        let history = train::fit(
            &model,
            data,
            Split::Stratified(data.strata()),
            train,
            seed,
            observer,
        )?;
        Ok((model, history))
    }

    /// A model from a buffer of [`Model::to_safetensors`].
    pub fn from_safetensors(
        config: TrVaeConfig,
        dims: Dims,
        seed: u64,
        bytes: &[u8],
        device: &Device,
    ) -> Result<Self, ModelError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
        let table = tensors
            .get(CLASSES)
            .ok_or_else(|| ModelError::Input(format!("trVAE weights lack `{CLASSES}`")))?;
        let (n, k) = table.dims2()?;
        if k != dims.n_hard || n == 0 {
            return Err(ModelError::Input(format!(
                "trVAE weights hold {n} conditions of {k} concepts; the model has {} hard concepts",
                dims.n_hard
            )));
        }
        let values = table.flatten_all()?.to_vec1::<f32>()?;
        let classes = values
            .chunks(k)
            .map(|r| r.iter().map(|&v| u8::from(v > 0.5)).collect())
            .collect();
        let model = TrVae::build(config, dims, classes, seed, device)?;
        model.net.params.load_safetensors(bytes)?;
        Ok(model)
    }

    fn labels(&self, concepts: ArrayView2<f32>, what: &str) -> Result<Vec<usize>, ModelError> {
        concepts
            .rows()
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let p = pattern(row);
                self.index.get(&p).copied().ok_or_else(|| {
                    ModelError::Input(format!(
                        "{what} {i} has the concept pattern {p:?}, which no training cell had; \
                         trVAE can only decode the conditions it was trained on"
                    ))
                })
            })
            .collect()
    }

    fn onehot(&self, labels: &[usize]) -> Result<Tensor, ModelError> {
        let c = self.classes.len();
        let mut v = vec![0f32; labels.len() * c];
        for (i, &l) in labels.iter().enumerate() {
            v[i * c + l] = 1.0;
        }
        Ok(Tensor::from_vec(v, (labels.len(), c), &self.device)?)
    }

    fn objective(
        &self,
        out: &network::Forward,
        x: &Tensor,
        labels: &[usize],
    ) -> Result<(Tensor, TrVaeLoss), ModelError> {
        let b = labels.len().max(1) as f64;
        // Sums over features and latents, means over cells (the reference's
        // (Σ SE + α Σ KL) / B).
        let reconstruction = ((&out.reconstruction - x)?.sqr()?.sum_all()? / b)?;
        let kl = ((((&out.logvar + 1.0)? - out.mu.sqr()?)? - out.logvar.exp()?)?.sum_all()?
            * (-0.5 / b))?;
        let mmd = mmd::between_conditions(&out.first, labels)?;
        let total =
            ((&reconstruction + (&kl * self.config.alpha)?)? + (&mmd * self.config.mmd_weight)?)?;
        let f = |t: &Tensor| -> Result<f64, ModelError> { Ok(t.to_scalar::<f32>()? as f64) };
        let terms = TrVaeLoss {
            total: f(&total)?,
            reconstruction: f(&reconstruction)?,
            kl: f(&kl)?,
            mmd: f(&mmd)?,
        };
        Ok((total, terms))
    }

    /// Encode under `own` labels, decode under `target` labels (z = μ,
    /// evaluation mode).
    fn translate(
        &self,
        x: ArrayView2<f32>,
        own: &[usize],
        target: &[usize],
        residual: Residual,
    ) -> Result<Array2<f32>, ModelError> {
        by_chunks(x.nrows(), x.ncols(), |rows| {
            let xt = to_tensor(x.slice(s![rows.clone(), ..]), &self.device)?;
            let src = self.onehot(&own[rows.clone()])?;
            let (mu, _) = self.net.encode(&xt, &src, None)?;
            let (_, edited) = self.net.decode(&mu, &self.onehot(&target[rows])?, None)?;
            Ok(match residual {
                Residual::Discard => edited,
                Residual::Keep => ((edited - self.net.decode(&mu, &src, None)?.1)? + xt)?,
            })
        })
    }
}

impl Objective for TrVae {
    type Data = ConceptData;
    type Summary = TrVaeLoss;
    type Accumulator = TrVaeLoss;

    fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    fn batch_loss(
        &self,
        data: &ConceptData,
        batch: &[usize],
        rng: &mut Rng,
        acc: &mut TrVaeLoss,
    ) -> Result<Tensor, ModelError> {
        let z = self.config.latent_dim;
        let concepts = data.concepts.select(Axis(0), batch);
        let labels = self.labels(concepts.view(), "training cell")?;
        let x = rows_tensor(&data.x, batch, &self.device)?;
        let eps = normal_tensor(rng, batch.len(), z, &self.device)?;
        let out = self
            .net
            .forward(&x, &self.onehot(&labels)?, Some(&eps), Some(rng))?;
        let (total, terms) = self.objective(&out, &x, &labels)?;
        acc.add_scaled(&terms, batch.len() as f64);
        Ok(total)
    }

    fn summarize(acc: TrVaeLoss, n_cells: usize) -> TrVaeLoss {
        let mut mean = TrVaeLoss::default();
        mean.add_scaled(&acc, 1.0 / n_cells.max(1) as f64);
        mean
    }

    /// Loss terms in evaluation mode (running statistics, z = μ), on the
    /// whole held-out set at once so the MMD sees every condition.
    fn validate(&self, data: &ConceptData, _seed: u64) -> Result<TrVaeLoss, ModelError> {
        let labels = self.labels(data.concepts.view(), "validation cell")?;
        let x = to_tensor(data.x.view(), &self.device)?;
        let out = self.net.forward(&x, &self.onehot(&labels)?, None, None)?;
        Ok(self.objective(&out, &x, &labels)?.1)
    }
}

impl Counterfactual for TrVae {
    fn reads_annotations(&self) -> bool {
        true
    }

    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        request.check(self.dims.n_concepts())?;
        if request.x.ncols() != self.dims.input_dim {
            return Err(ModelError::Input(format!(
                "the model takes {} features, the cells have {}",
                self.dims.input_dim,
                request.x.ncols()
            )));
        }
        let own = own_concepts(request)?;
        let target = intervene_on(&own.values.to_owned(), request.values, request.mask)?;
        let from = self.labels(own.values, "edited cell")?;
        let to = self.labels(target.view(), "edited cell (after the edit)")?;
        let x = self.translate(request.x, &from, &to, request.residual)?;
        Ok(Counterfactuals {
            x,
            carry: request.residual,
            evaluations: None,
        })
    }
}

impl Model for TrVae {
    fn kind(&self) -> ModelKind {
        ModelKind::TrVae
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::TrVae(self.config.clone())
    }
    fn dims(&self) -> Dims {
        self.dims
    }
    fn n_parameters(&self) -> usize {
        self.net.params.numel()
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let k = self.dims.n_hard;
        let flat: Vec<f32> = self
            .classes
            .iter()
            .flatten()
            .map(|&v| f32::from(v))
            .collect();
        let table = Tensor::from_vec(flat, (self.classes.len(), k), &Device::Cpu)?;
        Ok(self
            .net
            .params
            .to_safetensors(&[(CLASSES.to_string(), table)])?)
    }
}

/// The registry's fit arm: trains and returns the model with its history CSV.
pub(crate) fn fit_for_registry(
    config: &TrVaeConfig,
    data: &ConceptData,
    train: &TrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut Observer,
) -> Result<(TrVae, TrVaeHistory, String), ModelError> {
    let (model, history) = TrVae::fit(config.clone(), data, train, seed, device, observer)?;
    let csv = history_csv(&history);
    Ok((model, history, csv))
}
