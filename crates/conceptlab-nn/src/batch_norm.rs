//! Batch normalisation over the rows of a (batch × features) matrix:
//! PyTorch's `nn.BatchNorm1d`.
//!
//! Training normalises with the batch's own mean and biased variance and
//! moves the running statistics towards the batch's mean and *unbiased*
//! variance; evaluation normalises with the running statistics. The momentum
//! follows PyTorch's convention, `running = (1 − m)·running + m·batch`
//! (scvi-tools' layers use m = 0.01; flax writes the same rule with the
//! complement, `momentum = 0.99`).
//!
//! The running statistics are registered in the [`ParamSet`] beside γ and β
//! (under PyTorch's buffer names `running_mean`, `running_var`), so a
//! snapshot (early stopping's best epoch), a restore and a checkpoint carry
//! them with the weights they belong to. They never take part in a graph
//! that is differentiated, so they receive no gradient and Adam leaves them
//! alone.

use candle_core::{Tensor, Var};

use super::params::ParamSet;
use crate::NnError;

/// Settings of one batch-norm layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// PyTorch's momentum: the weight of the current batch in the running
    /// statistics.
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl Default for BatchNormConfig {
    /// PyTorch's defaults (momentum 0.1, eps 1e-5).
    fn default() -> Self {
        BatchNormConfig {
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

/// `nn.BatchNorm1d(d)` with affine γ, β and tracked running statistics.
#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
    config: BatchNormConfig,
}

/// The parameter set's handle on a registered tensor (it shares storage).
fn var_of(params: &ParamSet, name: &str) -> Result<Var, NnError> {
    params
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| NnError::Tensor(format!("parameter `{name}` was not registered")))
}

impl BatchNorm1d {
    /// Registers `prefix.{weight, bias, running_mean, running_var}` over
    /// `dim` features in `params` (γ = 1, β = 0, mean 0, variance 1, as
    /// PyTorch initialises them).
    pub fn new(
        params: &mut ParamSet,
        prefix: &str,
        dim: usize,
        config: BatchNormConfig,
    ) -> Result<Self, NnError> {
        if !(config.momentum.is_finite() && (0.0..=1.0).contains(&config.momentum)) {
            return Err(NnError::Tensor(format!(
                "batch-norm momentum must be in [0, 1], got {}",
                config.momentum
            )));
        }
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(NnError::Tensor(format!(
                "batch-norm eps must be positive, got {}",
                config.eps
            )));
        }
        let gamma = params.add(&format!("{prefix}.weight"), vec![1.0; dim], &[dim])?;
        let beta = params.add(&format!("{prefix}.bias"), vec![0.0; dim], &[dim])?;
        let mean_name = format!("{prefix}.running_mean");
        let var_name = format!("{prefix}.running_var");
        params.add(&mean_name, vec![0.0; dim], &[dim])?;
        params.add(&var_name, vec![1.0; dim], &[dim])?;
        Ok(BatchNorm1d {
            gamma,
            beta,
            running_mean: var_of(params, &mean_name)?,
            running_var: var_of(params, &var_name)?,
            config,
        })
    }

    /// Scalars held as running statistics (buffers, not trained: parameter
    /// counts leave them out).
    pub fn n_buffers(&self) -> usize {
        2 * self.gamma.elem_count()
    }

    /// The running mean and variance.
    pub fn running_stats(&self) -> (&Tensor, &Tensor) {
        (self.running_mean.as_tensor(), self.running_var.as_tensor())
    }

    /// Normalises `x` (batch × features). `train`: batch statistics, and the
    /// running statistics are updated; otherwise the running statistics.
    /// Training needs at least two rows (one row has no variance; PyTorch
    /// refuses it too).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor, NnError> {
        let eps = self.config.eps;
        if !train {
            let mean = self.running_mean.as_tensor().detach();
            let var = self.running_var.as_tensor().detach();
            let scale = ((var + eps)?.sqrt()?.recip()? * &self.gamma)?;
            let shift = (&self.beta - (mean * &scale)?)?;
            return Ok(x.broadcast_mul(&scale)?.broadcast_add(&shift)?);
        }
        let n = x.dim(0)?;
        if n < 2 {
            return Err(NnError::Tensor(format!(
                "batch norm in training needs at least 2 rows, got {n}"
            )));
        }
        let mean = x.mean_keepdim(0)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(0)?;
        let inv_std = (&var + eps)?.sqrt()?.recip()?;
        let y = centred
            .broadcast_mul(&inv_std)?
            .broadcast_mul(&self.gamma)?
            .broadcast_add(&self.beta)?;
        let m = self.config.momentum;
        let batch_mean = mean.detach().squeeze(0)?;
        let batch_var = (var.detach().squeeze(0)? * (n as f64 / (n as f64 - 1.0)))?;
        let old_mean = self.running_mean.as_tensor().detach();
        let old_var = self.running_var.as_tensor().detach();
        self.running_mean
            .set(&((old_mean * (1.0 - m))? + (batch_mean * m)?)?)?;
        self.running_var
            .set(&((old_var * (1.0 - m))? + (batch_var * m)?)?)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn layer(config: BatchNormConfig) -> (ParamSet, BatchNorm1d) {
        let mut p = ParamSet::new(&Device::Cpu);
        let bn = BatchNorm1d::new(&mut p, "bn", 2, config).unwrap();
        (p, bn)
    }

    #[test]
    fn training_uses_batch_statistics_and_moves_the_running_ones() {
        let (_, bn) = layer(BatchNormConfig {
            momentum: 0.25,
            eps: 1e-3,
        });
        let x = Tensor::new(&[[1f32, 10.0], [3.0, 10.0], [5.0, 13.0]], &Device::Cpu).unwrap();
        let y = bn.forward(&x, true).unwrap().to_vec2::<f32>().unwrap();
        // Column 0: mean 3, biased variance 8/3.
        let s = (8.0f32 / 3.0 + 1e-3).sqrt();
        assert!((y[0][0] + 2.0 / s).abs() < 1e-6 && (y[1][0]).abs() < 1e-6);
        let (m, v) = bn.running_stats();
        let m = m.to_vec1::<f32>().unwrap();
        let v = v.to_vec1::<f32>().unwrap();
        // 0.75·0 + 0.25·3; 0.75·1 + 0.25·4 (unbiased variance 8/2).
        assert!((m[0] - 0.75).abs() < 1e-6 && (m[1] - 2.75).abs() < 1e-6);
        assert!((v[0] - 1.75).abs() < 1e-6 && (v[1] - (0.75 + 0.25 * 3.0)).abs() < 1e-6);
        // Evaluation reads the running statistics and leaves them alone.
        let e = bn.forward(&x, false).unwrap().to_vec2::<f32>().unwrap();
        assert!((e[0][0] - (1.0 - 0.75) / (1.75f32 + 1e-3).sqrt()).abs() < 1e-6);
        assert_eq!(bn.running_stats().0.to_vec1::<f32>().unwrap(), m);
    }

    #[test]
    fn running_stats_travel_with_snapshots_and_checkpoints_and_get_no_gradient() {
        let (p, bn) = layer(BatchNormConfig::default());
        let before = p.snapshot().unwrap();
        let x = Tensor::new(&[[1f32, 2.0], [3.0, 5.0]], &Device::Cpu).unwrap();
        let loss = bn
            .forward(&x, true)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        assert!(grads.get(bn.running_stats().0).is_none());
        let bytes = p.to_safetensors(&[]).unwrap();
        p.restore(&before).unwrap();
        assert_eq!(bn.running_stats().0.to_vec1::<f32>().unwrap(), vec![0.0; 2]);
        p.load_safetensors(&bytes).unwrap();
        assert!((bn.running_stats().0.to_vec1::<f32>().unwrap()[0] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn one_row_and_bad_settings_are_refused() {
        let (_, bn) = layer(BatchNormConfig::default());
        let x = Tensor::new(&[[1f32, 2.0]], &Device::Cpu).unwrap();
        assert!(bn.forward(&x, true).is_err());
        assert!(bn.forward(&x, false).is_ok());
        let mut p = ParamSet::new(&Device::Cpu);
        let bad = BatchNormConfig {
            momentum: 1.5,
            eps: 1e-3,
        };
        assert!(BatchNorm1d::new(&mut p, "bn", 2, bad).is_err());
    }
}
