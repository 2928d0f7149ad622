//! Neural-network building blocks on candle.
//!
//! Everything here follows PyTorch's conventions (see `spec-models.md` §0) so
//! that models trained here behave like the reference and checkpoints can be
//! compared with it: `Linear` is initialised U(±1/√fan_in), `LayerNorm` uses
//! eps 1e-5 and the biased variance, Adam matches `torch.optim.Adam`.
//!
//! Two things candle does not give us are written here:
//! - randomness drawn from our own seeded generator ([`crate::random`]):
//!   candle's CPU RNG cannot be seeded, so initial weights, dropout masks and
//!   reparametrisation noise are drawn on our side and uploaded;
//! - a layer norm with a backward pass and a fused, in-place Adam: candle-nn's
//!   fast layer norm has no gradient, and its optimiser costs ~14 allocating
//!   tensor ops per parameter per step.

mod adam;
mod bias;
mod init;
mod layer_norm;
mod layers;
pub mod loss;
mod params;
mod storage;

pub use adam::{Adam, AdamConfig};
pub use bias::add_bias;
pub use init::{linear_init, uniform, xavier_uniform};
pub use layer_norm::layer_norm;
pub use layers::{Dropout, LayerNorm, Linear, MlpBlock, SkipBlock};
pub use params::{ParamSet, serialize_tensors};

pub use candle_core::{DType, Device, Tensor, Var};

use crate::CoreError;

impl From<candle_core::Error> for CoreError {
    fn from(err: candle_core::Error) -> Self {
        CoreError::Tensor(err.to_string())
    }
}

/// The compute device: the first CUDA device when built with the `cuda`
/// feature and one is present, else the CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

/// A row-major `rows × cols` f32 matrix as a tensor on `device`.
pub fn matrix(
    data: &[f32],
    rows: usize,
    cols: usize,
    device: &Device,
) -> Result<Tensor, CoreError> {
    if data.len() != rows * cols {
        return Err(CoreError::ShapeMismatch {
            what: "matrix buffer".into(),
            expected: format!("{rows} x {cols} = {} values", rows * cols),
            found: format!("{} values", data.len()),
        });
    }
    Ok(Tensor::from_slice(data, (rows, cols), device)?)
}

/// A 2-D tensor's values, row-major.
pub fn to_rows(t: &Tensor) -> Result<Vec<f32>, CoreError> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}
