//! scCVAE, the conditional VAE baseline, and scCVAE-FM, a flow conditioned on
//! its latent mean and the concepts ([`fm`]).
//!
//! scCVAE encodes [x ‖ c] into q(z | x, c) and decodes [z ‖ c]; it has no
//! concept prediction and no bottleneck: c is the cells' observed concept
//! vector, fed to both halves, and training uses the true concepts
//! (loss MSE + β·KL, the KL a mean over B×Z as everywhere in the VAE family).
//!
//! An edit encodes each cell with its own annotations, sets the concepts the
//! edit names (by concept column), and decodes. Where the reference differs:
//! - it *samples* z at intervention time, so an edit is random; here z = μ,
//!   so an edit is deterministic (the reference's scCBGM abduction);
//! - its trainer zips column-ordered concept indices with list-ordered
//!   target values, which swaps values when the two orders differ; here every
//!   value is set on the column it names (the edit request's mask);
//! - it ignores the configured learning rate in `train_loop`; here the
//!   training settings' `lr` is used.
//!
//! With [`Residual::Keep`] (the CLI's default) the edit returns
//! `x + decode(z, c') − decode(z, c)`: only the predicted concept effect is
//! added to the cell. On held-out synthetic combinations this is closer to
//! the exact twins than the decoder's output alone (docs/baselines.md, scCVAE).

mod config;
pub mod fm;
mod network;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt::Write as _;

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, stream_rng, streams};
use conceptlab_nn::loss;
use ndarray::{Array2, ArrayView2, s};

pub use config::ScCvaeConfig;
pub use fm::{ScCvaeFm, ScCvaeFmConfig};
use network::Network;

use crate::ModelError;
use crate::convert::{INFERENCE_CHUNK, by_chunks, normal_tensor, rows_tensor, to_tensor};
use crate::data::ConceptData;
use crate::model::{
    Annotations, Counterfactual, Counterfactuals, EditRequest, Model, Residual, intervene_on,
};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;
use crate::train::{self, Epoch, Objective, Observer, Split, Summary, TrainConfig, TrainingRun};

/// Mean loss terms of a pass over cells (unweighted terms and the total).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CvaeLoss {
    pub total: f64,
    pub reconstruction: f64,
    pub kl: f64,
}

impl CvaeLoss {
    fn add_scaled(&mut self, other: &CvaeLoss, weight: f64) {
        self.total += other.total * weight;
        self.reconstruction += other.reconstruction * weight;
        self.kl += other.kl * weight;
    }
}

