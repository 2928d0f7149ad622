//! scCVAE-FM: stage 1 an scCVAE, stage 2 a conditional flow
//! ([`FlowMatcher`], unchanged) on the cells, conditioned on
//! [μ_CVAE(x, c) ‖ c]. An edit inverts each cell under its condition and
//! integrates forward under [μ ‖ c'], the concept part set by column.
//!
//! Like scCVAE, the condition uses the cells' own annotations (all
//! required) and z = μ; values are set on the columns they name (the
//! reference's zip-order mismatch does not arise). One checkpoint holds both
//! parameter sets (`cvae.` and `flow.` prefixes in one safetensors) and both
//! configurations.

use candle_core::{Device, Tensor};
use conceptlab_nn::ode::Solver;
use conceptlab_nn::serialize_tensors;
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use serde::{Deserialize, Serialize};

use super::{CvaeHistory, ScCvae, ScCvaeConfig, own_concepts};
use crate::ModelError;
use crate::data::ConceptData;
use crate::flow::{
    FlowConfig, FlowHistory, FlowMatcher, FlowMode, Sampling, VelocityDims, default_flow_training,
};
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual, intervene_on};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;
use crate::train::{Observer, TrainConfig};

const CVAE_PREFIX: &str = "cvae.";
const FLOW_PREFIX: &str = "flow.";

/// Steps of each integration when the request gives no sampling: the CLI's
/// default for CBM-FM (RK4, 12 steps, full inversion).
pub const DEFAULT_STEPS: usize = 12;

/// The sampling of an edit request that gives none: CBM-FM's defaults
/// (invert to t = 0, RK4, [`DEFAULT_STEPS`] steps).
pub fn default_sampling() -> Sampling {
    Sampling {
        mode: FlowMode::Edit { t_edit: 0.0 },
        solver: Solver::Rk4,
        steps: DEFAULT_STEPS,
        seed: 0,
    }
}

/// Both stages' configurations and the flow's training settings (the
/// scCVAE stage trains with the run's training settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScCvaeFmConfig {
    pub cvae: ScCvaeConfig,
    pub flow: FlowConfig,
    /// The flow's optimisation (the reference's: lr 3e-4, batch 128).
    pub flow_training: TrainConfig,
}

impl Default for ScCvaeFmConfig {
    fn default() -> Self {
        ScCvaeFmConfig {
            cvae: ScCvaeConfig::default(),
            flow: FlowConfig::default(),
            flow_training: default_flow_training(),
        }
    }
}

impl ScCvaeFmConfig {
    /// Checks both stages' ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.cvae.validate()?;
        self.flow.validate()?;
        self.flow_training.validate()
    }
}

/// A trained scCVAE and the flow on its conditioning.
#[derive(Debug)]
pub struct ScCvaeFm {
    config: ScCvaeFmConfig,
    cvae: ScCvae,
    flow: FlowMatcher,
}

/// What training both stages did.
#[derive(Debug)]
pub struct ScCvaeFmHistory {
    pub cvae: CvaeHistory,
    pub flow: FlowHistory,
}

impl ScCvaeFmHistory {
    /// Both stages as one CSV (`stage` names the stage).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("stage,epoch,lr,train_total,val_total\n");
        let val = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for e in &self.cvae.epochs {
            out.push_str(&format!(
                "cvae,{},{:e},{},{}\n",
                e.epoch,
                e.lr,
                e.train.total,
                val(e.validation.map(|v| v.total))
            ));
        }
        for e in &self.flow.epochs {
            out.push_str(&format!(
                "flow,{},{:e},{},{}\n",
                e.epoch,
                e.lr,
                e.train.0,
                val(e.validation.map(|v| v.0))
            ));
        }
        out
    }
}

fn condition(mu: &Array2<f32>, c: ArrayView2<f32>) -> Result<Array2<f32>, ModelError> {
    concatenate(Axis(1), &[mu.view(), c])
        .map_err(|e| ModelError::Input(format!("latents and concepts do not line up: {e}")))
}

/// The tensors of a safetensors buffer, their names prefixed.
fn prefixed(bytes: &[u8], prefix: &str) -> Result<Vec<(String, Tensor)>, ModelError> {
    Ok(candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect())
}

/// The tensors under `prefix`, unprefixed, as a safetensors buffer.
fn part(tensors: &[(String, Tensor)], prefix: &str) -> Result<Vec<u8>, ModelError> {
    let inside: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect();
    Ok(serialize_tensors(inside)?)
}

