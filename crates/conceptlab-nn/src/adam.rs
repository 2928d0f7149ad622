//! Adam (`torch.optim.Adam`: no weight decay, bias-corrected), fused and in
//! place.
//!
//! candle-nn's `AdamW` allocates ~14 tensors per parameter per step; here the
//! moments live in plain buffers and one pass over each parameter updates
//! moments and weights together, in the same f32 operation order as PyTorch
//! so a step agrees with it to rounding.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, bail};
use rayon::prelude::*;

use super::params::ParamSet;
use crate::NnError;

/// Adam's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Optimiser state for one [`ParamSet`].
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    step: u64,
    moments: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Adam {
    /// Fresh state (zero moments) for `params`.
    pub fn new(params: &ParamSet, config: AdamConfig) -> Self {
        let moments = params
            .iter()
            .map(|(_, v)| (vec![0f32; v.elem_count()], vec![0f32; v.elem_count()]))
            .collect();
        Adam {
            config,
            step: 0,
            moments,
        }
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// Sets the learning rate (schedules call this between epochs).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of every parameter that received a gradient. Parameters
    /// without one are left alone, as PyTorch does.
    pub fn step(&mut self, params: &ParamSet, grads: &GradStore) -> Result<(), NnError> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for ((_, var), (m, v)) in params.iter().zip(self.moments.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let grad = grad.contiguous()?;
            let op = AdamUpdate {
                m: RefCell::new(m),
                v: RefCell::new(v),
                beta1: c.beta1 as f32,
                beta2: c.beta2 as f32,
                eps: c.eps as f32,
                step_size: (c.lr / bias1) as f32,
                bias2_sqrt: bias2.sqrt() as f32,
            };
            var.as_tensor().inplace_op2(&grad, &op)?;
        }
        Ok(())
    }
}

struct AdamUpdate<'a> {
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    bias2_sqrt: f32,
}

/// Parameters at least this large are updated in parallel chunks.
const PAR_CHUNK: usize = 1 << 14;

impl InplaceOp2 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "conceptlab-adam"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            bail!("adam: parameter and gradient must be contiguous")
        };
        let CpuStorage::F32(param) = s1 else {
            bail!("adam: parameters must be f32")
        };
        let grad = &s2.as_slice::<f32>()?[g0..g1];
        let param = &mut param[p0..p1];
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        if param.len() != grad.len() || m.len() != param.len() {
            bail!(
                "adam: state does not match parameter of {} values",
                param.len()
            )
        }
        let (b1, b2, eps, step_size, bias2_sqrt) = (
            self.beta1,
            self.beta2,
            self.eps,
            self.step_size,
            self.bias2_sqrt,
        );
        let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for i in 0..p.len() {
                let gi = g[i];
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                let denom = v[i].sqrt() / bias2_sqrt + eps;
                p[i] -= step_size * (m[i] / denom);
            }
        };
        if param.len() >= 2 * PAR_CHUNK {
            param
                .par_chunks_mut(PAR_CHUNK)
                .zip(grad.par_chunks(PAR_CHUNK))
                .zip(m.par_chunks_mut(PAR_CHUNK).zip(v.par_chunks_mut(PAR_CHUNK)))
                .for_each(|((p, g), (m, v))| update(p, g, m, v));
        } else {
            update(param, grad, &mut m[..], &mut v[..]);
        }
        Ok(())
    }
}
