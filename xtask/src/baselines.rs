//! `cargo xtask baselines`: every registry model on the paper's synthetic
//! benchmark (synthetic_1, each held-out (cell type, concept) combination,
//! several seeds), in this process. Each run trains scCBGM, the flows of the
//! flow stage (CBM-FM, vanilla FM) and every baseline on the same training
//! cells and scores their edits against the exact counterfactual twins.
//! Writes `results/baselines.json` and a Markdown table
//! (`results/baselines.md`), and prints the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};
use conceptlab_bench::{Baseline, Outcome, Setup};
use conceptlab_models::registry::{self, KINDS, ModelKind};
use conceptlab_nn::ode::Solver;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Held-out combinations (0-based); all of the split's when not given.
    #[arg(long, value_delimiter = ',')]
    interventions: Vec<usize>,
    /// Registry models to score besides the built-in rows (scCBGM, copy,
    /// mean shift, the oracle and the flow stage's CBM-FM and vanilla FM);
    /// every other registry kind when not given.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Skip the flow stage (CBM-FM, vanilla FM); flow baselines still run.
    #[arg(long)]
    no_flow: bool,
    /// At most this many epochs for each baseline (each otherwise trains as
    /// its kind does by default).
    #[arg(long)]
    baseline_epochs: Option<usize>,
    /// ODE solver steps (RK4) of every flow edit.
    #[arg(long, default_value_t = 12)]
    steps: usize,
    /// Settings as `conceptlab-cli --override KEY=VALUE` takes them.
    #[arg(long = "override")]
    overrides: Vec<String>,
    /// Where to write the results (relative to the workspace root).
    #[arg(long, default_value = "results/baselines.json")]
    output: String,
    #[arg(long, default_value = "results/baselines.md")]
    markdown: String,
}

/// The registry kinds scored as baselines: each kind once (two names may
/// share a kind), leaving out the ones every run scores anyway.
fn default_models() -> Vec<ModelKind> {
    let built_in = [ModelKind::ScCbgm, ModelKind::Copy, ModelKind::MeanShift];
    let mut kinds: Vec<ModelKind> = Vec::new();
    for entry in KINDS {
        if entry.generator.is_none()
            && !built_in.contains(&entry.kind)
            && !kinds.contains(&entry.kind)
        {
            kinds.push(entry.kind);
        }
    }
    kinds
}

fn chosen_models(names: &[String]) -> Result<Vec<ModelKind>> {
    if names.is_empty() {
        return Ok(default_models());
    }
    names
        .iter()
        .map(|n| {
            let entry = registry::lookup(n)?;
            if entry.generator.is_some() {
                bail!("{n} is a generator on top of a model; the flow stage scores it");
            }
            Ok(entry.kind)
        })
        .collect()
}

pub fn run(args: &Args) -> Result<()> {
    let mut settings = conceptlab_cli::settings::load(None, &args.overrides)?;
    let kinds = chosen_models(&args.models)?;
    let mut outcomes: Vec<(u64, usize, Outcome)> = Vec::new();
    let mut rows = Vec::new();
    for &seed in &args.seeds {
        settings.seed = seed;
        let suite = settings.benchmark_suite("synthetic_1", None, None)?;
        let interventions: Vec<usize> = if args.interventions.is_empty() {
            (0..suite.interventions.len()).collect()
        } else {
            args.interventions.clone()
        };
        for intervention in interventions {
            let setup = Setup {
                intervention,
                flow: (!args.no_flow)
                    .then(|| settings.benchmark_flow(Solver::Rk4, args.steps, false)),
                baselines: kinds
                    .iter()
                    .map(|&k| {
                        let mut b = Baseline::new(settings.model.config(k));
                        if let Some(cap) = args.baseline_epochs {
                            b.train.max_epochs = b.train.max_epochs.min(cap);
                        }
                        b
                    })
                    .collect(),
                ..settings.benchmark_setup()
            };
            let started = std::time::Instant::now();
            let outcome = conceptlab_bench::run(&suite, &setup, &mut |_| {})?;
            eprintln!(
                "seed {seed}, held out {} x {}: {:.0} s",
                outcome.cell_type,
                outcome.concept,
                started.elapsed().as_secs_f64()
            );
            for t in &outcome.timings {
                eprintln!(
                    "  {}: fit {:.0} s, edit {:.1} s",
                    t.method, t.fit_seconds, t.edit_seconds
                );
            }
            rows.extend(outcome.rows("synthetic_1", "baselines", seed));
            outcomes.push((seed, intervention, outcome));
            write(&outcomes, &rows, args, false)?;
        }
    }
    write(&outcomes, &rows, args, true)
}

