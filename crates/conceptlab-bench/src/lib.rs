//! The counterfactual benchmark: everything between "a suite of data sets
//! with known counterfactuals" and "a table of errors per model".
//!
//! - [`suite`]: the synthetic suite — generated cells, the zero-shot split
//!   and the preprocessing every held-out combination shares;
//! - [`protocol`]: one run (a held-out combination × a setup × a seed):
//!   trains the registry's models without the combination, edits it, and
//!   scores every method against the exact twins ([`Outcome`]);
//! - [`report`]: result rows ({suite, model, seed, metric, value}) and the
//!   means over held-out combinations that the tables print;
//! - [`studies`]: the noisy-concept robustness study and the flow study;
//! - [`runner`]: a plan of independent runs, resumable and run in
//!   parallel, each recorded in its own JSON; [`benchmark`]: what one run
//!   of `cargo xtask benchmark` computes; [`aggregate`]: mean ± SEM over
//!   seeds, CSV and the paper-style Markdown; [`plots`]: its figures.
//!
//! Called in-process by `conceptlab-cli demo` and by xtask. The only file
//! I/O is [`runner::DirStore`]'s run records (through `conceptlab-fs`);
//! figures and tables are returned, not written.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod aggregate;
pub mod benchmark;
mod error;
pub mod pbmc;
pub mod plots;
pub mod protocol;
pub mod report;
pub mod runner;
pub mod studies;
pub mod suite;

pub use error::BenchError;
pub use protocol::{Baseline, Failure, FlowOutcome, FlowSetup, Outcome, Setup, Timing, run};
pub use report::{MethodScore, ResultRow, mean_scores};
pub use suite::SyntheticSuite;
