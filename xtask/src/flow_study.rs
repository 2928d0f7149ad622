//! `cargo xtask flow-study`: the flow-matching counterfactual benchmark on
//! synthetic data. For each seed (and held-out combination) runs
//! `conceptlab-cli demo --flow` and tabulates CBM-FM (edit, decode), vanilla
//! FM (edit, conditioned on the observed concepts only), scCBGM's decoder and
//! residual-keeping edit, and the unedited / mean-shift baselines, as mean ±
//! sd over seeds. The first run also carries the solver study (error and
//! cost of each ODE solver against 1000-step Euler). Writes
//! `results/flow-study.json`.

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// The release binary (built with `cargo build --release -p conceptlab-cli`).
    #[arg(long, default_value = "target/release/conceptlab-cli")]
    cli: String,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Held-out combinations (0-based indices).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    interventions: Vec<usize>,
    /// Skip the solver study.
    #[arg(long)]
    no_solver_study: bool,
    /// Extra `--override KEY=VALUE` settings for every run.
    #[arg(long = "override")]
    overrides: Vec<String>,
    /// Where to write the results (relative to the workspace root).
    #[arg(long, default_value = "results/flow-study.json")]
    output: String,
}

/// (label, JSON path in the demo's outcome).
const METHODS: &[(&str, &str)] = &[
    ("scCBGM-FM (edit)", "/flow/cbm_fm_edit_mse"),
    ("scCBGM-FM (decode)", "/flow/cbm_fm_decode_mse"),
    ("Vanilla FM (edit)", "/flow/vanilla_fm_edit_mse"),
    ("Vanilla FM (decode)", "/flow/vanilla_fm_decode_mse"),
    (
        "scCBGM-FM (edit), shared part",
        "/flow/cbm_fm_edit_shared_mse",
    ),
    (
        "Vanilla FM (edit), shared part",
        "/flow/vanilla_fm_edit_shared_mse",
    ),
    (
        "scCBGM-FM vs vanilla FM edits",
        "/flow/cbm_fm_vs_vanilla_fm_mse",
    ),
    ("scCBGM (decoder output)", "/edited_mse"),
    ("scCBGM (residual kept)", "/edited_residual_mse"),
    ("unedited", "/unedited_mse"),
    ("mean shift", "/mean_shift_mse"),
    ("oracle shift", "/oracle_shift_mse"),
];

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

pub fn run(args: &Args) -> Result<()> {
    let mut runs = Vec::new();
    let mut first = true;
    for &iv in &args.interventions {
        for &seed in &args.seeds {
            let mut cmd = Command::new(&args.cli);
            cmd.args(["-q", "--seed", &seed.to_string()]);
            for o in &args.overrides {
                cmd.args(["--override", o]);
            }
            cmd.args([
                "demo",
                "--json",
                "--flow",
                "--intervention",
                &iv.to_string(),
            ]);
            if first && !args.no_solver_study {
                cmd.arg("--solver-study");
            }
            first = false;
            let started = std::time::Instant::now();
            let out = cmd
                .output()
                .with_context(|| format!("cannot run {}", args.cli))?;
            if !out.status.success() {
                anyhow::bail!(
                    "seed {seed}, intervention {iv}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // `demo --json` prints one pretty-printed object.
            let v: Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("seed {seed}, intervention {iv}"))?;
            eprintln!(
                "seed {seed}, intervention {iv}: {:.0} s, CBM-FM edit {:.5}, vanilla FM edit {:.5}",
                started.elapsed().as_secs_f64(),
                v.pointer("/flow/cbm_fm_edit_mse")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN),
                v.pointer("/flow/vanilla_fm_edit_mse")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN),
            );
            runs.push(json!({"seed": seed, "intervention": iv, "outcome": v}));
        }
    }
    let mut table = Vec::new();
    println!("{:<32} {:>10} {:>10}", "method", "mean", "sd");
    for &(label, pointer) in METHODS {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| r["outcome"].pointer(pointer).and_then(Value::as_f64))
            .collect();
        let (mean, sd) = mean_sd(&values);
        println!("{label:<32} {mean:>10.5} {sd:>10.5}");
        table.push(json!({"method": label, "mean": mean, "sd": sd, "values": values}));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(&args.output);
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json!({
            "seeds": args.seeds,
            "interventions": args.interventions,
            "overrides": args.overrides,
            "table": table,
            "runs": runs,
        }))?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
