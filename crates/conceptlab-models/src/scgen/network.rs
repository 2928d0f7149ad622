//! scGen's network as the PyTorch `scgen` package builds it from
//! scvi-tools' `FCLayers`: every hidden layer is Linear → BatchNorm1d
//! (momentum 0.01, eps 1e-3) → LeakyReLU(0.01) → Dropout; the encoder ends
//! in a mean and a log-variance head (variance `exp(·) + 1e-4`, scvi's
//! `Encoder`), the decoder in a linear output layer. Parameter names are
//! the PyTorch state dict's (`z_encoder.encoder.fc_layers.Layer 0.0.weight`).

use candle_core::{Device, Tensor};
use conceptlab_core::random::Rng;
use conceptlab_nn::{BatchNorm1d, BatchNormConfig, Dropout, Linear, ParamSet};

use super::config::ScGenConfig;
use crate::ModelError;

/// scvi-tools' `FCLayers` batch norm (PyTorch convention; flax's 0.99).
pub(crate) const BATCH_NORM: BatchNormConfig = BatchNormConfig {
    momentum: 0.01,
    eps: 1e-3,
};
/// `nn.LeakyReLU()`'s default slope.
const LEAKY_SLOPE: f64 = 0.01;
/// scvi's `Encoder.var_eps`: keeps the variance away from 0.
pub(crate) const VAR_EPS: f64 = 1e-4;

/// One hidden layer.
#[derive(Debug)]
struct Layer {
    linear: Linear,
    norm: BatchNorm1d,
    dropout: Dropout,
}

impl Layer {
    fn forward(&self, x: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor, ModelError> {
        let h = self.norm.forward(&self.linear.forward(x)?, rng.is_some())?;
        let h = (h.relu()? - (h.neg()?.relu()? * LEAKY_SLOPE)?)?;
        Ok(self.dropout.forward(&h, rng)?)
    }
}

/// `FCLayers` under `prefix`: `n_layers` layers `n_in → hidden → … → hidden`.
fn fc_layers(
    p: &mut ParamSet,
    prefix: &str,
    n_in: usize,
    config: &ScGenConfig,
    rng: &mut Rng,
) -> Result<Vec<Layer>, ModelError> {
    let dropout = Dropout::new(config.dropout)?;
    let mut layers = Vec::with_capacity(config.n_layers);
    for i in 0..config.n_layers {
        let fan_in = if i == 0 { n_in } else { config.hidden_dim };
        let name = format!("{prefix}.fc_layers.Layer {i}");
        let linear = p.linear(&format!("{name}.0"), fan_in, config.hidden_dim, rng)?;
        let norm = BatchNorm1d::new(p, &format!("{name}.1"), config.hidden_dim, BATCH_NORM)?;
        layers.push(Layer {
            linear,
            norm,
            dropout,
        });
    }
    Ok(layers)
}

fn run(layers: &[Layer], x: &Tensor, mut rng: Option<&mut Rng>) -> Result<Tensor, ModelError> {
    let mut h = x.clone();
    for layer in layers {
        h = layer.forward(&h, rng.as_deref_mut())?;
    }
    Ok(h)
}

/// The parameters and layers of one scGen VAE.
#[derive(Debug)]
pub(crate) struct Network {
    pub params: ParamSet,
    encoder: Vec<Layer>,
    mean: Linear,
    log_var: Linear,
    decoder: Vec<Layer>,
    output: Linear,
}

/// One training forward pass.
pub(crate) struct Forward {
    pub mu: Tensor,
    /// q(z | x)'s variance, `exp(log_var) + 1e-4`.
    pub var: Tensor,
    pub reconstruction: Tensor,
}

impl Network {
    /// Builds the network, drawing initial weights from `rng` in creation
    /// order (PyTorch's default `nn.Linear` initialisation).
    pub fn new(
        config: &ScGenConfig,
        input_dim: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if input_dim == 0 {
            return Err(ModelError::Input("the data have no features".into()));
        }
        let (h, z) = (config.hidden_dim, config.latent_dim);
        let mut p = ParamSet::new(device);
        let encoder = fc_layers(&mut p, "z_encoder.encoder", input_dim, config, rng)?;
        let mean = p.linear("z_encoder.mean_encoder", h, z, rng)?;
        let log_var = p.linear("z_encoder.var_encoder", h, z, rng)?;
        let decoder = fc_layers(&mut p, "decoder.decoder", z, config, rng)?;
        let output = p.linear("decoder.linear_out", h, input_dim, rng)?;
        Ok(Network {
            params: p,
            encoder,
            mean,
            log_var,
            decoder,
            output,
        })
    }

