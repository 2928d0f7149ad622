//! ConceptFlow's network (the reference's `Concept_FM`): a deterministic
//! dense encoder, concept and unknown heads, a conditional Gaussian prior
//! on [ĉ ‖ u], and the velocity network conditioned on [ĉ ‖ u], all in one
//! parameter set under the reference's module names.

use candle_core::{Device, Tensor};
use conceptlab_core::random::Rng;
use conceptlab_nn::{Dropout, Linear, MlpBlock, ParamSet, linear_init};

use super::config::ConceptFlowConfig;
use crate::ModelError;
use crate::flow::network::{FOURIER_BUFFER, VelocityDims, VelocityNet};
use crate::sccbgm::Dims;

/// Name of the velocity network's Fourier frequencies in the weights file.
pub(crate) fn fourier_name() -> String {
    format!("{VELOCITY}.{FOURIER_BUFFER}")
}

const VELOCITY: &str = "_decoder";

/// The reference's `DenseEncoder`: Linear(in→H), residual blocks whose
/// linear bias starts at 0, Linear(H→out); the activation is the caller's.
#[derive(Debug)]
struct Dense {
    embed: Linear,
    blocks: Vec<MlpBlock>,
    output: Linear,
}

impl Dense {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &mut ParamSet,
        prefix: &str,
        n_in: usize,
        hidden: usize,
        n_blocks: usize,
        n_out: usize,
        dropout: Dropout,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        let embed = p.linear(&format!("{prefix}.x_embedder"), n_in, hidden, rng)?;
        let mut blocks = Vec::with_capacity(n_blocks);
        for i in 0..n_blocks {
            let (w, _) = linear_init(rng, hidden, hidden);
            let name = format!("{prefix}.layers.{i}");
            blocks.push(MlpBlock {
                linear: p.linear_with(
                    &format!("{name}.linear"),
                    hidden,
                    hidden,
                    w,
                    vec![0.0; hidden],
                )?,
                norm: p.layer_norm(&format!("{name}.norm"), hidden)?,
                dropout,
                residual: true,
            });
        }
        let output = p.linear(&format!("{prefix}.output_layer"), hidden, n_out, rng)?;
        Ok(Dense {
            embed,
            blocks,
            output,
        })
    }

    fn forward(&self, x: &Tensor, mut rng: Option<&mut Rng>) -> Result<Tensor, ModelError> {
        let mut h = self.embed.forward(x)?;
        for block in &self.blocks {
            h = block.forward(&h, rng.as_deref_mut())?;
        }
        Ok(self.output.forward(&h)?)
    }
}

/// What the bottleneck says about cells.
pub(crate) struct Bottleneck {
    /// Pre-activation concept outputs (hard columns are logits).
    pub logits: Tensor,
    /// ĉ: probabilities for hard columns, values for soft ones.
    pub concepts: Tensor,
    /// u ≥ 0.
    pub unknown: Tensor,
}

impl Bottleneck {
    /// h = [ĉ ‖ u].
    pub fn condition(&self) -> Result<Tensor, ModelError> {
        Ok(Tensor::cat(&[&self.concepts, &self.unknown], 1)?)
    }
}

/// Every layer of a ConceptFlow.
#[derive(Debug)]
pub(crate) struct Network {
    pub params: ParamSet,
    pub dims: Dims,
    encoder: Dense,
    concept_head: Dense,
    unknown_head: Dense,
    prior: Dense,
    pub velocity: VelocityNet,
}

impl Network {
    /// Builds the network, drawing every initial weight from `rng` in module
    /// order (encoder, concept head, unknown head, prior, velocity network).
    pub fn new(
        config: &ConceptFlowConfig,
        dims: Dims,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let (g, k) = (dims.input_dim, dims.n_concepts());
        if g == 0 || k == 0 {
            return Err(ModelError::Input(format!(
                "ConceptFlow needs features and concepts, got {g} features and {k} concepts"
            )));
        }
        let ConceptFlowConfig {
            hidden_dim: h,
            latent_dim: z,
            n_unknown: u,
            n_layers,
            cb_layers,
            ..
        } = *config;
        let dropout = Dropout::new(config.dropout)?;
        let mut p = ParamSet::new(device);
        let encoder = Dense::new(&mut p, "_encoder", g, h, n_layers, z, dropout, rng)?;
        let concept_head = Dense::new(
            &mut p,
            "cb_concepts_layers",
            z,
            h,
            cb_layers,
            k,
            dropout,
            rng,
        )?;
        let unknown_head = Dense::new(&mut p, "cb_unk_layers", z, h, cb_layers, u, dropout, rng)?;
        let prior = Dense::new(&mut p, "fc_mu_logvar", k + u, h, 2, 2 * g, dropout, rng)?;
        let mut velocity = VelocityNet::new(
            VelocityDims {
                x_dim: g,
                c_dim: k + u,
                emb_dim: h,
                n_layers,
            },
            config.dropout,
            device,
            rng,
        )?;
        p.absorb(VELOCITY, velocity.take_params())?;
        Ok(Network {
            params: p,
            dims,
            encoder,
            concept_head,
            unknown_head,
            prior,
            velocity,
        })
    }

    /// z = E(x), then ĉ and u (the reference's deterministic encoder).
    pub fn bottleneck(
        &self,
        x: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<Bottleneck, ModelError> {
        let z = self.encoder.forward(x, rng.as_deref_mut())?;
        let logits = self.concept_head.forward(&z, rng.as_deref_mut())?;
        let concepts = self.activate(&logits)?;
        let unknown = self.unknown_head.forward(&z, rng)?.relu()?;
        Ok(Bottleneck {
            logits,
            concepts,
            unknown,
        })
    }

    /// Sigmoid on the hard columns, identity on the soft ones (the
    /// reference's head is sigmoid on every column; a soft concept here is a
    /// level, as in scCBGM).
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

    /// (μ_p, log σ²_p) of the prior over x₀ given h = [c ‖ u].
    pub fn prior(&self, h: &Tensor, rng: Option<&mut Rng>) -> Result<(Tensor, Tensor), ModelError> {
        let g = self.dims.input_dim;
        let out = self.prior.forward(h, rng)?;
        Ok((out.narrow(1, 0, g)?, out.narrow(1, g, g)?))
    }
}
