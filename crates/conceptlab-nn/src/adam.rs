//! Adam (`torch.optim.Adam`: no weight decay, bias-corrected), fused and in
//! place.
//!
//! candle-nn's `AdamW` allocates ~14 tensors per parameter per step; here the
//! moments live in plain buffers and one pass over each parameter updates
//! moments and weights together, in the same f32 operation order as PyTorch
//! so a step agrees with it to rounding.
//!
//! That loop runs on CPU memory only. Parameters on another device (CUDA)
//! keep their moments as tensors on that device and are updated by the
//! same formula as a chain of candle ops ([`Moments::Tensors`]); a CPU test
//! runs both paths on the same gradients.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var, bail};
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
    moments: Vec<Moments>,
}

/// The first and second moments of one parameter.
#[derive(Debug)]
enum Moments {
    /// In host buffers, updated by the fused CPU loop.
    Host(Vec<f32>, Vec<f32>),
    /// Tensors on the parameter's device, updated by tensor ops (any device).
    Tensors(Tensor, Tensor),
}

impl Adam {
    /// Fresh state (zero moments) for `params`.
    /// Parameters on the CPU get the fused loop, others the tensor-op path.
    pub fn new(params: &ParamSet, config: AdamConfig) -> Result<Self, NnError> {
        if params.device().is_cpu() {
            let moments = params
                .iter()
                .map(|(_, v)| Moments::Host(vec![0f32; v.elem_count()], vec![0f32; v.elem_count()]))
                .collect();
            Ok(Adam {
                config,
                step: 0,
                moments,
            })
        } else {
            Self::composed(params, config)
        }
    }

    /// State for the tensor-op path whatever the device (tests compare it
    /// with the fused loop on the CPU).
    pub(crate) fn composed(params: &ParamSet, config: AdamConfig) -> Result<Self, NnError> {
        let moments = params
            .iter()
            .map(|(_, v)| {
                let zeros = v.as_tensor().zeros_like()?;
                Ok(Moments::Tensors(zeros.clone(), zeros))
            })
            .collect::<Result<_, NnError>>()?;
        Ok(Adam {
            config,
            step: 0,
            moments,
        })
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
        let step_size = (c.lr / bias1) as f32;
        let bias2_sqrt = bias2.sqrt() as f32;
        for ((_, var), moments) in params.iter().zip(self.moments.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            match moments {
                Moments::Host(m, v) => {
                    let grad = grad.contiguous()?;
                    let op = AdamUpdate {
                        m: RefCell::new(m),
                        v: RefCell::new(v),
                        beta1: c.beta1 as f32,
                        beta2: c.beta2 as f32,
                        eps: c.eps as f32,
                        step_size,
                        bias2_sqrt,
                    };
                    var.as_tensor().inplace_op2(&grad, &op)?;
                }
                Moments::Tensors(m, v) => {
                    let hyper = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
                    composed_update(var, grad, m, v, hyper, step_size, bias2_sqrt)?;
                }
            }
        }
        Ok(())
    }
}

/// One Adam update of `var` by tensor ops, in the fused loop's formula:
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − s·m / (√v / √(1−β₂ᵗ) + ε).
/// The multipliers are rounded to f32 first, as the loop uses them.
fn composed_update(
    var: &Var,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    (beta1, beta2, eps): (f32, f32, f32),
    step_size: f32,
    bias2_sqrt: f32,
) -> candle_core::Result<()> {
    let f = |x: f32| x as f64;
    *m = (m.affine(f(beta1), 0.0)? + grad.affine(f(1.0 - beta1), 0.0)?)?;
    *v = (v.affine(f(beta2), 0.0)? + grad.sqr()?.affine(f(1.0 - beta2), 0.0)?)?;
    let denom = v.sqrt()?.affine(1.0 / f(bias2_sqrt), f(eps))?;
    let update = (&*m / denom)?.affine(f(step_size), 0.0)?;
    var.set(&(var.as_tensor() - update)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A small parameter set: one parameter large enough for the parallel
    /// chunks of the fused loop, one small, one without a gradient.
    fn params() -> Result<ParamSet, NnError> {
        let mut p = ParamSet::new(&Device::Cpu);
        let big: Vec<f32> = (0..2 * PAR_CHUNK + 17)
            .map(|i| ((i as f32) * 0.013).sin())
            .collect();
        p.add("big", big, &[2 * PAR_CHUNK + 17])?;
        p.add("small", vec![0.5, -1.0, 2.0, 0.0], &[2, 2])?;
        p.add("frozen", vec![1.0, 2.0, 3.0], &[3])?;
        Ok(p)
    }

    /// Weights after five steps on a fixed quadratic-ish loss.
    fn train(composed: bool) -> Result<Vec<Vec<f32>>, NnError> {
        let p = params()?;
        let config = AdamConfig {
            lr: 0.05,
            ..AdamConfig::default()
        };
        let mut adam = if composed {
            Adam::composed(&p, config)?
        } else {
            Adam::new(&p, config)?
        };
        for step in 0..5 {
            let big = p.get("big").ok_or_else(|| NnError::Tensor("big".into()))?;
            let small = p
                .get("small")
                .ok_or_else(|| NnError::Tensor("small".into()))?;
            let shift = 0.3 * step as f64;
            let loss = ((big.affine(1.0, shift)?.sqr()?.sum_all()? * 1e-3)?
                + small.powf(3.0)?.sum_all()?)?;
            adam.step(&p, &loss.backward()?)?;
        }
        assert_eq!(adam.steps(), 5);
        p.iter()
            .map(|(_, v)| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    #[test]
    fn composed_path_agrees_with_the_fused_loop() -> Result<(), NnError> {
        let before: Vec<Vec<f32>> = params()?
            .iter()
            .map(|(_, v)| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<_, NnError>>()?;
        let (fused, composed) = (train(false)?, train(true)?);
        for ((a, b), start) in fused.iter().zip(&composed).zip(&before) {
            assert_eq!(a.len(), b.len());
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() <= 1e-6 * (1.0 + u.abs()), "{u} vs {v}");
            }
            // The parameters moved (except the one without a gradient).
            let moved = a.iter().zip(start).any(|(u, s)| u != s);
            assert_eq!(moved, a.len() != 3);
        }
        Ok(())
    }

    /// The first step moves each weight by about lr against its gradient's
    /// sign (m̂/√v̂ = ±1), on both paths.
    #[test]
    fn first_step_moves_by_the_learning_rate() -> Result<(), NnError> {
        for composed in [false, true] {
            let mut p = ParamSet::new(&Device::Cpu);
            p.add("w", vec![1.0, -2.0], &[2])?;
            let config = AdamConfig {
                lr: 0.1,
                ..AdamConfig::default()
            };
            let mut adam = if composed {
                Adam::composed(&p, config)?
            } else {
                Adam::new(&p, config)?
            };
            let w = p.get("w").ok_or_else(|| NnError::Tensor("w".into()))?;
            adam.step(&p, &w.sqr()?.sum_all()?.backward()?)?;
            let after = w.to_vec1::<f32>()?;
            assert!(
                (after[0] - 0.9).abs() < 1e-6 && (after[1] + 1.9).abs() < 1e-6,
                "{after:?}"
            );
        }
        Ok(())
    }
}
