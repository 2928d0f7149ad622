//! scCVAE's network: an encoder on [x ‖ c] giving μ and log σ², and a
//! decoder on [z ‖ c], both a linear embedding followed by plain
//! Linear → LayerNorm → ReLU → Dropout blocks (the reference's
//! `CVAEEncoderBlock` / `CVAEDecoderBlock`, under its state-dict names).

use candle_core::Tensor;
use conceptlab_core::random::Rng;
use conceptlab_nn::{Dropout, Linear, MlpBlock, ParamSet};

use super::config::ScCvaeConfig;
use crate::ModelError;
use crate::sccbgm::Dims;

/// What one training forward pass produces.
#[derive(Debug)]
pub(crate) struct Forward {
    pub mu: Tensor,
    pub logvar: Tensor,
    pub reconstruction: Tensor,
}

/// The parameters and layers of one scCVAE.
#[derive(Debug)]
pub(crate) struct Network {
    pub params: ParamSet,
    pub dims: Dims,
    enc_embed: Linear,
    encoder: Vec<MlpBlock>,
    fc_mu: Linear,
    fc_var: Linear,
    dec_embed: Linear,
    decoder: Vec<MlpBlock>,
    output: Linear,
}

fn blocks(
    p: &mut ParamSet,
    prefix: &str,
    config: &ScCvaeConfig,
    rng: &mut Rng,
) -> Result<Vec<MlpBlock>, ModelError> {
    let h = config.hidden_dim;
    let dropout = Dropout::new(config.dropout)?;
    (0..config.n_layers)
        .map(|i| {
            Ok(MlpBlock {
                linear: p.linear(&format!("{prefix}.layers.{i}.linear"), h, h, rng)?,
                norm: p.layer_norm(&format!("{prefix}.layers.{i}.norm"), h)?,
                dropout,
                residual: false,
            })
        })
        .collect()
}

impl Network {
    /// Builds the network, drawing every initial weight from `rng` in
    /// creation order (encoder, then decoder; PyTorch's default init).
    pub fn new(
        config: &ScCvaeConfig,
        dims: Dims,
        device: &candle_core::Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if dims.input_dim == 0 {
            return Err(ModelError::Input("the data have no features".into()));
        }
        if dims.n_concepts() == 0 {
            return Err(ModelError::Input(
                "scCVAE conditions on concepts and needs at least one".into(),
            ));
        }
        let (g, k, h, z) = (
            dims.input_dim,
            dims.n_concepts(),
            config.hidden_dim,
            config.latent_dim,
        );
        let mut p = ParamSet::new(device);
        let enc_embed = p.linear("_encoder.x_embedder", g + k, h, rng)?;
        let encoder = blocks(&mut p, "_encoder", config, rng)?;
        let fc_mu = p.linear("_encoder.fc_mu", h, z, rng)?;
        let fc_var = p.linear("_encoder.fc_var", h, z, rng)?;
        let dec_embed = p.linear("_decoder.x_embedder", z + k, h, rng)?;
        let decoder = blocks(&mut p, "_decoder", config, rng)?;
        let output = p.linear("_decoder.output_later", h, g, rng)?;
        Ok(Network {
            params: p,
            dims,
            enc_embed,
            encoder,
            fc_mu,
            fc_var,
            dec_embed,
            decoder,
            output,
        })
    }

    /// μ and log σ² of q(z | x, c). `rng` is `Some` only in training (dropout).
    pub fn encode(
        &self,
        x: &Tensor,
        c: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let mut h = self.enc_embed.forward(&Tensor::cat(&[x, c], 1)?)?;
        for block in &self.encoder {
            h = block.forward(&h, rng.as_deref_mut())?;
        }
        Ok((self.fc_mu.forward(&h)?, self.fc_var.forward(&h)?))
    }

    /// x̂ from the latent and the concepts (order: latent first, as the reference).
    pub fn decode(
        &self,
        z: &Tensor,
        c: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, ModelError> {
        let mut h = self.dec_embed.forward(&Tensor::cat(&[z, c], 1)?)?;
        for block in &self.decoder {
            h = block.forward(&h, rng.as_deref_mut())?;
        }
        Ok(self.output.forward(&h)?)
    }

    /// The training pass with the true concepts: z = μ + σ·ε with the
    /// supplied noise (z = μ without it).
    pub fn forward(
        &self,
        x: &Tensor,
        c: &Tensor,
        eps: Option<&Tensor>,
        mut rng: Option<&mut Rng>,
    ) -> Result<Forward, ModelError> {
        let (mu, logvar) = self.encode(x, c, rng.as_deref_mut())?;
        let z = match eps {
            Some(eps) => (&mu + (&logvar * 0.5)?.exp()?.mul(eps)?)?,
            None => mu.clone(),
        };
        let reconstruction = self.decode(&z, c, rng)?;
        Ok(Forward {
            mu,
            logvar,
            reconstruction,
        })
    }
}
