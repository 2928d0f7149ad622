//! The flow-matching velocity network (the
//! reference's `mlp.FlowDecoder`): input, condition and random-Fourier time
//! embeddings, residual blocks that add condition and time at every block,
//! and a small-gain output layer.

use candle_core::{D, Device, Tensor};
use conceptlab_core::random::{Rng, standard_normal};
use conceptlab_nn::{Dropout, LayerNorm, Linear, ParamSet, xavier_uniform};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Name of the fixed Fourier frequencies in the weights file.
pub const FOURIER_BUFFER: &str = "t_embedder.weights";

/// Sizes of a velocity network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VelocityDims {
    /// Dimension of the data the flow moves (e.g. 128 PCs).
    pub x_dim: usize,
    /// Dimension of the condition (0: unconditional).
    pub c_dim: usize,
    /// Embedding width E (even).
    pub emb_dim: usize,
    pub n_layers: usize,
}

#[derive(Debug)]
struct FlowBlock {
    linear: Linear,
    norm: LayerNorm,
}

/// v(x_t, t, c).
#[derive(Debug)]
pub struct VelocityNet {
    pub(crate) params: ParamSet,
    pub(crate) dims: VelocityDims,
    /// Frequencies w (E/2), drawn once as N(0,1)·2π and kept with the
    /// weights: re-drawing them at load time would break a trained model.
    fourier: Tensor,
    x_embedder: Linear,
    c_embedder: Option<Linear>,
    t_mapper: (Linear, Linear),
    blocks: Vec<FlowBlock>,
    dropout: Dropout,
    output: Linear,
}

impl VelocityNet {
    /// A new network with PyTorch's initialisation and the reference's
    /// re-initialisations (block biases 0; output Xavier-uniform with gain
    /// 0.1 and bias 0), drawn from `rng` in a fixed order.
    pub fn new(
        dims: VelocityDims,
        dropout: f32,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        let VelocityDims {
            x_dim,
            c_dim,
            emb_dim: e,
            n_layers,
        } = dims;
        if e == 0 || e % 2 != 0 {
            return Err(ModelError::Config(format!(
                "the embedding width must be even and positive, got {e}"
            )));
        }
        if x_dim == 0 {
            return Err(ModelError::Input(
                "the flow needs at least one data dimension".into(),
            ));
        }
        let mut p = ParamSet::new(device);
        let x_embedder = p.linear("x_embedder", x_dim, e, rng)?;
        let c_embedder = if c_dim > 0 {
            Some(p.linear("c_embedder", c_dim, e, rng)?)
        } else {
            None
        };
        let freqs: Vec<f32> = (0..e / 2)
            .map(|_| (standard_normal(rng) * 2.0 * std::f64::consts::PI) as f32)
            .collect();
        let fourier = Tensor::from_vec(freqs, (1, e / 2), device)?;
        let t0 = p.linear("t_mapper.0", e, e, rng)?;
        let t2 = p.linear("t_mapper.2", e, e, rng)?;
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let (w, _) = conceptlab_nn::linear_init(rng, e, e);
            blocks.push(FlowBlock {
                linear: p.linear_with(&format!("layers.{i}.linear"), e, e, w, vec![0.0; e])?,
                norm: p.layer_norm(&format!("layers.{i}.norm"), e)?,
            });
        }
        let w = xavier_uniform(rng, e, x_dim, 0.1);
        let output = p.linear_with("output_layer", e, x_dim, w, vec![0.0; x_dim])?;
        Ok(VelocityNet {
            params: p,
            dims,
            fourier,
            x_embedder,
            c_embedder,
            t_mapper: (t0, t2),
            blocks,
            dropout: Dropout::new(dropout)?,
            output,
        })
    }

    /// Hands the parameters to a larger model's set (ConceptFlow trains the
    /// velocity network with its encoder); this network keeps computing with
    /// them, but its own set is left empty.
    pub(crate) fn take_params(&mut self) -> ParamSet {
        let device = self.params.device().clone();
        std::mem::replace(&mut self.params, ParamSet::new(&device))
    }

    /// The network's sizes.
    pub fn dims(&self) -> VelocityDims {
        self.dims
    }

    /// The fixed Fourier frequencies (1 × E/2).
    pub fn fourier(&self) -> &Tensor {
        &self.fourier
    }

    /// Replaces the Fourier frequencies (loading a checkpoint).
    pub fn set_fourier(&mut self, w: Tensor) -> Result<(), ModelError> {
        let w = w.reshape((1, self.dims.emb_dim / 2))?;
        self.fourier = w.to_device(self.fourier.device())?;
        Ok(())
    }

    /// [sin(t·w) ‖ cos(t·w)] for a column of times (B × 1).
    fn time_features(&self, t: &Tensor) -> Result<Tensor, ModelError> {
        let angles = t.broadcast_mul(&self.fourier)?;
        Ok(Tensor::cat(&[&angles.sin()?, &angles.cos()?], D::Minus1)?)
    }

    /// The velocity at `x` (B × x_dim), times `t` (B × 1) and condition `c`
    /// (B × c_dim, or `None` for the unconditional field). `rng` is `Some`
    /// only in training (dropout).
    pub fn forward(
        &self,
        x: &Tensor,
        t: &Tensor,
        c: Option<&Tensor>,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor, ModelError> {
        let mut h = self.x_embedder.forward(x)?;
        let t_emb = {
            let (m0, m2) = &self.t_mapper;
            m2.forward(&m0.forward(&self.time_features(t)?)?.relu()?)?
        };
        let inject = match (c, &self.c_embedder) {
            (Some(c), Some(embed)) => (embed.forward(c)? + &t_emb)?,
            _ => t_emb,
        };
        for block in &self.blocks {
            let z = block
                .norm
                .forward(&block.linear.forward(&h.broadcast_add(&inject)?)?)?
                .relu()?;
            h = (&h + self.dropout.forward(&z, rng.as_deref_mut())?)?;
        }
        Ok(self.output.forward(&h)?)
    }
}

/// The conditional flow-matching loss on a straight path from `x0` (noise,
/// t = 0) to `x1` (data, t = 1): MSE(v(x_t, t, c), x1 − x0).
pub fn flow_matching_loss(
    net: &VelocityNet,
    x0: &Tensor,
    x1: &Tensor,
    t: &Tensor,
    c: Option<&Tensor>,
    rng: Option<&mut Rng>,
) -> Result<Tensor, ModelError> {
    let xt = (x0.broadcast_mul(&(1.0 - t)?)? + x1.broadcast_mul(t)?)?;
    let target = (x1 - x0)?;
    let v = net.forward(&xt, t, c, rng)?;
    Ok(conceptlab_nn::loss::mse(&v, &target)?)
}
