//! A conditional flow-matching generator: trains the velocity network on a
//! straight path from N(0, I) (t = 0) to the data (t = 1), and produces
//! counterfactuals by integrating the learned field.
//!
//! `Edit` integrates an observed cell backward to `t_edit` under its own
//! condition, then forward under the edited one: the cell's individual
//! position in the noise space is kept. `Decode` starts from fresh noise.

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, stream_rng, streams};
use conceptlab_nn::ode::{Solver, integrate};
use ndarray::{Array2, ArrayView2, Axis, s};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::network::{FOURIER_BUFFER, VelocityDims, VelocityNet, flow_matching_loss};
use crate::ModelError;
use crate::convert::{normal_tensor, rows_tensor, to_array, to_tensor};
use crate::train::{self, Objective, Observer, Rows, Split, Summary, TrainConfig, TrainingRun};

/// Rows integrated together: bounds memory for any number of cells.
const ODE_CHUNK: usize = 1024;

/// The velocity network's size and the classifier-free guidance settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Embedding width E (the reference uses 1024).
    pub emb_dim: usize,
    pub n_layers: usize,
    #[serde(serialize_with = "crate::shortest::f32")]
    pub dropout: f32,
    /// Probability of training on the null condition (enables guidance).
    pub p_uncond: f64,
    /// Guidance weight w: v = v_u + w·(v_c − v_u); 1 needs no unconditional
    /// pass (the reference computes one anyway).
    pub guidance: f64,
}

impl Default for FlowConfig {
    /// A quarter of the reference's width, for CPU cost (~13× fewer
    /// weights); see docs/decisions/flow.md.
    fn default() -> Self {
        FlowConfig {
            emb_dim: 256,
            n_layers: 4,
            dropout: 0.1,
            p_uncond: 0.0,
            guidance: 1.0,
        }
    }
}

impl FlowConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_LAYERS, MAX_WIDTH, count, real};
        count("emb_dim", self.emb_dim, 1..=MAX_WIDTH)?;
        count("n_layers", self.n_layers, 1..=MAX_LAYERS)?;
        real("dropout", f64::from(self.dropout), 0.0..=1.0, true)?;
        real("p_uncond", self.p_uncond, 0.0..=1.0, true)?;
        real("guidance", self.guidance, -1e6..=1e6, false)
    }

    /// The reference's CBM-FM network (E = 1024, L = 4).
    pub fn reference() -> Self {
        FlowConfig {
            emb_dim: 1024,
            ..FlowConfig::default()
        }
    }
}

/// The flow's training settings when none are given: the reference's
/// (lr 3e-4, batch 128, γ 0.997, 200 epochs) with early stopping.
pub fn default_flow_training() -> TrainConfig {
    TrainConfig {
        lr: 3e-4,
        batch_size: 128,
        ..TrainConfig::default()
    }
}

/// What training a flow did.
pub type FlowHistory = TrainingRun<FlowLoss>;

impl FlowHistory {
    /// The per-epoch losses as CSV (flow_history.csv).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("epoch,train_flow_matching,val_flow_matching\n");
        for e in &self.epochs {
            out.push_str(&format!(
                "{},{},{}\n",
                e.epoch,
                e.train.0,
                e.validation.map_or(String::new(), |v| v.0.to_string())
            ));
        }
        out
    }
}

/// How a counterfactual is produced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum FlowMode {
    /// Invert each cell to `t_edit` under its condition, then integrate
    /// forward under the new one.
    Edit { t_edit: f64 },
    /// Integrate fresh noise forward under the new condition.
    Decode,
}

/// How counterfactuals are integrated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub mode: FlowMode,
    pub solver: Solver,
    /// Steps of each integration (adaptive solvers: the first step size).
    pub steps: usize,
    /// Seed of the starting noise in `Decode` mode.
    pub seed: u64,
}

/// Steps of each integration when none are asked for (RK4: 96 network
/// evaluations per edit; indistinguishable from 1000-step Euler in
/// docs/decisions/flow.md).
pub const DEFAULT_STEPS: usize = 12;

