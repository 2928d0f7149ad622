//! trVAE's network: encoder [x ‖ one-hot] and decoder [z ‖ one-hot], each
//! a stack of Linear (no bias) → BatchNorm → ReLU → Dropout blocks; μ and
//! log σ² from linear heads; a linear output layer with an optional ReLU.

use candle_core::Tensor;
use conceptlab_core::random::Rng;
use conceptlab_nn::{BatchNorm1d, BatchNormConfig, Dropout, Linear, ParamSet, linear_init};

use super::config::TrVaeConfig;
use crate::ModelError;

/// Batch norm's ε (PyTorch's default).
const BN_EPS: f64 = 1e-5;

/// Linear (no bias) → BatchNorm → ReLU → Dropout.
#[derive(Debug)]
struct Block {
    /// Wᵀ (in × out): the block has no bias (batch norm would cancel it).
    weight_t: Tensor,
    norm: BatchNorm1d,
    dropout: Dropout,
}

impl Block {
    fn new(
        p: &mut ParamSet,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        config: &TrVaeConfig,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        // PyTorch's default init; the bias draws are discarded, keeping
        // the draw order of a layer with bias.
        let (w, _) = linear_init(rng, fan_in, fan_out);
        let mut wt = vec![0f32; w.len()];
        for o in 0..fan_out {
            for i in 0..fan_in {
                wt[i * fan_out + o] = w[o * fan_in + i];
            }
        }
        let weight_t = p.add(&format!("{name}.linear.weight_t"), wt, &[fan_in, fan_out])?;
        let norm = BatchNorm1d::new(
            p,
            &format!("{name}.norm"),
            fan_out,
            BatchNormConfig {
                momentum: config.momentum,
                eps: BN_EPS,
            },
        )?;
        Ok(Block {
            weight_t,
            norm,
            dropout: Dropout::new(config.dropout)?,
        })
    }

    /// `rng` is `Some` only in training: batch statistics and dropout.
    fn forward(&self, x: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor, ModelError> {
        let h = self
            .norm
            .forward(&x.matmul(&self.weight_t)?, rng.is_some())?
            .relu()?;
        Ok(self.dropout.forward(&h, rng)?)
    }
}

/// What one forward pass produces.
#[derive(Debug)]
pub(crate) struct Forward {
    pub mu: Tensor,
    pub logvar: Tensor,
    /// The first decoder block's output (where the MMD is taken).
    pub first: Tensor,
    pub reconstruction: Tensor,
}

/// The parameters and layers of one trVAE.
#[derive(Debug)]
pub(crate) struct Network {
    pub params: ParamSet,
    encoder: Vec<Block>,
    fc_mu: Linear,
    fc_var: Linear,
    decoder: Vec<Block>,
    output: Linear,
    output_relu: bool,
}

impl Network {
    /// Builds the network for `input_dim` features and `n_classes` conditions.
    pub fn new(
        config: &TrVaeConfig,
        input_dim: usize,
        n_classes: usize,
        device: &candle_core::Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let mut p = ParamSet::new(device);
        let mut width = input_dim + n_classes;
        let mut encoder = Vec::new();
        for (i, &w) in config.encoder_widths.iter().enumerate() {
            encoder.push(Block::new(
                &mut p,
                &format!("encoder.{i}"),
                width,
                w,
                config,
                rng,
            )?);
            width = w;
        }
        let fc_mu = p.linear("encoder.mu", width, config.latent_dim, rng)?;
        let fc_var = p.linear("encoder.logvar", width, config.latent_dim, rng)?;
        width = config.latent_dim + n_classes;
        let mut decoder = Vec::new();
        for (i, &w) in config.decoder_widths.iter().enumerate() {
            decoder.push(Block::new(
                &mut p,
                &format!("decoder.{i}"),
                width,
                w,
                config,
                rng,
            )?);
            width = w;
        }
        let output = p.linear("decoder.output", width, input_dim, rng)?;
        Ok(Network {
            params: p,
            encoder,
            fc_mu,
            fc_var,
            decoder,
            output,
            output_relu: config.output_relu,
        })
    }

    /// μ and log σ² of q(z | x, condition).
    pub fn encode(
        &self,
        x: &Tensor,
        onehot: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let mut h = Tensor::cat(&[x, onehot], 1)?;
        for block in &self.encoder {
            h = block.forward(&h, rng.as_deref_mut())?;
        }
        Ok((self.fc_mu.forward(&h)?, self.fc_var.forward(&h)?))
    }

    /// The first decoder block's output and the reconstruction.
    pub fn decode(
        &self,
        z: &Tensor,
        onehot: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let mut h = Tensor::cat(&[z, onehot], 1)?;
        let mut first = None;
        for block in &self.decoder {
            h = block.forward(&h, rng.as_deref_mut())?;
            first.get_or_insert_with(|| h.clone());
        }
        let out = self.output.forward(&h)?;
        let out = if self.output_relu { out.relu()? } else { out };
        Ok((first.unwrap_or(h), out))
    }

    /// z = μ + σ·ε with the supplied noise (μ without); training mode when
    /// `rng` is `Some`.
    pub fn forward(
        &self,
        x: &Tensor,
        onehot: &Tensor,
        eps: Option<&Tensor>,
        mut rng: Option<&mut Rng>,
    ) -> Result<Forward, ModelError> {
        let (mu, logvar) = self.encode(x, onehot, rng.as_deref_mut())?;
        let z = match eps {
            Some(eps) => (&mu + (&logvar * 0.5)?.exp()?.mul(eps)?)?,
            None => mu.clone(),
        };
        let (first, reconstruction) = self.decode(&z, onehot, rng)?;
        Ok(Forward {
            mu,
            logvar,
            first,
            reconstruction,
        })
    }
}
