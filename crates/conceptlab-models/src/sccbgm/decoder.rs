//! The decoder of the concept-bottleneck VAEs (scCBGM, CBGM): a concept
//! stream (concepts, or CBGM's concept embedding) and the unknown code, either
//! as two streams with the concepts re-injected into every block (skip) or
//! concatenated once (residual / no-residual blocks). Parameter names are the
//! reference's, so checkpoints line up with it.

use candle_core::Tensor;
use conceptlab_core::random::Rng;
use conceptlab_nn::{Dropout, Linear, MlpBlock, ParamSet, SkipBlock};

use super::config::DecoderKind;
use crate::ModelError;

/// Widths of a decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecoderSizes {
    /// Width of the concept stream.
    pub concepts: usize,
    pub unknown: usize,
    pub hidden: usize,
    pub n_layers: usize,
    pub output: usize,
}

#[derive(Debug)]
pub(crate) enum Decoder {
    /// The concept stream embedded and re-injected into every block; the
    /// unknown code is the residual stream.
    Skip {
        concept_embedder: Linear,
        unknown_embedder: Linear,
        blocks: Vec<SkipBlock>,
        output: Linear,
    },
    /// `[unknown ‖ concepts]` embedded once, then (residual or plain) blocks.
    Concat {
        embedder: Linear,
        blocks: Vec<MlpBlock>,
        output: Linear,
    },
}

impl Decoder {
    /// Registers the decoder's parameters in `p` (initialised from `rng`).
    pub(crate) fn new(
        p: &mut ParamSet,
        kind: DecoderKind,
        sizes: DecoderSizes,
        dropout: Dropout,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        let DecoderSizes {
            concepts: k,
            unknown: u,
            hidden: h,
            n_layers,
            output,
        } = sizes;
        Ok(match kind {
            DecoderKind::Skip => {
                let concept_embedder = p.linear("_decoder.concept_embedder", k, h, rng)?;
                let unknown_embedder = p.linear("_decoder.unknown_embedder", u, h, rng)?;
                let mut blocks = Vec::with_capacity(n_layers);
                for i in 0..n_layers {
                    blocks.push(SkipBlock {
                        linear: p.linear(&format!("_decoder.layers.{i}.linear"), 2 * h, h, rng)?,
                        norm: p.layer_norm(&format!("_decoder.layers.{i}.norm"), h)?,
                        dropout,
                    });
                }
                let output = p.linear("_decoder.output_later", h, output, rng)?;
                Decoder::Skip {
                    concept_embedder,
                    unknown_embedder,
                    blocks,
                    output,
                }
            }
            DecoderKind::Residual | DecoderKind::NoResidual => {
                let embedder = p.linear("_decoder.x_embedder", u + k, h, rng)?;
                let mut blocks = Vec::with_capacity(n_layers);
                for i in 0..n_layers {
                    blocks.push(MlpBlock {
                        linear: p.linear(&format!("_decoder.layers.{i}.linear"), h, h, rng)?,
                        norm: p.layer_norm(&format!("_decoder.layers.{i}.norm"), h)?,
                        dropout,
                        residual: kind == DecoderKind::Residual,
                    });
                }
                let output = p.linear("_decoder.output_later", h, output, rng)?;
                Decoder::Concat {
                    embedder,
                    blocks,
                    output,
                }
            }
        })
    }

    /// x̂ from the concept stream and the unknown code. `rng` is `Some` only
    /// in training (dropout).
    pub(crate) fn forward(
        &self,
        concepts: &Tensor,
        unknown: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, ModelError> {
        Ok(match self {
            Decoder::Skip {
                concept_embedder,
                unknown_embedder,
                blocks,
                output,
            } => {
                let c = concept_embedder.forward(concepts)?;
                let mut h = unknown_embedder.forward(unknown)?;
                for block in blocks {
                    h = block.forward(&h, &c, rng.as_deref_mut())?;
                }
                output.forward(&h)?
            }
            Decoder::Concat {
                embedder,
                blocks,
                output,
            } => {
                // The reference concatenates unknown first.
                let mut h = embedder.forward(&Tensor::cat(&[unknown, concepts], 1)?)?;
                for block in blocks {
                    h = block.forward(&h, rng.as_deref_mut())?;
                }
                output.forward(&h)?
            }
        })
    }
}
