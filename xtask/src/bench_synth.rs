//! `cargo xtask bench-synth`: generator throughput and memory.
//!
//! Generates `cells x genes` counts with `concepts` concepts in a fresh child
//! process per thread count (so peak RSS is the generator's alone), and
//! times a numpy re-implementation of the reference's per-cell loop
//! (`scripts/python/reference_generator.py`) on a few cells, extrapolated
//! linearly to the same size. Writes `results/bench-synth.json`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use conceptlab_synth::{SynthConfig, generate};
use serde_json::json;

use crate::proc::{best_of, rss_mib, run_json};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100_000)]
    cells: usize,
    #[arg(long, default_value_t = 5_000)]
    genes: usize,
    #[arg(long, default_value_t = 8)]
    concepts: usize,
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    /// Cells the Python reference loop is timed on (then extrapolated).
    #[arg(long, default_value_t = 500)]
    python_cells: usize,
    #[arg(long, default_value = "python3")]
    python: String,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(long)]
    cells: usize,
    #[arg(long)]
    genes: usize,
    #[arg(long)]
    concepts: usize,
    #[arg(long)]
    threads: usize,
}

pub fn run_one(args: &RunArgs) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    let config = SynthConfig {
        n_obs: args.cells,
        n_vars: args.genes,
        n_concepts: args.concepts,
        ..SynthConfig::default()
    };
    let (_, baseline) = rss_mib();
    let start = Instant::now();
    let data = generate(&config, 0)?;
    let seconds = start.elapsed().as_secs_f64();
    let (peak, _) = rss_mib();
    let total: u64 = data.counts.iter().map(|&c| u64::from(c)).sum();
    println!(
        "{}",
        json!({"tool": "conceptlab", "threads": args.threads, "seconds": seconds,
               "peak_rss_mib": peak, "baseline_rss_mib": baseline,
               "mean_counts_per_cell": total as f64 / args.cells as f64})
    );
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let exe = std::env::current_exe()?;
    let dense_f32_mib = (args.cells * args.genes * 4) as f64 / (1 << 20) as f64;
    let mut runs = Vec::new();
    for threads in [1, 2] {
        let v = best_of(args.repeats, || {
            run_json(
                Command::new(&exe)
                    .arg("bench-synth-run")
                    .args([
                        "--cells",
                        &args.cells.to_string(),
                        "--genes",
                        &args.genes.to_string(),
                    ])
                    .args([
                        "--concepts",
                        &args.concepts.to_string(),
                        "--threads",
                        &threads.to_string(),
                    ]),
            )
        })?;
        eprintln!("{threads} thread(s): {v}");
        runs.push(v);
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python/reference_generator.py");
    let python = run_json(Command::new(&args.python).arg(script).args([
        args.python_cells.to_string(),
        args.genes.to_string(),
        args.concepts.to_string(),
    ]))?;
    let per_cell = python["seconds_per_cell"].as_f64().unwrap_or(f64::NAN);
    let report = json!({
        "benchmark": "synthetic generation",
        "cells": args.cells, "genes": args.genes, "concepts": args.concepts,
        "dense_f32_counts_mib": dense_f32_mib,
        "conceptlab": runs,
        "python_reference_loop": python,
        "python_reference_extrapolated_seconds": per_cell * args.cells as f64,
        "python_reference_dense_f64_counts_mib": 2.0 * dense_f32_mib,
    });
    println!(
        "generate {} x {} with {} concepts (dense f32 counts: {dense_f32_mib:.0} MiB)",
        args.cells, args.genes, args.concepts
    );
    for r in &runs {
        println!(
            "  conceptlab, {} thread(s): {:.2} s, peak RSS {:.0} MiB",
            r["threads"],
            r["seconds"].as_f64().unwrap_or(f64::NAN),
            r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "  numpy re-implementation of the reference loop: {:.1} ms per cell -> {:.0} s extrapolated (measured on {} cells)",
        per_cell * 1e3,
        per_cell * args.cells as f64,
        args.python_cells
    );
    std::fs::create_dir_all("results")?;
    std::fs::write(
        "results/bench-synth.json",
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    Ok(())
}
