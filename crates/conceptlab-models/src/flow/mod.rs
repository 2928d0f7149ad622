//! Flow matching: the velocity network, its training and ODE-based
//! counterfactuals; CBM-FM on a concept model's embedding, raw-fm on the
//! observed concepts, ConceptFlow end to end.

pub mod cbm;
pub mod conceptflow;
mod model;
mod network;
pub mod raw;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod mixed_tests;
#[cfg(test)]
pub(crate) mod testkit;

pub use cbm::{CbmFm, ConceptSource};
pub use conceptflow::{ConceptFlow, ConceptFlowConfig};
pub use model::{
    DEFAULT_STEPS, FlowConfig, FlowHistory, FlowMatcher, FlowMode, Sampling, default_flow_training,
};
pub use network::{FOURIER_BUFFER, VelocityDims, VelocityNet, flow_matching_loss};
pub use raw::{RawFm, RawFmConfig};
