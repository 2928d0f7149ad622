//! Concept-bottleneck generative models.
//!
//! scCBGM ([`ScCbgm`]), its training loop and checkpoints. Works on plain
//! arrays (`ndarray`); never depends on `conceptlab-io`, so models can be fed
//! from any source.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod checkpoint;
mod convert;
mod data;
mod error;
pub mod flow;
mod model;
pub mod pipeline;
pub mod sccbgm;
pub mod train;

pub use data::{ConceptData, first_non_finite};
pub use error::ModelError;
pub use model::{ConceptModel, Encoding, ModelKind, Residual};
pub use pipeline::{Normalize, PreprocessConfig, Preprocessor};
pub use sccbgm::{
    DecoderKind, Dims, EpochRecord, History, LossTerms, Orthogonality, ScCbgm, ScCbgmConfig,
};
pub use train::{EpochReport, Observer, TrainConfig};