impl Default for Sampling {
    /// What every flow uses when a request names no sampling: a full
    /// inversion (t_edit 0), RK4 with [`DEFAULT_STEPS`] steps.
    fn default() -> Self {
        Sampling {
            mode: FlowMode::Edit { t_edit: 0.0 },
            solver: Solver::Rk4,
            steps: DEFAULT_STEPS,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Checks ranges before any cell is integrated.
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_ODE_STEPS, count, real};
        count("steps", self.steps, 1..=MAX_ODE_STEPS)?;
        if let FlowMode::Edit { t_edit } = self.mode {
            real("t_edit", t_edit, 0.0..=1.0, true)?;
        }
        if let Solver::DormandPrince { rtol, atol } = self.solver {
            real("rtol", rtol, 1e-12..=1.0, false)?;
            real("atol", atol, 1e-12..=1.0, false)?;
        }
        Ok(())
    }
}

/// Cells and their conditions, row by row.
pub struct Paired {
    x: Array2<f32>,
    cond: Array2<f32>,
}

impl Rows for Paired {
    fn n_rows(&self) -> usize {
        self.x.nrows()
    }
    fn select(&self, rows: &[usize]) -> Self {
        Paired {
            x: self.x.select(Axis(0), rows),
            cond: self.cond.select(Axis(0), rows),
        }
    }
}

/// The mean flow-matching loss of a pass over cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowLoss(pub f64);

impl Summary for FlowLoss {
    fn total(&self) -> f64 {
        self.0
    }
    fn non_finite(&self) -> Option<(&'static str, f64)> {
        (!self.0.is_finite()).then_some(("flow matching", self.0))
    }
}

/// A trained (or fresh) conditional flow.
#[derive(Debug)]
pub struct FlowMatcher {
    config: FlowConfig,
    net: VelocityNet,
    device: Device,
}

impl Objective for FlowMatcher {
    type Data = Paired;
    type Summary = FlowLoss;
    /// The loss summed over cells.
    type Accumulator = f64;

    fn params(&self) -> &conceptlab_nn::ParamSet {
        &self.net.params
    }

    fn batch_loss(
        &self,
        data: &Paired,
        batch: &[usize],
        rng: &mut Rng,
        sum: &mut f64,
    ) -> Result<Tensor, ModelError> {
        let xb = rows_tensor(&data.x, batch, &self.device)?;
        let cb = to_tensor(data.cond.select(Axis(0), batch).view(), &self.device)?;
        let loss = self.batch_loss(&xb, &cb, rng, true)?;
        *sum += loss.to_scalar::<f32>()? as f64 * batch.len() as f64;
        Ok(loss)
    }

    fn summarize(sum: f64, n_cells: usize) -> FlowLoss {
        FlowLoss(sum / n_cells as f64)
    }

    fn validate(&self, data: &Paired, seed: u64) -> Result<FlowLoss, ModelError> {
        let mut rng = stream_rng(seed, streams::VALIDATION_NOISE);
        let mut total = 0.0;
        let n = data.n_rows();
        for start in (0..n).step_by(ODE_CHUNK) {
            let end = (start + ODE_CHUNK).min(n);
            let xb = to_tensor(data.x.slice(s![start..end, ..]), &self.device)?;
            let cb = to_tensor(data.cond.slice(s![start..end, ..]), &self.device)?;
            total += self
                .batch_loss(&xb, &cb, &mut rng, false)?
                .to_scalar::<f32>()? as f64
                * (end - start) as f64;
        }
        Ok(FlowLoss(total / n as f64))
    }
}

impl FlowMatcher {
    /// A new flow on `device` for `x_dim`-dimensional data under
    /// `c_dim`-dimensional conditions.
    pub fn new(
        config: FlowConfig,
        x_dim: usize,
        c_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let device = device.clone();
        let dims = VelocityDims {
            x_dim,
            c_dim,
            emb_dim: config.emb_dim,
            n_layers: config.n_layers,
        };
        let net = VelocityNet::new(
            dims,
            config.dropout,
            &device,
            &mut stream_rng(seed, streams::INIT),
        )?;
        Ok(FlowMatcher {
            config,
            net,
            device,
        })
    }

    /// Trainable parameters.
    pub fn n_parameters(&self) -> usize {
        self.net.params.numel()
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The network's sizes (data and condition dimensions included).
    pub fn dims(&self) -> VelocityDims {
        self.net.dims()
    }

    /// Every weight and the Fourier frequencies, in the safetensors format
    /// under the reference's state-dict names (same weights, same bytes).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let buffer = (FOURIER_BUFFER.to_string(), self.net.fourier().clone());
        Ok(self.net.params.to_safetensors(&[buffer])?)
    }

