//! Synthetic single-cell counts with exact ground-truth counterfactuals.
//!
//! The generative process: cells get a batch, a tissue,
//! a cell type and binary concepts; counts are Poisson with a log rate that
//! adds baseline, concept, cell-type, batch, tissue, library-size and noise
//! terms, drawn by inverse-CDF coupling from per-gene exogenous uniforms.
//! [`counterfactual`] replays a cell's exogenous noise under edited concepts,
//! so the true effect of any edit is known exactly. [`benchmark_split`]
//! builds the paper's zero-shot benchmark, and [`corrupt`] its concept
//! corruptions.
//!
//! Unlike the reference, everything is drawn from one seed (streams per cell,
//! see [`conceptlab_core::random`]): the same seed gives the same data, on any
//! number of threads.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod cells;
mod config;
mod corrupt;
mod error;
mod generate;
mod params;
mod split;

pub use cells::{
    CountStorage, obs_name, pathway_name, to_cell_data, to_cell_data_as, twins_cell_data,
    twins_cell_data_as,
};
pub use config::{BenchmarkConfig, MediationConfig, SynthConfig};
pub use corrupt::{Amount, ConceptTable, Corruption, corrupt};
pub use error::SynthError;
pub use generate::{MediatedCells, SynthDataset, counterfactual, generate};
pub use params::{MediationParams, SynthParams};
pub use split::{Intervention, Role, benchmark_split};
