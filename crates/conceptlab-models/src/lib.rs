//! Concept-bottleneck generative models.
//!
//! Every model behind one registry ([`registry`]): scCBGM ([`ScCbgm`]),
//! the flow-matching generator on top of it ([`flow`]), the trivial
//! predictors ([`baselines`]); one training loop ([`train`]); checkpoints. Works on plain
//! arrays (`ndarray`); never depends on `conceptlab-io`, so models can be fed
//! from any source.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod baselines;
pub mod cbgm;
pub mod checkpoint;
pub mod cinemaot;
mod convert;
pub mod cvae;
mod data;
pub mod edit;
mod error;
pub mod fit;
pub mod flow;
pub mod input;
pub mod limits;
#[cfg(test)]
mod matching_tests;
pub mod moa;
mod model;
pub mod nearest;
pub mod pipeline;
mod populations;
pub mod registry;
pub mod sccbgm;
pub mod scgen;
mod shortest;
pub mod stages;
pub mod train;
pub mod trvae;

pub use baselines::{CopySource, MeanShift};
pub use cbgm::{Cbgm, CbgmConfig};
pub use data::{ConceptData, first_non_finite};
pub use error::ModelError;
pub use model::{
    Annotations, ConceptModel, Counterfactual, Counterfactuals, EditRequest, Encoding, Model,
    Residual, intervene_on,
};
pub use pipeline::{Normalize, PreprocessConfig, Preprocessor};
pub use registry::{GeneratorKind, KINDS, KindInfo, ModelConfig, ModelKind, ModelSettings};
pub use sccbgm::{
    DecoderKind, Dims, EpochRecord, History, LossTerms, Orthogonality, ScCbgm, ScCbgmConfig,
};
pub use train::{EpochReport, Observer, TrainConfig};