    /// A flow with `config` and `dims` whose weights are read from a
    /// safetensors buffer written by [`FlowMatcher::to_safetensors`].
    pub fn from_safetensors(
        config: FlowConfig,
        dims: VelocityDims,
        bytes: &[u8],
        device: &Device,
    ) -> Result<Self, ModelError> {
        Ok(FlowMatcher::from_safetensors_parts(config, dims, bytes, device)?.0)
    }

    /// [`FlowMatcher::from_safetensors`], also returning the buffer's
    /// tensors that are not the flow's (a model's own state saved beside it).
    pub(crate) fn from_safetensors_parts(
        config: FlowConfig,
        dims: VelocityDims,
        bytes: &[u8],
        device: &Device,
    ) -> Result<(Self, indexmap::IndexMap<String, Tensor>), ModelError> {
        if dims.emb_dim != config.emb_dim || dims.n_layers != config.n_layers {
            return Err(ModelError::Config(format!(
                "flow sizes {dims:?} disagree with its configuration (emb_dim {}, n_layers {})",
                config.emb_dim, config.n_layers
            )));
        }
        let mut flow = FlowMatcher::new(config, dims.x_dim, dims.c_dim, 0, device)?;
        let mut buffers = flow.net.params.load_safetensors(bytes)?;
        let fourier = buffers.shift_remove(FOURIER_BUFFER).ok_or_else(|| {
            ModelError::Config(format!("the flow's weights lack `{FOURIER_BUFFER}`"))
        })?;
        flow.net.set_fourier(fourier)?;
        Ok((flow, buffers))
    }

    /// [`FlowMatcher::to_safetensors`] with further tensors beside the flow's.
    pub(crate) fn to_safetensors_with(
        &self,
        extra: &[(String, Tensor)],
    ) -> Result<Vec<u8>, ModelError> {
        let mut all = vec![(FOURIER_BUFFER.to_string(), self.net.fourier().clone())];
        all.extend(extra.iter().cloned());
        Ok(self.net.params.to_safetensors(&all)?)
    }

