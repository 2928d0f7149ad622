//! Concept-bottleneck generative models.
//!
//! scCBGM ([`ScCbgm`]), its training loop and checkpoints. Works on plain
//! arrays (`ndarray`); never depends on `conceptlab-io`, so models can be fed
//! from any source.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod data;
mod error;
mod model;
pub mod sccbgm;
mod train;

pub use data::{ConceptData, first_non_finite};
pub use error::ModelError;
pub use model::{ConceptModel, Encoding, ModelKind};
pub use sccbgm::{
    DecoderKind, Dims, EpochRecord, History, LossTerms, Orthogonality, ScCbgm, ScCbgmConfig,
};
pub use train::{TrainConfig, stratified_split};
