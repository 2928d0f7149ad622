//! Flow matching on concept embeddings: the velocity network, its training
//! and ODE-based counterfactuals.

pub mod cbm;
mod model;
mod network;

#[cfg(test)]
mod golden_tests;

pub use cbm::{CbmFm, ConceptSource};
pub use model::{FlowConfig, FlowHistory, FlowMatcher, FlowMode, Sampling, default_flow_training};
pub use network::{FOURIER_BUFFER, VelocityDims, VelocityNet, flow_matching_loss};
