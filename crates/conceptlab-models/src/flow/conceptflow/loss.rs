//! ConceptFlow's objective:
//! flow_hp·FM + concepts_hp·(hard BCE + soft MSE) + orthogonality_hp·Cov' + kl_hp·KL,
//! with the flow's source x₀ drawn from the learned prior, so the flow loss
//! trains the bottleneck and the prior too.

use candle_core::{DType, Tensor};
use conceptlab_core::random::Rng;
use conceptlab_nn::loss;

use super::config::ConceptFlowConfig;
use super::network::Network;
use crate::ModelError;
use crate::data::ConceptData;

/// Below this standard deviation a concept column counts as constant and
/// leaves the orthogonality penalty. The reference divides by std + 1e-6,
/// which scales a constant column by ~1e6 (any rounding in ĉ then swamps
/// the penalty).
pub(crate) const MIN_CONCEPT_STD: f64 = 1e-3;

/// The dataset-level standardisation of the concepts in the orthogonality
/// penalty: c̃ = (clip(ĉ, 0, 1) − mean) · inv_std, from the *annotated*
/// training concepts (observed entries only; unbiased std + 1e-6 as the
/// reference; inv_std 0 for a constant column).
#[derive(Debug, Clone)]
pub(crate) struct Standardize {
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

impl Standardize {
    pub fn of(data: &ConceptData) -> Self {
        let k = data.concepts.ncols();
        let (mut mean, mut inv_std) = (vec![0f32; k], vec![0f32; k]);
        for j in 0..k {
            let v: Vec<f64> = (0..data.n_cells())
                .filter(|&i| data.observed[[i, j]] > 0.0)
                .map(|i| data.concepts[[i, j]] as f64)
                .collect();
            if v.len() < 2 {
                continue;
            }
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
            mean[j] = m as f32;
            let sd = var.sqrt();
            if sd > MIN_CONCEPT_STD {
                inv_std[j] = (1.0 / (sd + 1e-6)) as f32;
            }
        }
        Standardize { mean, inv_std }
    }
}

/// The loss and its unweighted terms, averaged over a batch or an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConceptFlowTerms {
    pub total: f64,
    pub flow: f64,
    pub concept: f64,
    pub orthogonality: f64,
    pub kl: f64,
}

impl ConceptFlowTerms {
    pub(crate) fn add_scaled(&mut self, o: &ConceptFlowTerms, w: f64) {
        self.total += o.total * w;
        self.flow += o.flow * w;
        self.concept += o.concept * w;
        self.orthogonality += o.orthogonality * w;
        self.kl += o.kl * w;
    }

    pub(crate) fn non_finite(&self) -> Option<(&'static str, f64)> {
        [
            ("flow matching", self.flow),
            ("concept", self.concept),
            ("orthogonality", self.orthogonality),
            ("KL", self.kl),
            ("total", self.total),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// One batch's inputs: cells, their concepts and observed mask, the prior
/// noise ε (B × G) and times t (B × 1).
pub(crate) struct Batch<'a> {
    pub x: &'a Tensor,
    pub concepts: &'a Tensor,
    pub observed: &'a Tensor,
    pub eps: &'a Tensor,
    pub t: &'a Tensor,
}

/// ‖ũᵀ c̃ / (B − 1)‖²_F with c̃ standardised by dataset statistics and ũ
/// batch-centred; 0 for a one-cell batch.
fn standardized_cross_covariance(
    concepts: &Tensor,
    unknown: &Tensor,
    stats: &Standardize,
) -> Result<Tensor, ModelError> {
    let b = concepts.dim(0)?;
    if b < 2 {
        return Ok(Tensor::zeros((), DType::F32, concepts.device())?);
    }
    let k = stats.mean.len();
    let dev = concepts.device();
    let mean = Tensor::from_slice(&stats.mean, (1, k), dev)?;
    let inv = Tensor::from_slice(&stats.inv_std, (1, k), dev)?;
    let c = concepts
        .clamp(0f32, 1f32)?
        .broadcast_sub(&mean)?
        .broadcast_mul(&inv)?;
    let u = unknown.broadcast_sub(&unknown.mean_keepdim(0)?)?;
    let cov = (u.t()?.matmul(&c)? / (b as f64 - 1.0))?;
    Ok(cov.sqr()?.sum_all()?)
}

/// The scalar loss (for backward) and its terms. `rng` drives dropout only.
pub(crate) fn objective(
    config: &ConceptFlowConfig,
    net: &Network,
    batch: &Batch,
    stats: &Standardize,
    mut rng: Option<&mut Rng>,
) -> Result<(Tensor, ConceptFlowTerms), ModelError> {
    let n_hard = net.dims.n_hard;
    let n_soft = net.dims.n_soft;
    let bn = net.bottleneck(batch.x, rng.as_deref_mut())?;
    let h = bn.condition()?;
    let (mu, logvar) = net.prior(&h, rng.as_deref_mut())?;
    let x0 = (&mu + (&logvar * 0.5)?.exp()?.mul(batch.eps)?)?;
    let t = batch.t;
    let xt = (x0.broadcast_mul(&(1.0 - t)?)? + batch.x.broadcast_mul(t)?)?;
    let target = (batch.x - &x0)?;
    let v = net.velocity.forward(&xt, t, Some(&h), rng)?;
    let flow = loss::mse(&v, &target)?;
    let mut concept = Tensor::zeros((), DType::F32, batch.x.device())?;
    if n_hard > 0 {
        concept = (concept
            + loss::bce_with_logits(
                &bn.logits.narrow(1, 0, n_hard)?,
                &batch.concepts.narrow(1, 0, n_hard)?,
                &batch.observed.narrow(1, 0, n_hard)?,
            )?)?;
    }
    if n_soft > 0 {
        concept = (concept
            + loss::soft_concept_mse(
                &bn.concepts.narrow(1, n_hard, n_soft)?,
                &batch.concepts.narrow(1, n_hard, n_soft)?,
                &batch.observed.narrow(1, n_hard, n_soft)?,
            )?)?;
    }
    let orthogonality = standardized_cross_covariance(&bn.concepts, &bn.unknown, stats)?;
    let kl = loss::kl_mean(&mu, &logvar)?;
    let total = ((((&flow * config.flow_hp)? + (&concept * config.concepts_hp)?)?
        + (&orthogonality * config.orthogonality_hp)?)?
        + (&kl * config.kl_hp)?)?;
    let scalar = |t: &Tensor| -> Result<f64, ModelError> { Ok(t.to_scalar::<f32>()? as f64) };
    let terms = ConceptFlowTerms {
        total: scalar(&total)?,
        flow: scalar(&flow)?,
        concept: scalar(&concept)?,
        orthogonality: scalar(&orthogonality)?,
        kl: scalar(&kl)?,
    };
    Ok((total, terms))
}
