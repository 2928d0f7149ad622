//! Flow matching on concept embeddings: the velocity network, its training
//! and ODE-based counterfactuals.

mod model;
mod network;

#[cfg(test)]
mod golden_tests;

pub use model::{FlowConfig, FlowMatcher, FlowMode, Sampling};
pub use network::{FOURIER_BUFFER, VelocityDims, VelocityNet, flow_matching_loss};
