//! The loss terms of the VAE family.
//!
//! Each returns a scalar tensor. Concept losses take a per-entry mask
//! (1 = observed) so missing annotations drop out of the loss instead of
//! being read as "absent"; with a full mask they equal the reference's
//! `K · mean` form (a per-cell sum over concepts, averaged over cells).

use candle_core::Tensor;

use crate::NnError;

/// Mean squared error over all elements (`F.mse_loss`, "mean").
pub fn mse(pred: &Tensor, target: &Tensor) -> Result<Tensor, NnError> {
    Ok((pred - target)?.sqr()?.mean_all()?)
}

/// KL(N(μ, σ²) ‖ N(0, I)) as the reference computes it: a mean over all B×Z
/// elements, not a per-cell sum (β values are calibrated to this).
pub fn kl_mean(mu: &Tensor, logvar: &Tensor) -> Result<Tensor, NnError> {
    let inner = ((logvar + 1.0)? - mu.sqr()?)?.sub(&logvar.exp()?)?;
    Ok((inner.mean_all()? * -0.5)?)
}

/// Binary cross-entropy of sigmoid(logits) against 0/1 targets, summed over
/// observed concepts and averaged over cells.
///
/// Computed from logits (`max(l,0) − y·l + log(1+e^{−|l|})`), which equals the
/// reference's `K·BCE(clip(σ(l),0,1), y)` wherever σ(l) is not saturated in
/// f32; where it is, the reference clamps log(0) to −100 and its gradient
/// vanishes, while this form keeps a finite, correct gradient.
pub fn bce_with_logits(logits: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor, NnError> {
    let batch = logits.dim(0)?.max(1) as f64;
    let pos = logits.relu()?;
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let per = ((pos - logits.mul(target)?)? + softplus_neg_abs)?;
    Ok((per.mul(mask)?.sum_all()? / batch)?)
}

/// Squared error of clipped soft-concept predictions, summed over observed
/// concepts and averaged over cells (the reference's `Ks·MSE(clip(ĉ,0,1), c)`).
pub fn soft_concept_mse(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor, NnError> {
    let batch = pred.dim(0)?.max(1) as f64;
    let clipped = pred.clamp(0f32, 1f32)?;
    Ok(((clipped - target)?.sqr()?.mul(mask)?.sum_all()? / batch)?)
}

/// Squared Frobenius norm of the batch cross-covariance between concepts `c`
/// (B×K) and the unknown code `u` (B×U), with the unbiased 1/(B−1).
///
/// The reference divides by zero on a one-cell batch and poisons every
/// weight with NaN; here such a batch contributes 0 (there is no covariance
/// to penalise in one sample).
pub fn cross_covariance(c: &Tensor, u: &Tensor) -> Result<Tensor, NnError> {
    let b = c.dim(0)?;
    if b < 2 {
        return Ok(Tensor::zeros((), c.dtype(), c.device())?);
    }
    let cc = c.broadcast_sub(&c.mean_keepdim(0)?)?;
    let uc = u.broadcast_sub(&u.mean_keepdim(0)?)?;
    let cov = (uc.t()?.matmul(&cc)? / (b as f64 - 1.0))?;
    Ok(cov.sqr()?.sum_all()?)
}

/// Mean over rows of |cos(c_b, u_b)| (eps 1e-6): the CBGM baseline's
/// orthogonality term. Requires dim(c) = dim(u).
///
/// Each norm is `sqrt(max(‖·‖², eps²))` = `max(‖·‖, eps)`: clamping before
/// the square root keeps the gradient finite for an all-zero row (a ReLU
/// unknown code that is off for a cell), where `max(sqrt(0), eps)` passes
/// 0 · ∞ = NaN back and poisons every weight.
pub fn abs_cosine(c: &Tensor, u: &Tensor) -> Result<Tensor, NnError> {
    let dot = c.mul(u)?.sum_keepdim(1)?;
    let norm = |t: &Tensor| -> Result<Tensor, NnError> {
        Ok(t.sqr()?.sum_keepdim(1)?.clamp(1e-12f32, f32::MAX)?.sqrt()?)
    };
    let (nc, nu) = (norm(c)?, norm(u)?);
    Ok(dot.div(&nc.mul(&nu)?)?.abs()?.mean_all()?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn abs_cosine_has_a_finite_gradient_for_an_all_zero_row() {
        let c = Var::from_slice(&[1f32, 2.0, 0.5, -1.0], (2, 2), &Device::Cpu).unwrap();
        // The second cell's unknown code is entirely off (ReLU).
        let u = Var::from_slice(&[3f32, 1.0, 0.0, 0.0], (2, 2), &Device::Cpu).unwrap();
        let loss = abs_cosine(c.as_tensor(), u.as_tensor()).unwrap();
        // Row 0: |1·3 + 2·1| / (√5·√10); row 1 contributes 0.
        let want = 5.0 / (5f32.sqrt() * 10f32.sqrt()) / 2.0;
        assert!((loss.to_scalar::<f32>().unwrap() - want).abs() < 1e-6);
        let grads = loss.backward().unwrap();
        for v in [&c, &u] {
            let g = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap();
            assert!(g.to_vec1::<f32>().unwrap().iter().all(|x| x.is_finite()));
        }
    }
}
