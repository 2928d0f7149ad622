//! Layers and the residual blocks the reference models are built from.
//! Order inside a block: Linear → LayerNorm → ReLU →
//! Dropout, then the optional residual add.

use candle_core::{Module, Tensor};

use super::bias::add_bias;
use super::layer_norm::layer_norm;
use crate::NnError;
use conceptlab_core::random::Rng;

/// `y = x·Wᵀ + b`. The parameter holds Wᵀ (in × out, contiguous): the
/// product then needs no transposed view, whose gradient candle would
/// accumulate through an extra strided copy of every weight matrix per step.
/// Checkpoints still store W (out × in), as PyTorch does ([`ParamSet`]
/// transposes on the way in and out).
///
/// [`ParamSet`]: super::ParamSet
#[derive(Debug, Clone)]
pub struct Linear {
    weight_t: Tensor,
    bias: Tensor,
}

impl Linear {
    /// A layer over existing parameter tensors: Wᵀ (in × out) and b (out).
    pub fn new(weight_t: Tensor, bias: Tensor) -> Self {
        Linear { weight_t, bias }
    }

    /// Applies the layer to a (batch × in) tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, NnError> {
        Ok(Module::forward(self, x)?)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        add_bias(&x.matmul(&self.weight_t)?, &self.bias)
    }
}

/// PyTorch's `nn.LayerNorm(d)` (affine, eps 1e-5).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    /// A layer norm over existing γ, β tensors.
    pub fn new(gamma: Tensor, beta: Tensor) -> Self {
        LayerNorm { gamma, beta }
    }

    /// Normalises each row.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, NnError> {
        Ok(layer_norm(x, &self.gamma, &self.beta)?)
    }
}

/// Inverted dropout whose mask comes from our seeded generator (candle's CPU
/// generator cannot be seeded). Identity when not training or p = 0.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Dropout with drop probability `p` in [0, 1).
    pub fn new(p: f32) -> Result<Self, NnError> {
        if !(0.0..1.0).contains(&p) {
            return Err(NnError::Tensor(format!(
                "dropout probability must be in [0, 1), got {p}"
            )));
        }
        Ok(Dropout { p })
    }

    /// Applies dropout; `rng` is `Some` only in training.
    pub fn forward(&self, x: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor, NnError> {
        let Some(rng) = rng else { return Ok(x.clone()) };
        if self.p == 0.0 {
            return Ok(x.clone());
        }
        let scale = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rand::Rng::random::<f32>(rng) < self.p {
                    0.0
                } else {
                    scale
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
        Ok(x.mul(&mask)?)
    }
}

/// `y = [x +] Dropout(ReLU(LN(Linear(x))))`: the reference's `MLPBlock`
/// (residual) and `NoResMLPBlock` (plain).
#[derive(Debug, Clone)]
pub struct MlpBlock {
    pub linear: Linear,
    pub norm: LayerNorm,
    pub dropout: Dropout,
    pub residual: bool,
}

impl MlpBlock {
    /// Applies the block.
    pub fn forward(&self, x: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor, NnError> {
        let h = self.norm.forward(&self.linear.forward(x)?)?.relu()?;
        let h = self.dropout.forward(&h, rng)?;
        Ok(if self.residual { (x + h)? } else { h })
    }
}

/// The skip decoder's block: `y = x + Dropout(ReLU(LN(Linear([x ‖ c]))))`,
/// re-injecting the concept embedding `c` at every block.
#[derive(Debug, Clone)]
pub struct SkipBlock {
    pub linear: Linear,
    pub norm: LayerNorm,
    pub dropout: Dropout,
}

impl SkipBlock {
    /// Applies the block to the stream `x` with concept embedding `c`.
    pub fn forward(
        &self,
        x: &Tensor,
        c: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor, NnError> {
        let joined = Tensor::cat(&[x, c], 1)?;
        let h = self.norm.forward(&self.linear.forward(&joined)?)?.relu()?;
        let h = self.dropout.forward(&h, rng)?;
        Ok((x + h)?)
    }
}
