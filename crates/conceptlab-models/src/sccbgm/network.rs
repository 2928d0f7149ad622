//! scCBGM's network: a residual variational
//! encoder, a concept head and a ReLU unknown head on the latent, and a
//! decoder that takes concepts and unknown code as separate streams.

use candle_core::Tensor;
use conceptlab_core::random::Rng;
use conceptlab_nn::{Dropout, Linear, MlpBlock, ParamSet};

use super::config::ScCbgmConfig;
use super::decoder::{Decoder, DecoderSizes};
use crate::ModelError;

/// Sizes fixed by the data: input features and concepts. Concept columns
/// are ordered hard (sigmoid, BCE) first, then soft (linear, MSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dims {
    pub input_dim: usize,
    pub n_hard: usize,
    pub n_soft: usize,
}

impl Dims {
    /// All concepts, hard then soft.
    pub fn n_concepts(&self) -> usize {
        self.n_hard + self.n_soft
    }
}

/// Everything one forward pass produces.
#[derive(Debug)]
pub(crate) struct Forward {
    pub mu: Tensor,
    pub logvar: Option<Tensor>,
    /// Pre-activation concept outputs (hard columns are logits).
    pub logits: Tensor,
    /// Predicted concepts: probabilities for hard columns, values for soft.
    pub concepts: Tensor,
    pub unknown: Tensor,
    pub reconstruction: Tensor,
}

/// The parameters and layers of one scCBGM.
#[derive(Debug)]
pub struct Network {
    pub(crate) params: ParamSet,
    pub(crate) dims: Dims,
    embed: Linear,
    encoder: Vec<MlpBlock>,
    fc_mu: Linear,
    fc_var: Option<Linear>,
    concept_head: Linear,
    unknown_head: Linear,
    decoder: Decoder,
}

impl Network {
    /// Builds the network, drawing every initial weight from `rng` in a fixed
    /// order (PyTorch's default `nn.Linear` initialisation).
    pub fn new(
        config: &ScCbgmConfig,
        dims: Dims,
        device: &candle_core::Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        config.validate(dims.n_concepts())?;
        if dims.input_dim == 0 {
            return Err(ModelError::Input("the data have no features".into()));
        }
        if dims.n_concepts() == 0 {
            return Err(ModelError::Input(
                "scCBGM needs at least one concept".into(),
            ));
        }
        let (h, z, u, k) = (
            config.hidden_dim,
            config.latent_dim,
            config.n_unknown,
            dims.n_concepts(),
        );
        let dropout = Dropout::new(config.dropout)?;
        let mut p = ParamSet::new(device);
        let embed = p.linear("_encoder.x_embedder", dims.input_dim, h, rng)?;
        let mut encoder = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            encoder.push(MlpBlock {
                linear: p.linear(&format!("_encoder.layers.{i}.linear"), h, h, rng)?,
                norm: p.layer_norm(&format!("_encoder.layers.{i}.norm"), h)?,
                dropout,
                residual: true,
            });
        }
        let fc_mu = p.linear("_encoder.fc_mu", h, z, rng)?;
        let fc_var = if config.variational {
            Some(p.linear("_encoder.fc_var", h, z, rng)?)
        } else {
            None
        };
        let concept_head = p.linear("cb_concepts_layers.0", z, k, rng)?;
        let unknown_head = p.linear("cb_unk_layers.0", z, u, rng)?;
        let decoder = Decoder::new(
            &mut p,
            config.decoder,
            DecoderSizes {
                concepts: k,
                unknown: u,
                hidden: h,
                n_layers: config.n_layers,
                output: dims.input_dim,
            },
            dropout,
            rng,
        )?;
        Ok(Network {
            params: p,
            dims,
            embed,
            encoder,
            fc_mu,
            fc_var,
            concept_head,
            unknown_head,
            decoder,
        })
    }

    /// μ and log σ² of q(z | x). `rng` is `Some` only in training (dropout).
    pub(crate) fn encode(
        &self,
        x: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Option<Tensor>), ModelError> {
        let mut h = self.embed.forward(x)?;
        for block in &self.encoder {
            h = block.forward(&h, rng.as_deref_mut())?;
        }
        let mu = self.fc_mu.forward(&h)?;
        // The reference clips log σ² to ±1e5, a no-op at f32 scale; not repeated.
        let logvar = match &self.fc_var {
            Some(fc) => Some(fc.forward(&h)?),
            None => None,
        };
        Ok((mu, logvar))
    }

    /// Concept logits, predicted concepts and the unknown code from z.
    pub(crate) fn heads(&self, z: &Tensor) -> Result<(Tensor, Tensor, Tensor), ModelError> {
        let logits = self.concept_head.forward(z)?;
        let concepts = self.activate(&logits)?;
        let unknown = self.unknown_head.forward(z)?.relu()?;
        Ok((logits, concepts, unknown))
    }

    /// Sigmoid on the hard columns, identity on the soft ones.
    fn activate(&self, logits: &Tensor) -> Result<Tensor, ModelError> {
        let Dims { n_hard, n_soft, .. } = self.dims;
        Ok(match (n_hard, n_soft) {
            (_, 0) => candle_nn::ops::sigmoid(logits)?,
            (0, _) => logits.clone(),
            _ => {
                let hard = candle_nn::ops::sigmoid(&logits.narrow(1, 0, n_hard)?)?;
                Tensor::cat(&[&hard, &logits.narrow(1, n_hard, n_soft)?], 1)?
            }
        })
    }

    /// x̂ from concepts and the unknown code.
    pub(crate) fn decode(
        &self,
        concepts: &Tensor,
        unknown: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor, ModelError> {
        self.decoder.forward(concepts, unknown, rng)
    }

    /// The training forward pass: z = μ + σ·ε with the supplied noise (or
    /// z = μ when `eps` is `None` or the encoder is deterministic), decoding
    /// the *predicted* concepts (joint training, the reference) or, with
    /// `teacher` = (concepts, observed mask), the observed ones.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        eps: Option<&Tensor>,
        teacher: Option<(&Tensor, &Tensor)>,
        mut rng: Option<&mut Rng>,
    ) -> Result<Forward, ModelError> {
        let (mu, logvar) = self.encode(x, rng.as_deref_mut())?;
        let z = match (&logvar, eps) {
            (Some(lv), Some(eps)) => (&mu + (lv * 0.5)?.exp()?.mul(eps)?)?,
            _ => mu.clone(),
        };
        let (logits, concepts, unknown) = self.heads(&z)?;
        let reconstruction = match teacher {
            // Observed concepts replace predictions at the decoder's input.
            Some((given, observed)) => {
                let mixed = ((&concepts * (1.0 - observed)?)? + given.mul(observed)?)?;
                self.decode(&mixed, &unknown, rng)?
            }
            None => self.decode(&concepts, &unknown, rng)?,
        };
        Ok(Forward {
            mu,
            logvar,
            logits,
            concepts,
            unknown,
            reconstruction,
        })
    }
}