impl Summary for CvaeLoss {
    fn total(&self) -> f64 {
        self.total
    }
    fn non_finite(&self) -> Option<(&'static str, f64)> {
        [
            ("reconstruction", self.reconstruction),
            ("KL", self.kl),
            ("total", self.total),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// What a training run of scCVAE did.
pub type CvaeHistory = TrainingRun<CvaeLoss>;

/// The history as CSV (history.csv; no timings, so reruns are byte-identical).
pub fn history_csv(history: &CvaeHistory) -> String {
    let mut out = String::from(
        "epoch,lr,train_total,train_reconstruction,train_kl,val_total,val_reconstruction,val_kl\n",
    );
    for Epoch {
        epoch,
        lr,
        train: t,
        validation,
        ..
    } in &history.epochs
    {
        let _ = write!(
            out,
            "{epoch},{lr:e},{},{},{}",
            t.total, t.reconstruction, t.kl
        );
        match validation {
            Some(v) => {
                let _ = writeln!(out, ",{},{},{}", v.total, v.reconstruction, v.kl);
            }
            None => out.push_str(",,,\n"),
        }
    }
    out
}

/// The loss tensor and its terms: MSE(x̂, x) + β·KL.
fn objective(
    beta: f64,
    out: &network::Forward,
    x: &Tensor,
) -> Result<(Tensor, CvaeLoss), ModelError> {
    let reconstruction = loss::mse(&out.reconstruction, x)?;
    let kl = loss::kl_mean(&out.mu, &out.logvar)?;
    let total = (&reconstruction + (&kl * beta)?)?;
    let scalar = |t: &Tensor| -> Result<f64, ModelError> { Ok(t.to_scalar::<f32>()? as f64) };
    let terms = CvaeLoss {
        total: scalar(&total)?,
        reconstruction: scalar(&reconstruction)?,
        kl: scalar(&kl)?,
    };
    Ok((total, terms))
}

/// Refuses any missing annotation: the encoder and the decoder read every
/// concept column, and a stand-in value would be a concept the cell may not
/// have. `what` names the cells ("training cell", "edited cell").
pub(crate) fn check_annotated(observed: ArrayView2<f32>, what: &str) -> Result<(), ModelError> {
    if let Some(((i, j), _)) = observed.indexed_iter().find(|(_, o)| **o == 0.0) {
        return Err(ModelError::Input(format!(
            "{what} {i} has no annotation for concept column {j}; scCVAE encodes and decodes \
             every cell with all of its concepts, so every concept must be annotated"
        )));
    }
    Ok(())
}

/// The cells' own concept values from an edit request, every one required.
pub(crate) fn own_concepts<'a>(request: &EditRequest<'a>) -> Result<Annotations<'a>, ModelError> {
    let a = request.annotations.ok_or_else(|| {
        ModelError::Input(
            "scCVAE edits need the edited cells' own concept annotations (its encoder reads \
             them); none were given"
                .into(),
        )
    })?;
    check_annotated(a.observed, "edited cell")?;
    Ok(a)
}

/// A trained (or freshly initialised) scCVAE.
#[derive(Debug)]
pub struct ScCvae {
    config: ScCvaeConfig,
    net: Network,
    device: Device,
}

impl ScCvae {
    /// A new model with weights drawn from `seed`'s initialisation stream.
    pub fn new(
        config: ScCvaeConfig,
        dims: Dims,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let device = device.clone();
        let net = Network::new(&config, dims, &device, &mut stream_rng(seed, streams::INIT))?;
        Ok(ScCvae {
            config,
            net,
            device,
        })
    }

    /// The architecture and KL weight.
    pub fn config(&self) -> &ScCvaeConfig {
        &self.config
    }

    /// The parameters (for checkpoints).
    pub fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    /// Latent width Z.
    pub fn latent_dim(&self) -> usize {
        self.config.latent_dim
    }

    fn tensor(&self, x: ArrayView2<f32>) -> Result<Tensor, ModelError> {
        to_tensor(x, &self.device)
    }

    fn check_widths(&self, x: ArrayView2<f32>, c: ArrayView2<f32>) -> Result<(), ModelError> {
        let dims = self.net.dims;
        if x.ncols() != dims.input_dim || c.ncols() != dims.n_concepts() || x.nrows() != c.nrows() {
            return Err(ModelError::Input(format!(
                "the model takes cells × {} features and cells × {} concepts, got {:?} and {:?}",
                dims.input_dim,
                dims.n_concepts(),
                x.dim(),
                c.dim()
            )));
        }
        Ok(())
    }

    /// Trains on `data` with its true concepts, holding out a validation
    /// split stratified by hard-concept pattern; keeps the best epoch's weights.
    pub fn fit(
        &mut self,
        data: &ConceptData,
        train: &TrainConfig,
        seed: u64,
        observer: &mut Observer,
    ) -> Result<CvaeHistory, ModelError> {
        self.check_widths(data.x.view(), data.concepts.view())?;
        if data.n_hard != self.net.dims.n_hard {
            return Err(ModelError::Input(format!(
                "the model has {} hard concepts, the data {}",
                self.net.dims.n_hard, data.n_hard
            )));
        }
        check_annotated(data.observed.view(), "training cell")?;
        train::fit(
            &*self,
            data,
            Split::Stratified(data.strata()),
            train,
            seed,
            observer,
        )
    }

    /// μ(x, c) of each cell: the deterministic abduction.
    pub fn latent_mean(
        &self,
        x: ArrayView2<f32>,
        c: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        self.check_widths(x, c)?;
        by_chunks(x.nrows(), self.config.latent_dim, |rows| {
            let rows = s![rows, ..];
            let (mu, _) = self.net.encode(
                &self.tensor(x.slice(rows))?,
                &self.tensor(c.slice(rows))?,
                None,
            )?;
            Ok(mu)
        })
    }

