//! `cargo xtask robustness`: the paper's noisy-concept study on synthetic
//! data. For each corruption of the training concepts (none, incorrect =
//! noise, irrelevant = add, missing = drop, duplicated), and each held-out
//! combination, runs `conceptlab-cli demo` and averages the counterfactual
//! errors. Writes `results/robustness.json` and prints a table.

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// The release binary (built with `cargo build --release -p conceptlab-cli`).
    #[arg(long, default_value = "target/release/conceptlab-cli")]
    cli: String,
    /// Held-out combinations to average over (0-based indices).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    interventions: Vec<usize>,
    /// Concept columns each corruption touches.
    #[arg(long, default_value_t = 1)]
    n_mod: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Extra `--override KEY=VALUE` settings for every run.
    #[arg(long = "override")]
    overrides: Vec<String>,
}

const SCENARIOS: [(&str, Option<&str>); 5] = [
    ("clean", None),
    ("incorrect", Some("noise")),
    ("irrelevant", Some("add")),
    ("missing", Some("drop")),
    ("duplicated", Some("duplicate")),
];

const KEYS: [&str; 5] = [
    "edited_residual_mse",
    "edited_mse",
    "unedited_mse",
    "mean_shift_mse",
    "oracle_shift_mse",
];

pub fn run(args: &Args) -> Result<()> {
    let mut table = Vec::new();
    for (label, corruption) in SCENARIOS {
        let mut sums = [0.0f64; KEYS.len()];
        let mut runs = Vec::new();
        for &iv in &args.interventions {
            let mut cmd = Command::new(&args.cli);
            cmd.args(["-q", "--seed", &args.seed.to_string()]);
            for o in &args.overrides {
                cmd.args(["--override", o]);
            }
            cmd.args(["demo", "--json", "--intervention", &iv.to_string()]);
            if let Some(kind) = corruption {
                cmd.args(["--corrupt", kind, "--n-mod", &args.n_mod.to_string()]);
            }
            let out = cmd
                .output()
                .with_context(|| format!("cannot run {}", args.cli))?;
            if !out.status.success() {
                anyhow::bail!(
                    "{label}, intervention {iv}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // `demo --json` prints one pretty-printed object.
            let v: Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("{label}, intervention {iv}"))?;
            for (s, k) in sums.iter_mut().zip(KEYS) {
                *s += v[k].as_f64().unwrap_or(f64::NAN);
            }
            runs.push(v);
        }
        let n = args.interventions.len().max(1) as f64;
        let means: Vec<f64> = sums.iter().map(|s| s / n).collect();
        println!(
            "{label:<11} residual-kept {:.5}  decoder {:.5}  unedited {:.5}  mean-shift {:.5}  oracle {:.5}",
            means[0], means[1], means[2], means[3], means[4]
        );
        let mut row = serde_json::Map::new();
        row.insert("scenario".into(), json!(label));
        for (k, m) in KEYS.iter().zip(&means) {
            row.insert((*k).into(), json!(m));
        }
        row.insert("runs".into(), Value::Array(runs));
        table.push(Value::Object(row));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/robustness.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(
            &json!({"n_mod": args.n_mod, "seed": args.seed, "interventions": args.interventions, "overrides": args.overrides, "scenarios": table}),
        )?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
