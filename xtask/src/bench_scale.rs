//! `cargo xtask bench-scale`: the whole job at growing size, through the
//! release CLI binary as a user runs it: `synth` → `fit` → `edit` →
//! `evaluate` at each `--cells` × `--genes`, each step a child process whose
//! wall time and own peak RSS are measured, then each step's growth
//! exponent (the log-log slope of time and of memory over the sizes).
//! scanpy's normalize_total / log1p / PCA runs on the same synth file in the
//! same run (`scripts/python/bench_scale_scanpy.py`), next to fit's own
//! preprocessing times (read from fit's progress log lines). Writes
//! `results/bench-scale.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::proc::{Measured, run_measured, write_result};

#[derive(clap::Args)]
pub struct Args {
    /// Cell counts, one run of the whole job each.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    cells: Vec<usize>,
    #[arg(long, default_value_t = 2000)]
    genes: usize,
    /// Training epochs of `fit` (`train.max_epochs`).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// `evaluate` compares every predicted cell with every target cell
    /// (exact MMD and E-distance are quadratic); sizes above this skip it.
    /// (At 10^4 cells it ran for over 7 minutes on the loaded 2-core VM.)
    #[arg(long, default_value_t = 2_000)]
    evaluate_max_cells: usize,
    /// Python with scanpy; `none` skips the comparison.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The conceptlab-cli binary (default: the release build next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Where the files go (default: a temporary directory, removed after).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn cli_binary(args: &Args) -> Result<PathBuf> {
    let path = match &args.bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory above the xtask binary")?
            .join("conceptlab-cli"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it first (cargo build --release -p conceptlab-cli) or pass --bin",
            path.display()
        );
    }
    Ok(path)
}