    /// x̂ from latents `z` and concepts `c`.
    pub fn decode(
        &self,
        z: ArrayView2<f32>,
        c: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        let dims = self.net.dims;
        if z.ncols() != self.config.latent_dim
            || c.ncols() != dims.n_concepts()
            || z.nrows() != c.nrows()
        {
            return Err(ModelError::Input(format!(
                "latents {:?} and concepts {:?} must be cells × {} and cells × {}",
                z.dim(),
                c.dim(),
                self.config.latent_dim,
                dims.n_concepts()
            )));
        }
        by_chunks(z.nrows(), dims.input_dim, |rows| {
            let rows = s![rows, ..];
            self.net.decode(
                &self.tensor(z.slice(rows))?,
                &self.tensor(c.slice(rows))?,
                None,
            )
        })
    }

    /// Encode with `c`, decode with `c_new` (z = μ); with [`Residual::Keep`]
    /// the cell's reconstruction residual `x − decode(z, c)` is added back.
    pub fn edit(
        &self,
        x: ArrayView2<f32>,
        c: ArrayView2<f32>,
        c_new: ArrayView2<f32>,
        residual: Residual,
    ) -> Result<Array2<f32>, ModelError> {
        let z = self.latent_mean(x, c)?;
        let edited = self.decode(z.view(), c_new)?;
        Ok(match residual {
            Residual::Discard => edited,
            Residual::Keep => edited - self.decode(z.view(), c)? + x,
        })
    }
}

impl Objective for ScCvae {
    type Data = ConceptData;
    type Summary = CvaeLoss;
    type Accumulator = CvaeLoss;

    fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    fn batch_loss(
        &self,
        data: &ConceptData,
        batch: &[usize],
        rng: &mut Rng,
        acc: &mut CvaeLoss,
    ) -> Result<Tensor, ModelError> {
        let z = self.config.latent_dim;
        let x = rows_tensor(&data.x, batch, &self.device)?;
        let c = rows_tensor(&data.concepts, batch, &self.device)?;
        let eps = normal_tensor(rng, batch.len(), z, &self.device)?;
        let dropout_rng = (self.config.dropout > 0.0).then_some(&mut *rng);
        let out = self.net.forward(&x, &c, Some(&eps), dropout_rng)?;
        let (total, terms) = objective(self.config.beta, &out, &x)?;
        acc.add_scaled(&terms, batch.len() as f64);
        Ok(total)
    }

    fn summarize(acc: CvaeLoss, n_cells: usize) -> CvaeLoss {
        let mut mean = CvaeLoss::default();
        mean.add_scaled(&acc, 1.0 / n_cells.max(1) as f64);
        mean
    }

    /// Loss terms with z = μ and no dropout (deterministic).
    fn validate(&self, data: &ConceptData, _seed: u64) -> Result<CvaeLoss, ModelError> {
        let mut sum = CvaeLoss::default();
        for start in (0..data.n_cells()).step_by(INFERENCE_CHUNK) {
            let end = (start + INFERENCE_CHUNK).min(data.n_cells());
            let rows = s![start..end, ..];
            let x = self.tensor(data.x.slice(rows))?;
            let c = self.tensor(data.concepts.slice(rows))?;
            let out = self.net.forward(&x, &c, None, None)?;
            let (_, terms) = objective(self.config.beta, &out, &x)?;
            sum.add_scaled(&terms, (end - start) as f64);
        }
        Ok(Self::summarize(sum, data.n_cells()))
    }
}

impl Counterfactual for ScCvae {
    fn reads_annotations(&self) -> bool {
        true
    }

    /// Encode each cell with its own annotations (all required), set the
    /// concepts where the mask is 1, decode with z = μ; the residual as the
    /// request says.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        request.check(self.net.dims.n_concepts())?;
        let own = own_concepts(request)?;
        let c_new = intervene_on(&own.values.to_owned(), request.values, request.mask)?;
        let x = self.edit(request.x, own.values, c_new.view(), request.residual)?;
        Ok(Counterfactuals {
            x,
            carry: request.residual,
            evaluations: None,
        })
    }
}

impl Model for ScCvae {
    fn kind(&self) -> ModelKind {
        ModelKind::ScCvae
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::ScCvae(self.config.clone())
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
}
