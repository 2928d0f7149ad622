//! `cargo xtask robustness`: the paper's noisy-concept study on synthetic
//! data (`conceptlab_bench::studies::robustness`, in this process): for the
//! clean concepts and each corruption of the training concepts (incorrect,
//! irrelevant, missing, duplicated), and each held-out combination, the
//! counterfactual error of every method. Writes `results/robustness.json`
//! and prints a table.

use anyhow::Result;
use conceptlab_bench::studies::robustness;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Held-out combinations to average over (0-based indices).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    interventions: Vec<usize>,
    /// Concept columns each corruption touches.
    #[arg(long, default_value_t = 1)]
    n_mod: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
    let suite = settings.benchmark_suite("synthetic_1", None, None)?;
    let scenarios = robustness(
        &suite,
        &settings.benchmark_setup(),
        &args.interventions,
        args.n_mod,
        &mut |scenario, iv, outcome| {
            let edit = outcome.score("sccbgm").map_or(f64::NAN, |s| s.mse);
            eprintln!("{scenario}, intervention {iv}: scCBGM {edit:.5}");
        },
    )?;
    for s in &scenarios {
        let cells: Vec<String> = s
            .means
            .iter()
            .map(|m| format!("{} {:.5}", m.method, m.mse))
            .collect();
        println!("{:<11} {}", s.scenario, cells.join("  "));
    }
    crate::proc::write_result(
        &args.output,
        &json!({
            "n_mod": args.n_mod,
            "seed": args.seed,
            "interventions": args.interventions,
            "overrides": args.overrides,
            "rows": scenarios
                .iter()
                .flat_map(|s| s.runs.iter().flat_map(|o| o.rows("synthetic_1", &s.scenario, args.seed)))
                .collect::<Vec<_>>(),
            "scenarios": scenarios,
        }),
    )
}
