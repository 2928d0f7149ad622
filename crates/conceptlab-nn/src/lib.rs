//! Neural-network building blocks on candle.
//!
//! Everything here follows PyTorch's conventions so
//! that models trained here behave like the reference and checkpoints can be
//! compared with it: `Linear` is initialised U(±1/√fan_in), `LayerNorm` uses
//! eps 1e-5 and the biased variance, Adam matches `torch.optim.Adam`.
//!
//! Two things candle does not give us are written here:
//! - randomness drawn from our own seeded generator ([`conceptlab_core::random`]):
//!   candle's CPU RNG cannot be seeded, so initial weights, dropout masks and
//!   reparametrisation noise are drawn on our side and uploaded;
//! - a layer norm with a backward pass and a fused, in-place Adam: candle-nn's
//!   fast layer norm has no gradient, and its optimiser costs ~14 allocating
//!   tensor ops per parameter per step.
//!
//! [`ode`] integrates `dx/dt = f(t, x)` on tensors (the flow's solvers).
//! This is the only crate below the models that compiles candle: the data
//! model, I/O, the generator and the metrics never see a tensor.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod adam;
mod batch_norm;
mod bias;
pub mod device;
mod error;
mod init;
mod layer_norm;
mod layers;
pub mod loss;
pub mod ode;
pub mod parallel;
mod params;
mod storage;

pub use error::NnError;

pub use adam::{Adam, AdamConfig};
pub use batch_norm::{BatchNorm1d, BatchNormConfig};
pub use bias::add_bias;
pub use device::{DeviceSpec, device_name};
pub use init::{linear_init, uniform, xavier_uniform};
pub use layer_norm::layer_norm;
pub use layers::{Dropout, LayerNorm, Linear, MlpBlock, SkipBlock};
pub use params::{ParamSet, serialize_tensors};

pub use candle_core::{DType, Device, Tensor, Var};

use conceptlab_core::CoreError;

/// A row-major `rows × cols` f32 matrix as a tensor on `device`.
pub fn matrix(data: &[f32], rows: usize, cols: usize, device: &Device) -> Result<Tensor, NnError> {
    if data.len() != rows * cols {
        return Err(CoreError::ShapeMismatch {
            what: "matrix buffer".into(),
            expected: format!("{rows} x {cols} = {} values", rows * cols),
            found: format!("{} values", data.len()),
        }
        .into());
    }
    Ok(Tensor::from_slice(data, (rows, cols), device)?)
}

/// A 2-D tensor's values, row-major.
pub fn to_rows(t: &Tensor) -> Result<Vec<f32>, NnError> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}
