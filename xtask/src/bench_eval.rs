//! `cargo xtask bench-eval`: metric throughput next to the Python tools.
//!
//! MMD² (the rMMD numerator) and the E-distance between two populations of
//! `cells` points in `dims` dimensions, and per-gene Wilcoxon tests over
//! `de_cells` cells x `genes` genes (half against half), by conceptlab-eval
//! and by `scripts/python/bench_metrics.py` on the same bytes, in one run.
//! Writes `results/bench-eval.json`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use conceptlab_core::random::{open_uniform, standard_normal, stream_rng};
use conceptlab_eval::{Points, e_distance, mmd2_rbf_default, wilcoxon_rank_sum};
use serde_json::json;

use crate::proc::run_json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 10_000)]
    cells: usize,
    #[arg(long, default_value_t = 128)]
    dims: usize,
    #[arg(long, default_value_t = 20_000)]
    de_cells: usize,
    #[arg(long, default_value_t = 3_000)]
    genes: usize,
    #[arg(long, default_value = "python3")]
    python: String,
}

fn write_f64(path: &Path, values: &[f64]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes)?;
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let dir = Path::new("results/tmp");
    std::fs::create_dir_all(dir)?;
    let mut rng = stream_rng(0, 0);
    let (n, d) = (args.cells, args.dims);
    let x: Vec<f64> = (0..n * d).map(|_| standard_normal(&mut rng)).collect();
    let y: Vec<f64> = (0..n * d)
        .map(|_| standard_normal(&mut rng) * 1.1 + 0.1)
        .collect();
    // Log-normalised-looking expression with many ties (zeros).
    let half = args.de_cells / 2;
    let expr = |rng: &mut conceptlab_core::random::Rng, shift: f64| -> Vec<f64> {
        (0..half * args.genes)
            .map(|_| {
                let u = open_uniform(rng);
                if u < 0.6 {
                    0.0
                } else {
                    (1.0 + (u * 10.0 + shift).floor()).ln()
                }
            })
            .collect()
    };
    let group = expr(&mut rng, 0.5);
    let rest = expr(&mut rng, 0.0);
    let paths = ["x", "y", "group", "rest"].map(|name| dir.join(format!("bench_eval_{name}.f64")));
    for (path, values) in paths.iter().zip([&x, &y, &group, &rest]) {
        write_f64(path, values)?;
    }

    let (px, py) = (Points::new("x", &x, d)?, Points::new("y", &y, d)?);
    let t = Instant::now();
    let mmd = mmd2_rbf_default(&px, &py)?;
    let mmd_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ed = e_distance(&px, &py)?;
    let ed_s = t.elapsed().as_secs_f64();
    let (pg, pr) = (
        Points::new("group", &group, args.genes)?,
        Points::new("rest", &rest, args.genes)?,
    );
    let t = Instant::now();
    let tests = wilcoxon_rank_sum(&pg, &pr, true)?;
    let wil_s = t.elapsed().as_secs_f64();
    let min_p = tests.iter().map(|t| t.p).fold(1.0, f64::min);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python/bench_metrics.py");
    let mut cmd = Command::new(&args.python);
    cmd.arg(script)
        .args([&paths[0], &paths[1]])
        .args([n.to_string(), d.to_string()]);
    cmd.args([&paths[2], &paths[3]]).args([
        half.to_string(),
        half.to_string(),
        args.genes.to_string(),
    ]);
    let python = run_json(&mut cmd)?;

    let threads = rayon::current_num_threads();
    let report = json!({
        "benchmark": "metrics",
        "threads": threads,
        "mmd_e_distance": {"cells_per_side": n, "dims": d},
        "wilcoxon": {"cells": 2 * half, "genes": args.genes},
        "conceptlab": {"mmd2": mmd, "mmd_seconds": mmd_s, "e_distance": ed, "e_distance_seconds": ed_s,
                       "wilcoxon_seconds": wil_s, "wilcoxon_min_p": min_p},
        "python": python,
    });
    println!(
        "metrics on {threads} thread(s): {n} x {n} cells in {d} dims; Wilcoxon on {} cells x {} genes",
        2 * half,
        args.genes
    );
    let c = &report["conceptlab"];
    let p = &report["python"];
    for (name, key) in [
        ("MMD²", "mmd_seconds"),
        ("E-distance", "e_distance_seconds"),
        ("Wilcoxon", "wilcoxon_seconds"),
    ] {
        println!(
            "  {name:<11} conceptlab {:>7.2} s   python {:>7.2} s",
            c[key].as_f64().unwrap_or(f64::NAN),
            p[key].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "  values: MMD² {:.6e} vs {:.6e}; E-distance {:.6} vs {:.6}",
        mmd,
        p["mmd2"].as_f64().unwrap_or(f64::NAN),
        ed,
        p["e_distance"].as_f64().unwrap_or(f64::NAN)
    );
    std::fs::write(
        "results/bench-eval.json",
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    Ok(())
}
