//! Layer normalisation over the last dimension, with a backward pass.
//!
//! candle-nn's fused `layer_norm` has no gradient and its differentiable
//! version chains eight broadcasting tensor ops; this op does one pass
//! forward and one pass backward over CPU rows (rows in parallel, parameter
//! gradients reduced in a fixed order so results do not depend on threads).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::parallel::rows_per_task;

use super::storage::contiguous_f32;

/// PyTorch's `nn.LayerNorm` default epsilon.
const EPS: f64 = 1e-5;

/// `LayerNorm(x)·γ + β` over the last dimension of a 2-D tensor, biased
/// variance, eps 1e-5 (PyTorch's `nn.LayerNorm`).
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        x.apply_op3(gamma, beta, LayerNormOp)
    } else {
        layer_norm_composed(x, gamma, beta)
    }
}

/// The same layer norm as a chain of candle ops, which runs and
/// differentiates on any device (the GPU path: the fused op has only a CPU
/// kernel). Tests run it on the CPU against the fused op.
pub(crate) fn layer_norm_composed(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
) -> candle_core::Result<Tensor> {
    let last = candle_core::D::Minus1;
    let d = x.dim(last)? as f64;
    let mean = (x.sum_keepdim(last)? / d)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = (centred.sqr()?.sum_keepdim(last)? / d)?;
    let normed = centred.broadcast_div(&(var + EPS)?.sqrt()?)?;
    normed.broadcast_mul(gamma)?.broadcast_add(beta)
}

struct LayerNormOp;

/// Mean and reciprocal standard deviation of one row.
fn row_stats(row: &[f32]) -> (f64, f64) {
    let d = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d;
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d;
    (mean, 1.0 / (var + EPS).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "conceptlab-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "layer norm", "input")?;
        let gamma = contiguous_f32(s2, l2, "layer norm", "weight")?;
        let beta = contiguous_f32(s3, l3, "layer norm", "bias")?;
        let d = gamma.len();
        if d == 0 || x.len() % d != 0 || beta.len() != d {
            bail!(
                "layer norm: input {:?} does not match weight {d}",
                l1.shape()
            )
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .with_min_len(rows_per_task(d))
            .for_each(|(o, row)| {
                let (mean, rstd) = row_stats(row);
                for j in 0..d {
                    o[j] = ((row[j] as f64 - mean) * rstd) as f32 * gamma[j] + beta[j];
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let gs = grad.flatten_all()?.to_vec1::<f32>()?;
        let gamma_v = gamma.to_vec1::<f32>()?;
        let d = gamma_v.len();
        // Row statistics once, for both the input and the parameter gradients.
        let stats: Vec<(f64, f64)> = xs
            .par_chunks(d)
            .with_min_len(rows_per_task(d))
            .map(row_stats)
            .collect();
        let mut dx = vec![0f32; xs.len()];
        dx.par_chunks_mut(d)
            .zip(xs.par_chunks(d).zip(gs.par_chunks(d)))
            .zip(stats.par_iter())
            .with_min_len(rows_per_task(d))
            .for_each(|((out, (row, g)), &(mean, rstd))| {
                // dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·γ.
                let mut mean_g = 0.0;
                let mut mean_gx = 0.0;
                for j in 0..d {
                    let xhat = (row[j] as f64 - mean) * rstd;
                    let gh = g[j] as f64 * gamma_v[j] as f64;
                    mean_g += gh;
                    mean_gx += gh * xhat;
                }
                mean_g /= d as f64;
                mean_gx /= d as f64;
                for j in 0..d {
                    let xhat = (row[j] as f64 - mean) * rstd;
                    let gh = g[j] as f64 * gamma_v[j] as f64;
                    out[j] = (rstd * (gh - mean_g - xhat * mean_gx)) as f32;
                }
            });
        let mut dgamma = vec![0f64; d];
        let mut dbeta = vec![0f64; d];
        for ((row, g), &(mean, rstd)) in xs.chunks(d).zip(gs.chunks(d)).zip(&stats) {
            for j in 0..d {
                dgamma[j] += g[j] as f64 * (row[j] as f64 - mean) * rstd;
                dbeta[j] += g[j] as f64;
            }
        }
        let device = x.device();
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(to_f32(dgamma), d, device)?),
            Some(Tensor::from_vec(to_f32(dbeta), d, device)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    type Outputs = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    /// Output and the three gradients of `Σ w·LN(x)` through `op`.
    fn run(
        op: fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Outputs> {
        let dev = Device::Cpu;
        let (rows, d) = (6, 9);
        let val = |n: usize, f: fn(f32) -> f32| (0..n).map(|i| f(i as f32)).collect::<Vec<f32>>();
        // Rows of different scale and offset, so the normalisation matters.
        let xv: Vec<f32> = (0..rows * d)
            .map(|i| ((i as f32) * 0.73).sin() * (1.0 + (i / d) as f32) + (i / d) as f32)
            .collect();
        let x = Var::from_tensor(&Tensor::from_vec(xv, (rows, d), &dev)?)?;
        let g = Var::from_tensor(&Tensor::from_vec(val(d, |i| 1.0 + 0.1 * i), d, &dev)?)?;
        let b = Var::from_tensor(&Tensor::from_vec(val(d, |i| 0.05 * i - 0.2), d, &dev)?)?;
        let w = Tensor::from_vec(val(rows * d, |i| (i * 0.31).cos()), (rows, d), &dev)?;
        let y = op(x.as_tensor(), g.as_tensor(), b.as_tensor())?;
        let grads = (&y * &w)?.sum_all()?.backward()?;
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let grad = |v: &Var| match grads.get(v.as_tensor()) {
            Some(t) => flat(t),
            None => Ok(Vec::new()),
        };
        Ok((flat(&y)?, grad(&x)?, grad(&g)?, grad(&b)?))
    }

    #[test]
    fn composed_path_agrees_with_the_fused_op_forward_and_backward() -> candle_core::Result<()> {
        let fused = run(|x, g, b| x.apply_op3(g, b, LayerNormOp))?;
        let composed = run(layer_norm_composed)?;
        let pairs = [
            ("output", fused.0, composed.0),
            ("d input", fused.1, composed.1),
            ("d weight", fused.2, composed.2),
            ("d bias", fused.3, composed.3),
        ];
        for (what, a, b) in pairs {
            assert_eq!(a.len(), b.len(), "{what}");
            assert!(!a.is_empty(), "{what}: no gradient");
            for (u, v) in a.iter().zip(&b) {
                assert!(
                    (u - v).abs() <= 1e-5 * (1.0 + u.abs()),
                    "{what}: {u} vs {v}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn normalises_each_row() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1f32, 2.0, 3.0], [10.0, 10.0, 40.0]], &dev)?;
        let ones = Tensor::ones(3, candle_core::DType::F32, &dev)?;
        let zeros = Tensor::zeros(3, candle_core::DType::F32, &dev)?;
        let y = layer_norm(&x, &ones, &zeros)?.to_vec2::<f32>()?;
        // (x - mean) / sqrt(var + 1e-5) with the biased variance 2/3.
        let s = 1.0 / (2.0f64 / 3.0 + 1e-5).sqrt();
        assert!((y[0][0] as f64 + s).abs() < 1e-6 && (y[0][2] as f64 - s).abs() < 1e-6);
        assert!(y[0][1].abs() < 1e-6);
        assert!((y[1][0] - y[1][1]).abs() < 1e-6 && y[1][2] > 1.0);
        Ok(())
    }
}
