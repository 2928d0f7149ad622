//! raw-fm (also `vanilla-fm`): the CellFlow-style baseline, a conditional
//! flow on the cells' *observed* concept annotations, with no concept model
//! (docs/baselines.md).
//!
//! Missing annotations. The condition of a cell is `[c·o ‖ o]`: the
//! annotated values where observed (0 elsewhere) beside the observed mask,
//! so "unknown" is a state the flow can tell from "0". Cells with missing
//! annotations train like any other. An edit sets the edited columns to
//! their targets and marks them observed. A cell whose annotation is missing
//! in a column that no training cell had missing would be inverted under a
//! condition the flow never saw; such an edit is refused, naming the column
//! (the reference has no notion of a missing annotation).

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use serde::{Deserialize, Serialize};

use super::model::{FlowConfig, FlowHistory, FlowMatcher, FlowMode};
use super::network::VelocityDims;
use crate::ModelError;
use crate::data::ConceptData;
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;
use crate::train::{Observer, TrainConfig};

/// raw-fm's velocity network (the flow's defaults; docs/decisions/flow.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawFmConfig {
    pub network: FlowConfig,
}

impl RawFmConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.network.validate()
    }
}

/// Which concept columns had missing annotations in training (1.0 / 0.0).
const MISSING_SEEN: &str = "raw_fm.missing_seen";

/// A flow conditioned on observed concept annotations.
#[derive(Debug)]
pub struct RawFm {
    config: RawFmConfig,
    dims: Dims,
    flow: FlowMatcher,
    /// Per concept column: whether some training cell lacked it.
    missing_seen: Vec<bool>,
}

/// The condition `[c·o ‖ o]` of cells with annotations `values` observed where `observed` is 1.
pub fn raw_condition(
    values: ArrayView2<f32>,
    observed: ArrayView2<f32>,
) -> Result<Array2<f32>, ModelError> {
    if values.dim() != observed.dim() {
        return Err(ModelError::Input(format!(
            "annotations {:?} and their observed mask {:?} differ in shape",
            values.dim(),
            observed.dim()
        )));
    }
    let known = &values * &observed;
    concatenate(Axis(1), &[known.view(), observed])
        .map_err(|e| ModelError::Input(format!("annotations do not line up: {e}")))
}

impl RawFm {
    /// An untrained model for data of `dims` (weights from `seed`).
    pub fn new(
        config: RawFmConfig,
        dims: Dims,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let k = dims.n_concepts();
        if k == 0 {
            return Err(ModelError::Input(
                "raw-fm needs at least one concept to condition on".into(),
            ));
        }
        let flow = FlowMatcher::new(config.network.clone(), dims.input_dim, 2 * k, seed, device)?;
        Ok(RawFm {
            config,
            dims,
            flow,
            missing_seen: vec![false; k],
        })
    }

    /// Trains the flow on `data` under its annotations.
    pub fn fit(
        config: RawFmConfig,
        data: &ConceptData,
        train: &TrainConfig,
        seed: u64,
        device: &Device,
        observer: &mut Observer,
    ) -> Result<(Self, FlowHistory), ModelError> {
        let mut model = RawFm::new(config, data.dims(), seed, device)?;
        model.missing_seen = data
            .observed
            .columns()
            .into_iter()
            .map(|c| c.iter().any(|&o| o == 0.0))
            .collect();
        let cond = raw_condition(data.concepts.view(), data.observed.view())?;
        let history = model.flow.fit(&data.x, &cond, train, seed, observer)?;
        Ok((model, history))
    }

    /// Reads the state written by [`Model::to_safetensors`].
    pub fn from_safetensors(
        config: RawFmConfig,
        dims: Dims,
        bytes: &[u8],
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let k = dims.n_concepts();
        let velocity = VelocityDims {
            x_dim: dims.input_dim,
            c_dim: 2 * k,
            emb_dim: config.network.emb_dim,
            n_layers: config.network.n_layers,
        };
        let (flow, mut rest) =
            FlowMatcher::from_safetensors_parts(config.network.clone(), velocity, bytes, device)?;
        let seen = rest
            .shift_remove(MISSING_SEEN)
            .ok_or_else(|| ModelError::Input(format!("the weights lack `{MISSING_SEEN}`")))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if seen.len() != k {
            return Err(ModelError::Input(format!(
                "`{MISSING_SEEN}` has {} entries for {k} concepts",
                seen.len()
            )));
        }
        Ok(RawFm {
            config,
            dims,
            flow,
            missing_seen: seen.iter().map(|&v| v > 0.5).collect(),
        })
    }

    /// The conditions before and after the edit: the cells' own
    /// annotations, then the edited columns set to their targets (observed).
    fn conditions(&self, request: &EditRequest) -> Result<(Array2<f32>, Array2<f32>), ModelError> {
        let a = request.annotations.ok_or_else(|| {
            ModelError::Input(
                "raw-fm conditions on the cells' own concept annotations, and none were given \
                 (the cells' obs must hold the model's concept columns)"
                    .into(),
            )
        })?;
        for ((i, j), &o) in a.observed.indexed_iter() {
            if o == 0.0 && !self.missing_seen[j] {
                return Err(ModelError::Input(format!(
                    "cell {i} has no annotation for concept column {j}, which every training \
                     cell had: raw-fm cannot invert it (annotate the cell, or fit on data with \
                     missing values in that column)"
                )));
            }
        }
        let mask = request.mask;
        let values = &a.values * &(1.0 - &mask) + &request.values * &mask;
        let observed = (&a.observed + &mask).mapv(|o| o.min(1.0));
        Ok((
            raw_condition(a.values, a.observed)?,
            raw_condition(values.view(), observed.view())?,
        ))
    }
}

impl Counterfactual for RawFm {
    fn reads_annotations(&self) -> bool {
        true
    }

    /// Inverts each cell under its annotations and integrates forward under
    /// the edited ones (or, in decode mode, fresh noise forward); no sampling
    /// in the request means [`super::Sampling::default`], as for CBM-FM.
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        if request.x.ncols() != self.dims.input_dim {
            return Err(ModelError::Input(format!(
                "the model takes {} features, the cells have {}",
                self.dims.input_dim,
                request.x.ncols()
            )));
        }
        request.check(self.dims.n_concepts())?;
        let (cond, new_cond) = self.conditions(request)?;
        let sampling = request.sampling.unwrap_or_default();
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

impl Model for RawFm {
    fn kind(&self) -> ModelKind {
        ModelKind::RawFm
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::RawFm(self.config.clone())
    }
    fn dims(&self) -> Dims {
        self.dims
    }
    fn n_parameters(&self) -> usize {
        self.flow.n_parameters()
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let seen: Vec<f32> = self
            .missing_seen
            .iter()
            .map(|&s| if s { 1.0 } else { 0.0 })
            .collect();
        let n = seen.len();
        let seen = Tensor::from_vec(seen, n, &Device::Cpu)?;
        self.flow
            .to_safetensors_with(&[(MISSING_SEEN.to_string(), seen)])
    }
}

#[cfg(test)]
mod tests;