/// One measured step: refuses a failed child with its stderr's tail.
fn step(name: &str, cmd: &mut Command) -> Result<Measured> {
    let m = run_measured(cmd.env_remove("RUST_LOG"))?;
    if !m.success {
        let tail: Vec<&str> = m.stderr.lines().rev().take(8).collect();
        bail!(
            "{name} failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!(
        "  {name:<9} {:>8.1} s  peak {:>8.0} MiB",
        m.seconds, m.peak_rss_mib
    );
    Ok(m)
}

fn row(m: &Measured) -> Value {
    json!({"seconds": m.seconds, "peak_rss_mib": m.peak_rss_mib})
}

/// fit's preprocessing steps from its progress log (`fit: PCA done in 1.2 s`).
fn stage_seconds(stderr: &str) -> Value {
    let mut out = serde_json::Map::new();
    for line in stderr.lines() {
        let Some(rest) = line.split("fit: ").nth(1) else {
            continue;
        };
        if let Some((stage, time)) = rest.split_once(" done in ") {
            let seconds = time.trim_end_matches(" s").trim().parse::<f64>();
            if let Ok(s) = seconds {
                out.insert(stage.to_string(), json!(s));
            }
        }
    }
    Value::Object(out)
}

/// The hard concepts synth wrote: cell_type and every concept_k column.
fn concept_columns(cli: &Path, file: &Path) -> Result<String> {
    let out = Command::new(cli)
        .args(["-q", "inspect", "--json"])
        .arg(file)
        .output()?;
    if !out.status.success() {
        bail!("inspect failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let text = v.to_string();
    // Column names are the only `concept_<digits>` strings in the report.
    let mut names: Vec<String> = Vec::new();
    for piece in text.split('"') {
        let is_concept = piece
            .strip_prefix("concept_")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if is_concept && !names.iter().any(|n| n == piece) {
            names.push(piece.to_string());
        }
    }
    if names.is_empty() {
        bail!("{}: no concept_<k> columns in obs", file.display());
    }
    names.insert(0, "cell_type".into());
    Ok(names.join(","))
}

/// Least-squares slope of log(value) over log(cells).
fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn one_size(args: &Args, cli: &Path, dir: &Path, cells: usize) -> Result<Value> {
    eprintln!("{cells} cells x {} genes", args.genes);
    let data = dir.join(format!("synth_{cells}.h5ad"));
    let twins = dir.join(format!("twins_{cells}.h5ad"));
    let model = dir.join(format!("model_{cells}"));
    let edited = dir.join(format!("edited_{cells}.h5ad"));
    let base = || {
        let mut c = Command::new(cli);
        c.args(["--progress", "log", "--seed", "0"]);
        c
    };
    let synth = step(
        "synth",
        base()
            .args(["synth", "--force", "--cells", &cells.to_string()])
            .args(["--genes", &args.genes.to_string()])
            .arg("-o")
            .arg(&data)
            .arg("--counterfactuals")
            .arg(&twins),
    )?;
    let file_mib = std::fs::metadata(&data)?.len() as f64 / (1 << 20) as f64;
    let concepts = concept_columns(cli, &data)?;
    let fit = step(
        "fit",
        base()
            .args(["--override", &format!("train.max_epochs={}", args.epochs)])
            .args(["fit", "--force"])
            .arg(&data)
            .args(["--concepts", &concepts])
            .arg("-o")
            .arg(&model),
    )?;
    let edit = step(
        "edit",
        base()
            .args(["edit", "--force"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .args(["--set", "cell_type=celltype_0"])
            .arg("-o")
            .arg(&edited),
    )?;
    let evaluate = if cells <= args.evaluate_max_cells {
        let m = step(
            "evaluate",
            base()
                .arg("evaluate")
                .arg("--pred")
                .arg(&edited)
                .arg("--target")
                .arg(&twins)
                .arg("--json"),
        )?;
        row(&m)
    } else {
        json!({"skipped": format!("more than --evaluate-max-cells {}", args.evaluate_max_cells)})
    };
    let scanpy = if args.python == "none" {
        Value::Null
    } else {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python/bench_scale_scanpy.py");
        let m = step("scanpy", Command::new(&args.python).arg(script).arg(&data))?;
        let line = m
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .context("no JSON from the scanpy script")?;
        let mut v: Value = serde_json::from_str(line)?;
        v["process_peak_rss_mib"] = json!(m.peak_rss_mib);
        v["process_seconds"] = json!(m.seconds);
        v
    };
    for f in [&data, &twins, &edited] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(&model);
    Ok(json!({
        "cells": cells,
        "genes": args.genes,
        "synth_file_mib": file_mib,
        "synth": row(&synth),
        "fit": row(&fit),
        "fit_preprocessing_seconds": stage_seconds(&fit.stderr),
        "edit": row(&edit),
        "evaluate": evaluate,
        "scanpy": scanpy,
    }))
}

pub fn run(args: &Args) -> Result<()> {
    let cli = cli_binary(args)?;
    let temp;
    let dir = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = std::env::temp_dir().join(format!("bench-scale-{}", std::process::id()));
            std::fs::create_dir_all(&temp)?;
            temp.clone()
        }
    };
    let mut sizes = Vec::new();
    for &cells in &args.cells {
        sizes.push(one_size(args, &cli, &dir, cells)?);
        // Written after every size: a stopped run keeps what it measured.
        write_result("results/bench-scale.json", &report(args, &sizes))?;
    }
    if args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn report(args: &Args, sizes: &[Value]) -> Value {
    let mut exponents = serde_json::Map::new();
    for name in ["synth", "fit", "edit", "evaluate"] {
        let series = |field: &str| -> Vec<(f64, f64)> {
            sizes
                .iter()
                .filter_map(|s| Some((s["cells"].as_f64()?, s[name][field].as_f64()?)))
                .collect()
        };
        exponents.insert(
            name.into(),
            json!({"time": exponent(&series("seconds")), "peak_rss": exponent(&series("peak_rss_mib"))}),
        );
    }
    json!({
        "command": format!(
            "cargo xtask bench-scale --cells {} --genes {} --epochs {}",
            args.cells.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
            args.genes,
            args.epochs
        ),
        "machine": {"cpus": std::thread::available_parallelism().map_or(0, usize::from)},
        "sizes": sizes,
        "exponents": exponents,
        "targets": {
            "fit_peak_rss_mib_at_1e6": 8192,
            "edit_peak_rss_mib_at_1e6": 2048,
            "time_exponent_max": 1.1
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_of_a_power_law() {
        let pts: Vec<(f64, f64)> = [1e4, 1e5, 1e6].iter().map(|&n| (n, 3.0 * n)).collect();
        assert!((exponent(&pts).unwrap() - 1.0).abs() < 1e-12);
        let quad: Vec<(f64, f64)> = [1e4, 1e5].iter().map(|&n| (n, n * n)).collect();
        assert!((exponent(&quad).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(exponent(&pts[..1]), None);
    }

    #[test]
    fn stage_times_come_from_fit_log_lines() {
        let log = "INFO fit: PCA on 10 cells...\n INFO fit: PCA done in 1.5 s\n\
                   INFO fit: normalize_total + log1p done in 0.2 s\n";
        let v = stage_seconds(log);
        assert_eq!(v["PCA"].as_f64(), Some(1.5));
        assert_eq!(v["normalize_total + log1p"].as_f64(), Some(0.2));
    }
}
