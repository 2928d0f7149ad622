use conceptlab_core::CoreError;
use thiserror::Error;

/// Errors of tensor computations and of the data handed to them.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum NnError {
    /// A tensor operation failed (shape mismatch inside a model, device
    /// error): a failure of ours, not of the caller's data.
    #[error("tensor operation failed: {0}")]
    Tensor(String),
    /// Inputs violate an invariant (a buffer of the wrong size, an
    /// integration over an invalid interval).
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// The device asked for cannot be used: not a device name, a CUDA
    /// device in a build without the `cuda` feature, or one that is absent.
    #[error("{0}")]
    Device(String),
}

impl From<candle_core::Error> for NnError {
    fn from(err: candle_core::Error) -> Self {
        NnError::Tensor(err.to_string())
    }
}
