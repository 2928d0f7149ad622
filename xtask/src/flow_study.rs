//! `cargo xtask flow-study`: the flow-matching counterfactual benchmark on
//! synthetic data, in this process. For each seed (and held-out
//! combination) runs the protocol with the flow stage and tabulates every
//! method (CBM-FM and vanilla FM in edit and decode mode, scCBGM's decoder
//! and residual-keeping edit, the trivial predictors, the oracle shift) as
//! mean ± sd over runs, with each one's shared part. The first run also
//! carries the solver study (error and cost of each ODE solver against
//! 1000-step Euler). Writes `results/flow-study.json`.

use anyhow::Result;
use conceptlab_bench::Setup;
use conceptlab_bench::studies::spread;
use conceptlab_nn::ode::Solver;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Held-out combinations (0-based indices).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    interventions: Vec<usize>,
    /// Skip the solver study.
    #[arg(long)]
    no_solver_study: bool,
    /// Settings as `conceptlab-cli --override KEY=VALUE` takes them.
    #[arg(long = "override")]
    overrides: Vec<String>,
    /// Where to write the results (relative to the workspace root).
    #[arg(long, default_value = "results/flow-study.json")]
    output: String,
}

pub fn run(args: &Args) -> Result<()> {
    let mut settings = conceptlab_cli::settings::load(None, &args.overrides)?;
    let mut runs = Vec::new();
    let mut outcomes = Vec::new();
    let mut rows = Vec::new();
    let mut first = true;
    for &seed in &args.seeds {
        settings.seed = seed;
        let suite = settings.benchmark_suite("synthetic_1", None, None)?;
        for &intervention in &args.interventions {
            // The demo's defaults: RK4 with 12 steps.
            let flow = settings.benchmark_flow(Solver::Rk4, 12, first && !args.no_solver_study);
            first = false;
            let setup = Setup {
                intervention,
                flow: Some(flow),
                ..settings.benchmark_setup()
            };
            let started = std::time::Instant::now();
            let outcome = conceptlab_bench::run(&suite, &setup, &mut |_| {})?;
            let mse = |m: &str| outcome.score(m).map_or(f64::NAN, |s| s.mse);
            eprintln!(
                "seed {seed}, intervention {intervention}: {:.0} s, CBM-FM edit {:.5}, vanilla FM edit {:.5}",
                started.elapsed().as_secs_f64(),
                mse("cbm-fm-edit"),
                mse("vanilla-fm-edit"),
            );
            rows.extend(outcome.rows("synthetic_1", "flow", seed));
            runs.push(json!({"seed": seed, "intervention": intervention, "outcome": &outcome}));
            outcomes.push(outcome);
        }
    }
    let table = spread(&outcomes, |m| m.mse);
    let shared = spread(&outcomes, |m| m.shared_mse);
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "method", "mean", "sd", "shared"
    );
    for (t, s) in table.iter().zip(&shared) {
        println!(
            "{:<40} {:>10.5} {:>10.5} {:>10.5}",
            t.label, t.mean, t.sd, s.mean
        );
    }
    let distance: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.flow.as_ref().map(|f| f.cbm_fm_vs_vanilla_fm_mse))
        .collect();
    crate::proc::write_result(
        &args.output,
        &json!({
            "seeds": args.seeds,
            "interventions": args.interventions,
            "overrides": args.overrides,
            "table": table,
            "shared": shared,
            "cbm_fm_vs_vanilla_fm_mse": distance,
            "rows": rows,
            "runs": runs,
        }),
    )
}
