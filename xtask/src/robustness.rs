//! `cargo xtask robustness`: the paper's noisy-concept study on synthetic
//! data (`conceptlab_bench::studies::robustness_by_model`, in this process):
//! for each bottleneck model named (registry kinds, `sccbgm` and `cbgm`), each
//! model seed, the clean concepts and each corruption of the training
//! concepts (incorrect, irrelevant, missing, duplicated), and each held-out
//! combination, the counterfactual error of every method. Writes
//! `results/robustness.json` (or `--output`) and prints a table of mean ± sd
//! over seeds.

use anyhow::Result;
use conceptlab_bench::studies::robustness_by_model;
use conceptlab_models::registry::lookup;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Held-out combinations to average over (0-based indices).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    interventions: Vec<usize>,
    /// Concept columns each corruption touches.
    #[arg(long, default_value_t = 1)]
    n_mod: usize,
    /// Seed of the synthetic data (and the model seed when `--seeds` is not given).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model seeds to spread over.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Bottleneck models to study (registry kinds, settings `model.<kind>`).
    #[arg(long, value_delimiter = ',', default_value = "sccbgm")]
    models: Vec<String>,
    /// Resize synthetic_1 to this many cells.
    #[arg(long)]
    cells: Option<usize>,
    /// Resize synthetic_1 to this many genes.
    #[arg(long)]
    genes: Option<usize>,
    /// Settings as `conceptlab-cli --override KEY=VALUE` takes them.
    #[arg(long = "override")]
    overrides: Vec<String>,
    /// Where to write the results (relative to the workspace root).
    #[arg(long, default_value = "results/robustness.json")]
    output: String,
}

pub fn run(args: &Args) -> Result<()> {
    let mut settings = conceptlab_cli::settings::load(None, &args.overrides)?;
    settings.seed = args.seed;
    let models = args
        .models
        .iter()
        .map(|name| {
            let info = lookup(name)?;
            if !info.kind.is_bottleneck() || info.generator.is_some() {
                anyhow::bail!("`{name}` is not a bottleneck model of the registry");
            }
            Ok(settings.model.config(info.kind))
        })
        .collect::<Result<Vec<_>>>()?;
    let seeds = if args.seeds.is_empty() {
        vec![args.seed]
    } else {
        args.seeds.clone()
    };
    let suite = settings.benchmark_suite("synthetic_1", args.cells, args.genes)?;
    let started = std::time::Instant::now();
    let studies = robustness_by_model(
        &suite,
        &settings.benchmark_setup(),
        &models,
        &seeds,
        &args.interventions,
        args.n_mod,
        &mut |model, seed, scenario, iv, outcome| {
            let edit = outcome.score("sccbgm").map_or(f64::NAN, |s| s.mse);
            let decoder = outcome.score("sccbgm-decoder").map_or(f64::NAN, |s| s.mse);
            eprintln!(
                "{model} seed {seed}, {scenario}, intervention {iv}: edit {edit:.5}, decoder {decoder:.5} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        },
    )?;
    for study in &studies {
        println!("{}", study.model);
        for s in &study.scenarios {
            let cells: Vec<String> = s
                .methods
                .iter()
                .map(|m| format!("{} {:.5} ± {:.5}", m.method, m.mean, m.sd))
                .collect();
            println!("  {:<11} {}", s.scenario, cells.join("  "));
        }
    }
    let mut rows = Vec::new();
    for study in &studies {
        for (seed, scenarios) in &study.seeds {
            for s in scenarios {
                for o in &s.runs {
                    for row in o.rows("synthetic_1", &s.scenario, *seed) {
                        let mut v = serde_json::to_value(row)?;
                        v["model"] = json!(study.model);
                        rows.push(v);
                    }
                }
            }
        }
    }
    crate::proc::write_result(
        &args.output,
        &json!({
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "n_mod": args.n_mod,
            "data_seed": args.seed,
            "seeds": seeds,
            "cells": args.cells,
            "genes": args.genes,
            "interventions": args.interventions,
            "overrides": args.overrides,
            "seconds": started.elapsed().as_secs_f64(),
            "models": studies,
            "rows": rows,
        }),
    )
}