    /// Flow-matching loss of one batch (t ~ U(0,1), x0 ~ N(0, I) from `rng`).
    fn batch_loss(
        &self,
        x1: &Tensor,
        cond: &Tensor,
        rng: &mut Rng,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let (b, d) = x1.dims2()?;
        let x0 = normal_tensor(rng, b, d, &self.device)?;
        let t: Vec<f32> = (0..b).map(|_| rng.random::<f32>()).collect();
        let t = Tensor::from_vec(t, (b, 1), &self.device)?;
        let cond = if train && self.config.p_uncond > 0.0 {
            // Condition dropout: whole rows set to the null condition.
            let keep: Vec<f32> = (0..b)
                .map(|_| {
                    if rng.random::<f64>() < self.config.p_uncond {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect();
            cond.broadcast_mul(&Tensor::from_vec(keep, (b, 1), &self.device)?)?
        } else {
            cond.clone()
        };
        let dropout_rng = (train && self.config.dropout > 0.0).then_some(rng);
        flow_matching_loss(&self.net, &x0, x1, &t, Some(&cond), dropout_rng)
    }

    /// Trains on data `x` (cells × x_dim) with conditions `cond` (cells ×
    /// c_dim), holding out a shuffled validation split for early stopping and
    /// keeping the best weights.
    pub fn fit(
        &mut self,
        x: &Array2<f32>,
        cond: &Array2<f32>,
        train: &TrainConfig,
        seed: u64,
        observer: &mut Observer,
    ) -> Result<FlowHistory, ModelError> {
        if x.nrows() != cond.nrows() {
            return Err(ModelError::Input(format!(
                "{} cells but {} conditions",
                x.nrows(),
                cond.nrows()
            )));
        }
        let data = Paired {
            x: x.clone(),
            cond: cond.clone(),
        };
        train::fit(&*self, &data, Split::Shuffled, train, seed, observer)
    }

    /// The guided velocity at time `t` for a batch, detached from the
    /// autograd graph: the weights are variables, so an attached velocity
    /// would chain every step of an integration to the previous one and keep
    /// all of their intermediates alive (a 1000-step Euler edit of 1,000
    /// cells grew past 24 GB).
    fn velocity(&self, x: &Tensor, t: f64, cond: &Tensor) -> Result<Tensor, ModelError> {
        let b = x.dims2()?.0;
        let tt = Tensor::full(t as f32, (b, 1), &self.device)?;
        let v_c = self.net.forward(x, &tt, Some(cond), None)?;
        if self.config.guidance == 1.0 {
            return Ok(v_c.detach());
        }
        let v_u = self.net.forward(x, &tt, Some(&cond.zeros_like()?), None)?;
        Ok((&v_u + ((v_c - &v_u)? * self.config.guidance)?)?.detach())
    }

    fn flow(
        &self,
        x: &Tensor,
        cond: &Tensor,
        t0: f64,
        t1: f64,
        solver: Solver,
        steps: usize,
    ) -> Result<(Tensor, usize), ModelError> {
        let mut field = |t: f64, x: &Tensor| {
            self.velocity(x, t, cond)
                .map_err(|e| conceptlab_nn::NnError::Tensor(e.to_string()))
        };
        let (out, stats) = integrate(&mut field, x, t0, t1, solver, steps)?;
        Ok((out, stats.evaluations))
    }

    /// Counterfactuals of cells `x` with conditions `cond` under `new_cond`,
    /// in chunks of 1,024 cells. Returns the cells and the mean number of
    /// network evaluations per chunk.
    pub fn counterfactual(
        &self,
        x: ArrayView2<f32>,
        cond: ArrayView2<f32>,
        new_cond: ArrayView2<f32>,
        sampling: &Sampling,
    ) -> Result<(Array2<f32>, f64), ModelError> {
        let Sampling {
            mode,
            solver,
            steps,
            seed,
        } = *sampling;
        sampling.validate()?;
        if x.nrows() != cond.nrows() || cond.dim() != new_cond.dim() {
            return Err(ModelError::Input(format!(
                "cells {:?}, conditions {:?} and new conditions {:?} do not line up",
                x.dim(),
                cond.dim(),
                new_cond.dim()
            )));
        }
        if steps == 0 {
            return Err(ModelError::Config(
                "an integration needs at least one step".into(),
            ));
        }
        if let FlowMode::Edit { t_edit } = mode
            && !(0.0..1.0).contains(&t_edit)
        {
            return Err(ModelError::Config(format!(
                "t_edit must be in [0, 1) (0 inverts to pure noise), got {t_edit}"
            )));
        }
        let mut out = Array2::zeros(x.dim());
        let mut evaluations = 0usize;
        let mut chunks = 0usize;
        for (k, start) in (0..x.nrows()).step_by(ODE_CHUNK).enumerate() {
            let end = (start + ODE_CHUNK).min(x.nrows());
            let rows = s![start..end, ..];
            let xc = to_tensor(x.slice(rows), &self.device)?;
            let cc = to_tensor(cond.slice(rows), &self.device)?;
            let nc = to_tensor(new_cond.slice(rows), &self.device)?;
            let (start_state, t_start, used) = match mode {
                FlowMode::Edit { t_edit } => {
                    let (z, used) = self.flow(&xc, &cc, 1.0, t_edit, solver, steps)?;
                    (z, t_edit, used)
                }
                FlowMode::Decode => {
                    let mut rng = stream_rng(seed, streams::DECODE_NOISE_BASE + k as u64);
                    (
                        normal_tensor(&mut rng, end - start, x.ncols(), &self.device)?,
                        0.0,
                        0,
                    )
                }
            };
            let (y, used2) = self.flow(&start_state, &nc, t_start, 1.0, solver, steps)?;
            out.slice_mut(rows).assign(&to_array(&y)?);
            evaluations += used + used2;
            chunks += 1;
        }
        Ok((out, evaluations as f64 / chunks.max(1) as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_core::random::{standard_normal, stream_rng};

    fn small() -> (FlowMatcher, Array2<f32>, Array2<f32>) {
        let config = FlowConfig {
            emb_dim: 16,
            n_layers: 2,
            ..FlowConfig::default()
        };
        let flow = FlowMatcher::new(config, 5, 3, 7, &candle_core::Device::Cpu).unwrap();
        let mut rng = stream_rng(1, 0);
        let x = Array2::from_shape_fn((40, 5), |_| standard_normal(&mut rng) as f32);
        let c = Array2::from_shape_fn((40, 3), |_| standard_normal(&mut rng) as f32);
        (flow, x, c)
    }

    fn sampling(mode: FlowMode, solver: Solver, steps: usize, seed: u64) -> Sampling {
        Sampling {
            mode,
            solver,
            steps,
            seed,
        }
    }

    #[test]
    fn weights_file_round_trips_the_flow() {
        let (flow, x, c) = small();
        let bytes = flow.to_safetensors().unwrap();
        let back = FlowMatcher::from_safetensors(
            flow.config().clone(),
            flow.dims(),
            &bytes,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_eq!(back.to_safetensors().unwrap(), bytes);
        let s = sampling(FlowMode::Edit { t_edit: 0.0 }, Solver::Rk4, 4, 0);
        let c2 = c.mapv(|v| v + 1.0);
        let a = flow
            .counterfactual(x.view(), c.view(), c2.view(), &s)
            .unwrap();
        let b = back
            .counterfactual(x.view(), c.view(), c2.view(), &s)
            .unwrap();
        assert_eq!(a.0, b.0);
        // A file for other sizes is refused, naming the parameter.
        let other = FlowMatcher::new(
            FlowConfig {
                emb_dim: 16,
                n_layers: 2,
                ..FlowConfig::default()
            },
            6,
            3,
            7,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let err = FlowMatcher::from_safetensors(
            other.config().clone(),
            other.dims(),
            &bytes,
            &candle_core::Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("x_embedder"), "{err}");
    }

    #[test]
    fn edit_with_unchanged_condition_returns_the_cell() {
        let (flow, x, c) = small();
        for (solver, steps, tol) in [
            (Solver::Euler, 200, 1e-3),
            (Solver::Rk4, 10, 1e-6),
            (
                Solver::DormandPrince {
                    rtol: 1e-6,
                    atol: 1e-6,
                },
                4,
                1e-6,
            ),
        ] {
            let s = sampling(FlowMode::Edit { t_edit: 0.0 }, solver, steps, 0);
            let (y, evaluations) = flow
                .counterfactual(x.view(), c.view(), c.view(), &s)
                .unwrap();
            let err = (&y - &x).mapv(|v| (v * v) as f64).mean().unwrap();
            assert!(err < tol, "{solver:?} {steps}: round trip {err:e}");
            if !matches!(solver, Solver::DormandPrince { .. }) {
                let expected = 2 * steps * solver.evaluations_per_step();
                assert_eq!(evaluations, expected as f64, "{solver:?}");
            }
        }
        // Changing the condition changes the cells.
        let s = sampling(FlowMode::Edit { t_edit: 0.0 }, Solver::Rk4, 10, 0);
        let (y, _) = flow
            .counterfactual(x.view(), c.view(), c.mapv(|v| -v).view(), &s)
            .unwrap();
        assert!((&y - &x).mapv(f32::abs).sum() > 1e-2);
    }

    #[test]
    fn integration_keeps_no_autograd_graph() {
        let (flow, x, c) = small();
        let device = Device::Cpu;
        let (xt, ct) = (
            to_tensor(x.view(), &device).unwrap(),
            to_tensor(c.view(), &device).unwrap(),
        );
        let v = flow.velocity(&xt, 0.5, &ct).unwrap();
        assert!(!v.track_op(), "velocity attached to the weights' graph");
        let next = (&xt + (v * 0.1).unwrap()).unwrap();
        assert!(!next.track_op());
    }

    #[test]
    fn decode_is_seeded() {
        let (flow, x, c) = small();
        let run = |seed| {
            flow.counterfactual(
                x.view(),
                c.view(),
                c.view(),
                &sampling(FlowMode::Decode, Solver::Midpoint, 5, seed),
            )
            .unwrap()
            .0
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn bad_sampling_settings_are_refused() {
        let (flow, x, c) = small();
        for s in [
            sampling(FlowMode::Edit { t_edit: 0.0 }, Solver::Euler, 0, 0),
            sampling(FlowMode::Edit { t_edit: 1.0 }, Solver::Euler, 5, 0),
            sampling(FlowMode::Edit { t_edit: -0.1 }, Solver::Euler, 5, 0),
        ] {
            let err = flow
                .counterfactual(x.view(), c.view(), c.view(), &s)
                .unwrap_err();
            assert!(err.is_bad_input(), "{err}");
        }
        let short = c.slice(s![..10, ..]);
        assert!(
            flow.counterfactual(
                x.view(),
                short,
                short,
                &sampling(FlowMode::Decode, Solver::Euler, 5, 0)
            )
            .is_err()
        );
    }
}