/// Writes the JSON and the table of the runs so far (after every run, so a
/// stopped benchmark keeps what it measured); prints the table when `last`.
fn write(
    outcomes: &[(u64, usize, Outcome)],
    rows: &[conceptlab_bench::ResultRow],
    args: &Args,
    last: bool,
) -> Result<()> {
    let table = summarize(outcomes);
    let markdown = render(&table, args);
    if last {
        print!("{markdown}");
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(&args.markdown);
    std::fs::write(&out, &markdown)?;
    let runs: Vec<_> = outcomes
        .iter()
        .map(|(seed, intervention, o)| json!({"seed": seed, "intervention": intervention, "outcome": o}))
        .collect();
    crate::proc::write_result(
        &args.output,
        &json!({
            "suite": "synthetic_1",
            "seeds": args.seeds,
            "interventions": args.interventions,
            "overrides": args.overrides,
            "steps": args.steps,
            "baseline_epochs": args.baseline_epochs,
            "flow_stage": !args.no_flow,
            "complete": last,
            "table": table,
            "rows": rows,
            "runs": runs,
        }),
    )
}

/// One method over every run.
#[derive(Debug, Clone, serde::Serialize)]
struct MethodSummary {
    method: String,
    label: String,
    /// Mean cell-level MSE over every run (each held-out combination and
    /// seed once).
    mean: f64,
    /// Standard error of that mean over seeds (each seed's mean over its
    /// combinations is one value).
    sem: f64,
    shared: f64,
    /// Runs where the method's error is below copying the source cells'.
    beats_copy: usize,
    runs: usize,
    /// Mean error per held-out combination (over seeds).
    per_combination: BTreeMap<String, f64>,
    /// Mean seconds to fit, where the run timed it.
    fit_seconds: Option<f64>,
}

fn summarize(outcomes: &[(u64, usize, Outcome)]) -> Vec<MethodSummary> {
    let Some((_, _, first)) = outcomes.first() else {
        return Vec::new();
    };
    first
        .methods
        .iter()
        .enumerate()
        .map(|(position, m)| {
            let mut by_seed: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            let mut by_combination: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            let (mut all, mut shared, mut beats, mut fits) =
                (Vec::new(), Vec::new(), 0, Vec::new());
            for (seed, _, o) in outcomes {
                // A name may be scored twice (a built-in row and a
                // baseline); match by position, which every run shares.
                let Some(s) = o.methods.get(position).filter(|s| s.method == m.method) else {
                    continue;
                };
                all.push(s.mse);
                shared.push(s.shared_mse);
                by_seed.entry(*seed).or_default().push(s.mse);
                by_combination
                    .entry(format!("{} x {}", o.cell_type, o.concept))
                    .or_default()
                    .push(s.mse);
                if o.score("copy").is_some_and(|c| s.mse < c.mse) {
                    beats += 1;
                }
                if let Some(t) = o.timings.iter().find(|t| t.method == m.method) {
                    fits.push(t.fit_seconds);
                }
            }
            let seed_means: Vec<f64> = by_seed.values().map(|v| mean(v)).collect();
            MethodSummary {
                method: m.method.clone(),
                label: m.label.clone(),
                mean: mean(&all),
                sem: sem(&seed_means),
                shared: mean(&shared),
                beats_copy: beats,
                runs: all.len(),
                per_combination: by_combination
                    .iter()
                    .map(|(k, v)| (k.clone(), mean(v)))
                    .collect(),
                fit_seconds: (!fits.is_empty()).then(|| mean(&fits)),
            }
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn sem(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (var / v.len() as f64).sqrt()
}

fn render(table: &[MethodSummary], args: &Args) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Cell-level MSE to the exact counterfactual twins on synthetic_1 (128 PCs), mean over \
         every held-out combination and seed {:?}, ± SEM over seeds; `shared` is the part every \
         cell shares (squared distance of the means); `< copy` counts the runs where the method \
         beat returning the source cells unchanged.\n",
        args.seeds
    );
    let combos: Vec<&String> = table
        .first()
        .map(|t| t.per_combination.keys().collect())
        .unwrap_or_default();
    let _ = write!(md, "| method | MSE | ± SEM | shared | < copy | fit s |");
    for c in &combos {
        let _ = write!(md, " {c} |");
    }
    let _ = writeln!(md);
    let _ = write!(md, "|---|---:|---:|---:|---:|---:|");
    for _ in &combos {
        let _ = write!(md, "---:|");
    }
    let _ = writeln!(md);
    for t in table {
        let fit = t.fit_seconds.map_or("".to_string(), |s| format!("{s:.0}"));
        let _ = write!(
            md,
            "| {} | {:.5} | {:.5} | {:.5} | {}/{} | {fit} |",
            t.label, t.mean, t.sem, t.shared, t.beats_copy, t.runs
        );
        for c in &combos {
            let v = t.per_combination.get(*c).copied().unwrap_or(f64::NAN);
            let _ = write!(md, " {v:.5} |");
        }
        let _ = writeln!(md);
    }
    md
}
