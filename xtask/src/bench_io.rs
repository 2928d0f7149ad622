//! `cargo xtask bench-io`: how fast and how lean is reading an .h5ad?
//!
//! Generates a cells x genes CSR count matrix (float32, given density), writes
//! it with conceptlab-io (uncompressed and gzip), then reads each file fully
//! into memory in a fresh process with conceptlab and with Python anndata
//! (`scripts/python/bench_read.py`), so peak RSS is per reader. Also times a
//! backed read of a random 1% of cells with conceptlab. Writes
//! `results/bench-io.json` and prints a table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use conceptlab_core::{CellData, Matrix, NumVec, SparseFormat, SparseMatrix};
use conceptlab_io::{Compression, H5ad, WriteOptions, read_h5ad, write_h5ad};
use serde_json::{Value, json};

use crate::proc::{best_of, rss_mib, run_json};
use conceptlab_core::random::{open_uniform, stream_rng};
use rand::Rng as _;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 50_000)]
    cells: usize,
    #[arg(long, default_value_t = 2_000)]
    genes: usize,
    #[arg(long, default_value_t = 0.1)]
    density: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Timed repetitions per reader (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Where the generated files go.
    #[arg(long, default_value = "results/tmp")]
    workdir: PathBuf,
    /// Python interpreter with anndata installed.
    #[arg(long, default_value = "python3")]
    python: String,
}

#[derive(clap::Args)]
pub struct ReadArgs {
    file: PathBuf,
    /// Read this many random rows (backed) instead of the whole file.
    #[arg(long)]
    rows: Option<usize>,
}

fn generate(cells: usize, genes: usize, density: f64, seed: u64) -> Result<CellData> {
    let mut rng = stream_rng(seed, 0);
    let mut indptr = Vec::with_capacity(cells + 1);
    indptr.push(0u64);
    let expected = (cells as f64 * genes as f64 * density * 1.05) as usize;
    let mut indices = Vec::with_capacity(expected);
    let mut data = Vec::with_capacity(expected);
    for _ in 0..cells {
        for g in 0..genes {
            if open_uniform(&mut rng) < density {
                indices.push(g as u32);
                // Small counts, as in UMI data.
                data.push(rng.random_range(1..=20u32) as f32);
            }
        }
        indptr.push(indices.len() as u64);
    }
    let x = SparseMatrix::new(
        SparseFormat::Csr,
        (cells, genes),
        indptr,
        indices,
        NumVec::F32(data),
    )?;
    Ok(CellData::new(
        Matrix::Sparse(x),
        (0..cells).map(|i| format!("cell{i}")).collect(),
        (0..genes).map(|i| format!("gene{i}")).collect(),
    )?)
}

/// Runs in a child process: one read, one JSON line on stdout.
pub fn read_one(args: &ReadArgs) -> Result<()> {
    let (_, baseline) = rss_mib();
    let start = Instant::now();
    // The result stays alive until memory is measured.
    let matrix = match args.rows {
        None => read_h5ad(&args.file)?.x,
        Some(k) => {
            let file = H5ad::open(&args.file)?;
            let n = file.shape()?.0;
            let mut rng = stream_rng(1, 0);
            let mut rows: Vec<usize> = (0..k).map(|_| rng.random_range(0..n)).collect();
            rows.sort_unstable();
            file.read_rows("X", &rows)?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let (peak, now) = rss_mib();
    println!(
        "{}",
        json!({"tool": "conceptlab", "seconds": seconds, "peak_rss_mib": peak,
               "baseline_rss_mib": baseline, "rss_held_by_result_mib": now - baseline,
               "n_obs": matrix.nrows(), "stored_values": matrix.values().len()})
    );
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    std::fs::create_dir_all(&args.workdir)?;
    let exe = std::env::current_exe()?;
    let t = Instant::now();
    let data = generate(args.cells, args.genes, args.density, args.seed)?;
    let nnz = data.x.values().len();
    eprintln!(
        "generated {} x {} CSR, {nnz} non-zeros in {:.1}s",
        args.cells,
        args.genes,
        t.elapsed().as_secs_f64()
    );

    let mut rows = Vec::new();
    for (label, compression) in [("none", Compression::None), ("gzip", Compression::Gzip(4))] {
        let path = args
            .workdir
            .join(format!("bench_{}x{}_{label}.h5ad", args.cells, args.genes));
        let t = Instant::now();
        write_h5ad(&data, &path, &WriteOptions { compression })?;
        let write_s = t.elapsed().as_secs_f64();
        let size_mib = std::fs::metadata(&path)?.len() as f64 / (1 << 20) as f64;
        let rust = best_of(args.repeats, || {
            run_json(Command::new(&exe).arg("bench-io-read").arg(&path))
        })?;
        let python = best_of(args.repeats, || {
            run_json(
                Command::new(&args.python)
                    .arg(script("bench_read.py"))
                    .arg(&path),
            )
        })?;
        let backed_rows = (args.cells / 100).max(1);
        let backed = best_of(args.repeats, || {
            run_json(
                Command::new(&exe)
                    .arg("bench-io-read")
                    .arg(&path)
                    .arg("--rows")
                    .arg(backed_rows.to_string()),
            )
        })?;
        rows.push(json!({
            "compression": label, "file_mib": size_mib, "conceptlab_write_s": write_s,
            "conceptlab": rust, "python_anndata": python,
            "conceptlab_backed": {"rows": backed_rows, "result": backed},
        }));
    }
    let report = json!({
        "benchmark": "h5ad full read",
        "cells": args.cells, "genes": args.genes, "density": args.density, "nnz": nnz,
        "repeats": args.repeats, "threads_available": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "runs": rows,
    });
    print_table(&report);
    let out = Path::new("results").join("bench-io.json");
    std::fs::create_dir_all("results")?;
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/python")
        .join(name)
}

fn print_table(report: &Value) {
    println!(
        "read {} x {} CSR float32 ({} non-zeros), best of {}",
        report["cells"], report["genes"], report["nnz"], report["repeats"]
    );
    println!(
        "{:<12} {:>9} {:>22} {:>22} {:>18}",
        "compression", "file MiB", "conceptlab s / MiB", "anndata s / MiB", "backed 1% s / MiB"
    );
    println!("(MiB: resident memory held by the result after the read; peak RSS is in the JSON)");
    for r in report["runs"].as_array().into_iter().flatten() {
        let cell = |v: &Value| {
            format!(
                "{:.3} / {:.0}",
                v["seconds"].as_f64().unwrap_or(f64::NAN),
                v["rss_held_by_result_mib"].as_f64().unwrap_or(f64::NAN)
            )
        };
        println!(
            "{:<12} {:>9.1} {:>22} {:>22} {:>18}",
            r["compression"].as_str().unwrap_or(""),
            r["file_mib"].as_f64().unwrap_or(f64::NAN),
            cell(&r["conceptlab"]),
            cell(&r["python_anndata"]),
            cell(&r["conceptlab_backed"]["result"]),
        );
    }
}
