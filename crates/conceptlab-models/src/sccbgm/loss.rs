//! scCBGM's objective:
//! MSE + β·KL + λ_c·(hard BCE + soft MSE) + λ_o·orthogonality.

use candle_core::Tensor;
use conceptlab_nn::loss;
use serde::{Deserialize, Serialize};

use super::config::{Orthogonality, ScCbgmConfig};
use super::network::{Dims, Forward};
use crate::ModelError;

/// The loss and its (unweighted) terms, averaged over a batch or an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTerms {
    pub total: f64,
    pub reconstruction: f64,
    pub kl: f64,
    pub concept: f64,
    pub orthogonality: f64,
}

impl LossTerms {
    /// `self + other·weight`, for running averages.
    pub(crate) fn add_scaled(&mut self, other: &LossTerms, weight: f64) {
        self.total += other.total * weight;
        self.reconstruction += other.reconstruction * weight;
        self.kl += other.kl * weight;
        self.concept += other.concept * weight;
        self.orthogonality += other.orthogonality * weight;
    }

    /// The first non-finite term, if any.
    pub(crate) fn non_finite(&self) -> Option<(&'static str, f64)> {
        [
            ("reconstruction", self.reconstruction),
            ("KL", self.kl),
            ("concept", self.concept),
            ("orthogonality", self.orthogonality),
            ("total", self.total),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// The scalar loss tensor (for backward) and its terms.
pub(crate) fn objective(
    config: &ScCbgmConfig,
    dims: Dims,
    out: &Forward,
    x: &Tensor,
    concepts: &Tensor,
    observed: &Tensor,
) -> Result<(Tensor, LossTerms), ModelError> {
    let Dims { n_hard, n_soft, .. } = dims;
    let reconstruction = loss::mse(&out.reconstruction, x)?;
    let kl = match &out.logvar {
        Some(lv) => loss::kl_mean(&out.mu, lv)?,
        None => Tensor::zeros((), candle_core::DType::F32, x.device())?,
    };
    let mut concept = Tensor::zeros((), candle_core::DType::F32, x.device())?;
    if n_hard > 0 {
        let hard = loss::bce_with_logits(
            &out.logits.narrow(1, 0, n_hard)?,
            &concepts.narrow(1, 0, n_hard)?,
            &observed.narrow(1, 0, n_hard)?,
        )?;
        concept = (concept + hard)?;
    }
    // The orthogonality term sees concepts clipped to [0, 1]; hard ones are
    // probabilities already.
    let clipped = if n_soft > 0 {
        let soft_pred = out.concepts.narrow(1, n_hard, n_soft)?;
        let soft = loss::soft_concept_mse(
            &soft_pred,
            &concepts.narrow(1, n_hard, n_soft)?,
            &observed.narrow(1, n_hard, n_soft)?,
        )?;
        concept = (concept + soft)?;
        let soft_clipped = soft_pred.clamp(0f32, 1f32)?;
        if n_hard > 0 {
            Tensor::cat(&[&out.concepts.narrow(1, 0, n_hard)?, &soft_clipped], 1)?
        } else {
            soft_clipped
        }
    } else {
        out.concepts.clone()
    };
    let orthogonality = match config.orthogonality {
        Orthogonality::CrossCovariance => loss::cross_covariance(&clipped, &out.unknown)?,
        Orthogonality::Cosine => loss::abs_cosine(&clipped, &out.unknown)?,
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
