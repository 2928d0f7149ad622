//! CBGM's objective: MSE + β·KL + λ_c·(hard BCE + soft MSE) + λ_o·L_orth(E, u).

use candle_core::Tensor;
use conceptlab_nn::loss;

use super::config::CbgmConfig;
use super::network::Forward;
use crate::ModelError;
use crate::sccbgm::{Dims, LossTerms, Orthogonality};

/// The scalar loss tensor (for backward) and its terms.
///
/// Hard columns: BCE from logits, summed over observed concepts and averaged
/// over cells (the reference's `K·BCE(clip(ĉ,0,1), c)`, stable where σ
/// saturates). Soft columns (values in [0, 1]): squared error of the
/// probability against the value, likewise masked. Missing annotations
/// drop out of both. The orthogonality penalty acts on the embedding E
/// and the unknown code u, not on the probabilities (the reference).
pub(crate) fn objective(
    config: &CbgmConfig,
    dims: Dims,
    out: &Forward,
    x: &Tensor,
    concepts: &Tensor,
    observed: &Tensor,
) -> Result<(Tensor, LossTerms), ModelError> {
    let Dims { n_hard, n_soft, .. } = dims;
    let reconstruction = loss::mse(&out.reconstruction, x)?;
    let kl = loss::kl_mean(&out.mu, &out.logvar)?;
    let mut concept = Tensor::zeros((), candle_core::DType::F32, x.device())?;
    if n_hard > 0 {
        let hard = loss::bce_with_logits(
            &out.logits.narrow(1, 0, n_hard)?,
            &concepts.narrow(1, 0, n_hard)?,
            &observed.narrow(1, 0, n_hard)?,
        )?;
        concept = (concept + hard)?;
    }
    if n_soft > 0 {
        let soft = loss::soft_concept_mse(
            &out.probs.narrow(1, n_hard, n_soft)?,
            &concepts.narrow(1, n_hard, n_soft)?,
            &observed.narrow(1, n_hard, n_soft)?,
        )?;
        concept = (concept + soft)?;
    }
    let orthogonality = match config.orthogonality {
        Orthogonality::Cosine => loss::abs_cosine(&out.embedding, &out.unknown)?,
        Orthogonality::CrossCovariance => loss::cross_covariance(&out.embedding, &out.unknown)?,
    };
    let total = (((&reconstruction + (&kl * config.beta)?)? + (&concept * config.concepts_hp)?)?
        + (&orthogonality * config.orthogonality_hp)?)?;
    let scalar = |t: &Tensor| -> Result<f64, ModelError> { Ok(t.to_scalar::<f32>()? as f64) };
    let terms = LossTerms {
        total: scalar(&total)?,
        reconstruction: scalar(&reconstruction)?,
        kl: scalar(&kl)?,
        concept: scalar(&concept)?,
        orthogonality: scalar(&orthogonality)?,
    };
    Ok((total, terms))
}
