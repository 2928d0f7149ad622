//! Developer tasks: `cargo xtask <task>`. Nothing in the product depends on this crate.

mod baselines;
mod bench_eval;
mod bench_io;
mod bench_scale;
mod bench_synth;
mod bench_train;
mod benchmark;
mod check_cuda;
mod fetch;
mod fetch_data;
mod flow_study;
mod fuzz;
mod pbmc_suite;
mod proc;
mod robustness;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "conceptlab developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

// Variant names are the task names users type (`bench-io`, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum Task {
    /// Benchmark .h5ad reading: conceptlab against Python anndata on the same
    /// generated CSR file, each in its own process (wall time and peak memory).
    BenchIo(bench_io::Args),
    /// (internal) Read one file in this process and print timing JSON.
    #[command(hide = true)]
    BenchIoRead(bench_io::ReadArgs),
    /// The whole job at growing size through the release CLI: synth → fit →
    /// edit → evaluate at each --cells (wall time, peak RSS, growth
    /// exponents), with scanpy's preprocessing on the same file.
    BenchScale(bench_scale::Args),
    /// Benchmark the synthetic generator (wall time and peak memory on 1 and
    /// 2 threads) next to a numpy re-implementation of the reference's loop.
    BenchSynth(bench_synth::Args),
    /// Benchmark metric throughput (MMD², E-distance, Wilcoxon) next to
    /// numpy/scipy/scikit-learn on the same data.
    BenchEval(bench_eval::Args),
    /// Benchmark scCBGM training throughput (real-data and synthetic
    /// configurations, 1 and 2 threads) next to the same model in PyTorch.
    BenchTrain(bench_train::Args),
    /// Type-check the workspace with `--features cuda`, with nvcc from pip
    /// in a venv under the target directory (slow: about 17 minutes).
    CheckCuda(check_cuda::Args),
    /// The noisy-concept robustness study: counterfactual error under each
    /// corruption of the training concepts, averaged over held-out combinations.
    Robustness(robustness::Args),
    /// The flow-matching benchmark: CBM-FM against scCBGM and vanilla FM over
    /// seeds, with the ODE solver study.
    FlowStudy(flow_study::Args),
    /// Every registry model on synthetic_1 (each held-out combination, several
    /// seeds) against the exact counterfactual twins: the baselines table.
    Baselines(baselines::Args),
    /// The paper's tables with one command: a suite's plan of runs (data set
    /// × held-out combination × model × seed), resumable and parallel, with
    /// per-run JSON, CSV, Markdown and figures.
    Benchmark(benchmark::Args),
    /// The pbmc68k semi-synthetic suite: an injected stimulation, one cell
    /// type's stimulated cells held out, every method against the exact twins.
    PbmcSuite(pbmc_suite::Args),
    /// Download, verify and unpack the data sets of data/manifest.toml
    /// (resumable; skips what is already in place and verified).
    FetchData(fetch_data::Args),
    /// Fuzz the .h5ad reader: read mutated copies of small Python-written
    /// files and fail on any panic, hang or oversized allocation.
    Fuzz(fuzz::Args),
    /// (internal) Time training in this process and print JSON.
    #[command(hide = true)]
    BenchTrainRun(bench_train::RunArgs),
    /// (internal) Generate once in this process and print timing JSON.
    #[command(hide = true)]
    BenchSynthRun(bench_synth::RunArgs),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::BenchIo(args) => bench_io::run(&args),
        Task::BenchIoRead(args) => bench_io::read_one(&args),
        Task::BenchScale(args) => bench_scale::run(&args),
        Task::BenchSynth(args) => bench_synth::run(&args),
        Task::BenchEval(args) => bench_eval::run(&args),
        Task::BenchSynthRun(args) => bench_synth::run_one(&args),
        Task::Robustness(args) => robustness::run(&args),
        Task::FlowStudy(args) => flow_study::run(&args),
        Task::Baselines(args) => baselines::run(&args),
        Task::Benchmark(args) => benchmark::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::FetchData(args) => fetch_data::run(&args),
        Task::PbmcSuite(args) => pbmc_suite::run(&args),
        Task::BenchTrain(args) => bench_train::run(&args),
        Task::BenchTrainRun(args) => bench_train::run_one(&args),
        Task::CheckCuda(args) => check_cuda::run(&args),
    }
}