impl ScCvaeFm {
    fn flow_dims(config: &ScCvaeFmConfig, dims: Dims) -> VelocityDims {
        VelocityDims {
            x_dim: dims.input_dim,
            c_dim: config.cvae.latent_dim + dims.n_concepts(),
            emb_dim: config.flow.emb_dim,
            n_layers: config.flow.n_layers,
        }
    }

    /// Fresh networks on `device` for `dims`, weights from `seed`.
    pub fn new(
        config: ScCvaeFmConfig,
        dims: Dims,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let cvae = ScCvae::new(config.cvae.clone(), dims, seed, device)?;
        let fd = Self::flow_dims(&config, dims);
        let flow = FlowMatcher::new(config.flow.clone(), fd.x_dim, fd.c_dim, seed, device)?;
        Ok(ScCvaeFm { config, cvae, flow })
    }

    /// Trains the scCVAE with `train`, then the flow on
    /// (x, [μ(x, c) ‖ c]) with the configuration's flow training.
    pub fn fit(
        &mut self,
        data: &ConceptData,
        train: &TrainConfig,
        seed: u64,
        observer: &mut Observer,
    ) -> Result<ScCvaeFmHistory, ModelError> {
        let cvae = self.cvae.fit(data, train, seed, observer)?;
        let mu = self.cvae.latent_mean(data.x.view(), data.concepts.view())?;
        let cond = condition(&mu, data.concepts.view())?;
        let flow = self
            .flow
            .fit(&data.x, &cond, &self.config.flow_training, seed, observer)?;
        Ok(ScCvaeFmHistory { cvae, flow })
    }

    /// A model of `config` and `dims` from a buffer of [`Model::to_safetensors`].
    pub fn from_safetensors(
        config: ScCvaeFmConfig,
        dims: Dims,
        seed: u64,
        bytes: &[u8],
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?
            .into_iter()
            .collect::<Vec<_>>();
        let cvae = ScCvae::new(config.cvae.clone(), dims, seed, device)?;
        cvae.params()
            .load_safetensors(&part(&tensors, CVAE_PREFIX)?)?;
        let flow = FlowMatcher::from_safetensors(
            config.flow.clone(),
            Self::flow_dims(&config, dims),
            &part(&tensors, FLOW_PREFIX)?,
            device,
        )?;
        Ok(ScCvaeFm { config, cvae, flow })
    }
}

impl Counterfactual for ScCvaeFm {
    fn reads_annotations(&self) -> bool {
        true
    }

    /// The flow's counterfactual from [μ ‖ c] to [μ ‖ c'] under the
    /// request's sampling (CBM-FM's defaults when it gives none). An edit is
    /// still its cell ([`Residual::Keep`]); a decode is a new one. The
    /// request's residual choice does not apply to a flow.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        let dims = self.cvae.net.dims;
        request.check(dims.n_concepts())?;
        let own = own_concepts(request)?;
        let sampling = request.sampling.unwrap_or_else(default_sampling);
        let mu = self.cvae.latent_mean(request.x, own.values)?;
        let c_new = intervene_on(&own.values.to_owned(), request.values, request.mask)?;
        let cond = condition(&mu, own.values)?;
        let new_cond = condition(&mu, c_new.view())?;
        let (x, evaluations) =
            self.flow
                .counterfactual(request.x, cond.view(), new_cond.view(), &sampling)?;
        Ok(Counterfactuals {
            x,
            carry: match sampling.mode {
                FlowMode::Edit { .. } => Residual::Keep,
                FlowMode::Decode => Residual::Discard,
            },
            evaluations: Some(evaluations),
        })
    }
}

impl Model for ScCvaeFm {
    fn kind(&self) -> ModelKind {
        ModelKind::ScCvaeFm
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::ScCvaeFm(self.config.clone())
    }
    fn dims(&self) -> Dims {
        self.cvae.net.dims
    }
    fn n_parameters(&self) -> usize {
        self.cvae.params().numel() + self.flow.n_parameters()
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let mut all = prefixed(&Model::to_safetensors(&self.cvae)?, CVAE_PREFIX)?;
        all.extend(prefixed(&self.flow.to_safetensors()?, FLOW_PREFIX)?);
        Ok(serialize_tensors(all)?)
    }
}
