//! CBGM's network: a plain (no-residual) variational encoder, one context
//! generator and probability head per concept, a ReLU unknown head, and a
//! decoder fed the concept embedding E and the unknown code u.
//!
//! The K per-concept context generators `Linear(Z→2e) → ReLU` are stored
//! stacked as one `Linear(Z→K·2e)` (rows `k·2e..(k+1)·2e` are concept k's,
//! the same function and the same initial bound as K separate layers), and
//! the K probability heads `Linear(2e→1)` as one K × 2e weight and K biases,
//! so a forward pass is two matrix products instead of 2K.

use candle_core::{D, Tensor};
use conceptlab_core::random::Rng;
use conceptlab_nn::{Dropout, Linear, MlpBlock, ParamSet, linear_init};

use super::config::{CbgmConfig, Sizes};
use crate::ModelError;
use crate::sccbgm::Dims;
use crate::sccbgm::decoder::{Decoder, DecoderSizes};

/// Everything one forward pass produces.
#[derive(Debug)]
pub(crate) struct Forward {
    pub mu: Tensor,
    pub logvar: Tensor,
    /// Concept logits (B×K).
    pub logits: Tensor,
    /// Concept probabilities ĉ = σ(logits).
    pub probs: Tensor,
    /// The concept embedding E the decoder saw (B×U).
    pub embedding: Tensor,
    pub unknown: Tensor,
    pub reconstruction: Tensor,
}

/// The parameters and layers of one CBGM.
#[derive(Debug)]
pub struct Network {
    pub(crate) params: ParamSet,
    pub(crate) dims: Dims,
    pub(crate) sizes: Sizes,
    embed: Linear,
    encoder: Vec<MlpBlock>,
    fc_mu: Linear,
    fc_var: Linear,
    context: Linear,
    prob_weight: Tensor,
    prob_bias: Tensor,
    unknown_head: Linear,
    decoder: Decoder,
}

impl Network {
    /// Builds the network, drawing every initial weight from `rng` in a fixed
    /// order (PyTorch's default `nn.Linear` initialisation).
    pub fn new(
        config: &CbgmConfig,
        dims: Dims,
        device: &candle_core::Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if dims.input_dim == 0 {
            return Err(ModelError::Input("the data have no features".into()));
        }
        let k = dims.n_concepts();
        let sizes = config.sizes(k)?;
        let (h, z, e, u) = (
            config.hidden_dim,
            config.latent_dim,
            sizes.embedding,
            sizes.unknown,
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
                residual: false,
            });
        }
        let fc_mu = p.linear("_encoder.fc_mu", h, z, rng)?;
        let fc_var = p.linear("_encoder.fc_var", h, z, rng)?;
        let context = p.linear("concept_context", z, k * 2 * e, rng)?;
        let (mut w, mut b) = (Vec::with_capacity(k * 2 * e), Vec::with_capacity(k));
        for _ in 0..k {
            let (wk, bk) = linear_init(rng, 2 * e, 1);
            w.extend(wk);
            b.extend(bk);
        }
        let prob_weight = p.add("concept_prob.weight", w, &[k, 2 * e])?;
        let prob_bias = p.add("concept_prob.bias", b, &[k])?;
        let unknown_head = p.linear("cb_unk_layers.0", z, u, rng)?;
        let decoder = Decoder::new(
            &mut p,
            config.decoder,
            DecoderSizes {
                concepts: u,
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
            sizes,
            embed,
            encoder,
            fc_mu,
            fc_var,
            context,
            prob_weight,
            prob_bias,
            unknown_head,
            decoder,
        })
    }

    /// μ and log σ² of q(z | x). `rng` is `Some` only in training (dropout).
    pub(crate) fn encode(
        &self,
        x: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let mut h = self.embed.forward(x)?;
        for block in &self.encoder {
            h = block.forward(&h, rng.as_deref_mut())?;
        }
        Ok((self.fc_mu.forward(&h)?, self.fc_var.forward(&h)?))
    }

    /// Concept logits, probabilities, the per-concept contexts
    /// (concept-major: `[s₁⁺ ‖ s₁⁻ ‖ s₂⁺ ‖ …]`, B×K·2e) and the unknown code
    /// from z.
    pub(crate) fn heads(&self, z: &Tensor) -> Result<(Tensor, Tensor, Tensor, Tensor), ModelError> {
        let (b, k, e) = (z.dim(0)?, self.dims.n_concepts(), self.sizes.embedding);
        let contexts = self.context.forward(z)?.relu()?;
        let logits = contexts
            .reshape((b, k, 2 * e))?
            .broadcast_mul(&self.prob_weight.unsqueeze(0)?)?
            .sum(D::Minus1)?
            .broadcast_add(&self.prob_bias.unsqueeze(0)?)?;
        let probs = candle_nn::ops::sigmoid(&logits)?;
        let unknown = self.unknown_head.forward(z)?.relu()?;
        Ok((logits, probs, contexts, unknown))
    }

    /// E from contexts and concept values: ẽ_k = s_k⁺·c_k + s_k⁻·(1 − c_k),
    /// flattened concept-major (B×K·e).
    pub(crate) fn embedding(&self, contexts: &Tensor, c: &Tensor) -> Result<Tensor, ModelError> {
        let (b, k, e) = (
            contexts.dim(0)?,
            self.dims.n_concepts(),
            self.sizes.embedding,
        );
        let s = contexts.reshape((b, k, 2 * e))?;
        let pos = s.narrow(2, 0, e)?;
        let neg = s.narrow(2, e, e)?;
        let mixed = (&neg + (&pos - &neg)?.broadcast_mul(&c.unsqueeze(2)?)?)?;
        Ok(mixed.reshape((b, k * e))?)
    }

    /// x̂ from the concept embedding E and the unknown code u.
    pub(crate) fn decode(
        &self,
        embedding: &Tensor,
        unknown: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor, ModelError> {
        self.decoder.forward(embedding, unknown, rng)
    }

    /// The training forward pass: z = μ + σ·ε with the supplied noise (z = μ
    /// when `eps` is `None`); the decoder sees E built from the *predicted*
    /// probabilities (joint training, as the reference).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        eps: Option<&Tensor>,
        mut rng: Option<&mut Rng>,
    ) -> Result<Forward, ModelError> {
        let (mu, logvar) = self.encode(x, rng.as_deref_mut())?;
        let z = match eps {
            Some(eps) => (&mu + (&logvar * 0.5)?.exp()?.mul(eps)?)?,
            None => mu.clone(),
        };
        let (logits, probs, contexts, unknown) = self.heads(&z)?;
        let embedding = self.embedding(&contexts, &probs)?;
        let reconstruction = self.decode(&embedding, &unknown, rng)?;
        Ok(Forward {
            mu,
            logvar,
            logits,
            probs,
            embedding,
            unknown,
            reconstruction,
        })
    }
}
