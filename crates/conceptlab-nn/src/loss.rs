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
pub fn abs_cosine(c: &Tensor, u: &Tensor) -> Result<Tensor, NnError> {
    let dot = c.mul(u)?.sum_keepdim(1)?;
    let nc = c.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-6f32, f32::MAX)?;
    let nu = u.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-6f32, f32::MAX)?;
    Ok(dot.div(&nc.mul(&nu)?)?.abs()?.mean_all()?)
}