    /// μ and variance of q(z | x). `rng` is `Some` only in training (batch
    /// statistics, dropout); otherwise the network is in eval mode.
    pub fn encode(
        &self,
        x: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let h = run(&self.encoder, x, rng)?;
        let mu = self.mean.forward(&h)?;
        let var = (self.log_var.forward(&h)?.exp()? + VAR_EPS)?;
        Ok((mu, var))
    }

    /// x̂ from z (linear output).
    pub fn decode(&self, z: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor, ModelError> {
        let h = run(&self.decoder, z, rng)?;
        Ok(self.output.forward(&h)?)
    }

    /// Encode, z = μ + √var·ε (z = μ without `eps`), decode.
    pub fn forward(
        &self,
        x: &Tensor,
        eps: Option<&Tensor>,
        mut rng: Option<&mut Rng>,
    ) -> Result<Forward, ModelError> {
        let (mu, var) = self.encode(x, rng.as_deref_mut())?;
        let z = match eps {
            Some(eps) => (&mu + var.sqrt()?.mul(eps)?)?,
            None => mu.clone(),
        };
        let reconstruction = self.decode(&z, rng)?;
        Ok(Forward {
            mu,
            var,
            reconstruction,
        })
    }

    /// Running-statistics scalars (not trained parameters).
    pub fn n_buffers(&self) -> usize {
        self.encoder
            .iter()
            .chain(&self.decoder)
            .map(|l| l.norm.n_buffers())
            .sum()
    }
}

/// The loss terms of one pass, each a mean over cells.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossTerms {
    /// 0.5·α·KL + 0.5·Σ_genes (x − x̂)².
    pub total: f64,
    /// 0.5·Σ_genes (x − x̂)².
    pub reconstruction: f64,
    /// KL(q(z | x) ‖ N(0, I)), summed over latent dimensions.
    pub kl: f64,
}

impl LossTerms {
    /// Adds `other` scaled by `w` (batch-size weighting of running means).
    pub fn add_scaled(&mut self, other: &LossTerms, w: f64) {
        self.total += other.total * w;
        self.reconstruction += other.reconstruction * w;
        self.kl += other.kl * w;
    }
}

/// scGen's loss: mean over cells of 0.5·Σ(x − x̂)² + 0.5·α·KL, with the KL
/// of N(μ, var) from N(0, I) summed over latent dimensions (PyTorch scGen;
/// pertpy's JAX port sums over the batch instead).
pub(crate) fn objective(
    out: &Forward,
    x: &Tensor,
    kl_weight: f64,
) -> Result<(Tensor, LossTerms), ModelError> {
    let n = x.dim(0)?.max(1) as f64;
    let reconstruction = ((&out.reconstruction - x)?.sqr()?.sum_all()? * (0.5 / n))?;
    let kl_inner = ((&out.var + out.mu.sqr()?)? - 1.0)?.sub(&out.var.log()?)?;
    let kl = (kl_inner.sum_all()? * (0.5 / n))?;
    let total = (&reconstruction + (&kl * (0.5 * kl_weight))?)?;
    let scalar = |t: &Tensor| -> Result<f64, ModelError> { Ok(t.to_scalar::<f32>()? as f64) };
    let terms = LossTerms {
        total: scalar(&total)?,
        reconstruction: scalar(&reconstruction)?,
        kl: scalar(&kl)?,
    };
    Ok((total, terms))
}
