//! `cargo xtask benchmark`: the paper's tables with one command. Builds the
//! plan of a suite (data set × held-out combination × model × seed), runs
//! what is not already recorded (`conceptlab_bench::runner`), and writes
//! into `results/<suite>/<timestamp>/` (or `--out`): `runs/<id>.json` per
//! run, `results.csv` (mean ± SEM over seeds), `results.md` (the paper's
//! layout) and the figures (`error-bars-*`, `top-genes-*`, SVG and PNG).
//! Prints the table at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use conceptlab_bench::aggregate::{self, Aggregate};
use conceptlab_bench::benchmark::{self, BenchModel, Role, SuiteCache, SuiteKey};
use conceptlab_bench::pbmc::{self, InjectionConfig, PbmcSuite, RunConfig};
use conceptlab_bench::runner::{self, DirStore, Event, RunRecord, RunSpec};
use conceptlab_bench::{FlowSetup, plots};
use conceptlab_cli::settings::Settings;
use conceptlab_nn::ode::Solver;
use serde_json::json;

/// The suites `--suite` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SuiteArg {
    /// Small synthetic data, a handful of models, two seeds: minutes.
    Quick,
    /// synthetic_1/2/3 at full size, every held-out combination.
    Synthetic,
    /// The pbmc68k semi-synthetic suite (data/pbmc68k_reduced.h5ad).
    Pbmc,
    /// Kang, Cui, liver (files under data/real).
    Real,
    /// synthetic, pbmc and real.
    All,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "quick")]
    suite: SuiteArg,
    /// Models (registry names, or `oracle-shift`); the suite's list when
    /// not given.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Model seeds (weights, batches, noise); the suite's when not given.
    /// In the pbmc suite a seed also draws the injected program.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Seed of the synthetic data and its split: every model seed sees the
    /// same cells and held-out combinations, so the spread over seeds is
    /// the models'.
    #[arg(long, default_value_t = 0)]
    data_seed: u64,
    /// Held-out combinations (0-based); every one of the split when not given.
    #[arg(long, value_delimiter = ',')]
    combinations: Vec<usize>,
    /// Runs at a time. Each run is single-threaded whatever this is, so
    /// results do not depend on it.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Output directory (relative to the workspace root); default
    /// `results/<suite>/<UTC timestamp>`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the newest `results/<suite>/*` instead of starting a new
    /// directory (with `--out`, runs already in it are skipped anyway).
    #[arg(long)]
    resume: bool,
    /// Resize the synthetic presets (the quick suite's defaults otherwise).
    #[arg(long)]
    cells: Option<usize>,
    #[arg(long)]
    genes: Option<usize>,
    /// At most this many epochs for every model and flow.
    #[arg(long)]
    max_epochs: Option<usize>,
    /// ODE solver steps (RK4) of every flow edit.
    #[arg(long, default_value_t = 12)]
    steps: usize,
    /// Settings as `conceptlab-cli --override KEY=VALUE` takes them.
    #[arg(long = "override")]
    overrides: Vec<String>,
}

/// What a suite runs by default.
struct SuiteDefaults {
    name: &'static str,
    presets: &'static [&'static str],
    cells: Option<usize>,
    genes: Option<usize>,
    n_pcs: Option<usize>,
    max_epochs: Option<usize>,
    models: Vec<String>,
    seeds: Vec<u64>,
}

fn defaults(suite: SuiteArg) -> SuiteDefaults {
    match suite {
        SuiteArg::Quick => SuiteDefaults {
            name: "quick",
            presets: &["synthetic_1"],
            cells: Some(1500),
            genes: Some(300),
            n_pcs: Some(16),
            max_epochs: Some(40),
            models: [
                "sccbgm",
                "cbm-fm",
                "copy",
                "mean-shift",
                "oracle-shift",
                "cbgm",
                "sccvae",
                "raw-fm",
                "nearest",
                "cinemaot",
            ]
            .map(String::from)
            .to_vec(),
            seeds: vec![0, 1],
        },
        _ => SuiteDefaults {
            name: "synthetic",
            presets: &["synthetic_1", "synthetic_2", "synthetic_3"],
            cells: None,
            genes: None,
            n_pcs: None,
            max_epochs: None,
            models: benchmark::all_models()
                .into_iter()
                .map(|m| m.name)
                .collect(),
            seeds: vec![0, 1, 2],
        },
    }
}

/// The workspace root (xtask's parent).
fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub fn run(args: &Args) -> Result<()> {
    if args.jobs == 0 || args.jobs > 64 {
        bail!("--jobs must be between 1 and 64, got {}", args.jobs);
    }
    single_threaded_runs(args.jobs)?;
    let suites: Vec<SuiteArg> = match args.suite {
        SuiteArg::All => vec![SuiteArg::Synthetic, SuiteArg::Pbmc, SuiteArg::Real],
        s => vec![s],
    };
    let label = match args.suite {
        SuiteArg::Quick => "quick",
        SuiteArg::Synthetic => "synthetic",
        SuiteArg::Pbmc => "pbmc",
        SuiteArg::Real => "real",
        SuiteArg::All => "all",
    };
    if args.suite == SuiteArg::Real {
        // Nothing to record until the real-data protocol runs.
        real_suite();
        return Ok(());
    }
    let out = output_dir(args, label)?;
    let store = DirStore::new(&out.join("runs"))?;
    eprintln!("benchmark {label}: results in {}", out.display());
    let started = Instant::now();
    let mut records: Vec<RunRecord> = Vec::new();
    for suite in suites {
        match suite {
            SuiteArg::Quick | SuiteArg::Synthetic => {
                records.extend(synthetic(args, &defaults(suite), &store)?)
            }
            SuiteArg::Pbmc => records.extend(pbmc_suite(args, &store)?),
            SuiteArg::Real => real_suite(),
            SuiteArg::All => {}
        }
    }
    if records.is_empty() {
        println!("no run of the {label} suite could be done (see above)");
        return Ok(());
    }
    let rows = aggregate::aggregate(&records);
    let markdown = report(&records, &rows, &out, started.elapsed().as_secs_f64())?;
    print!("{markdown}");
    println!("wrote {}", out.display());
    Ok(())
}

/// Candle sizes its matrix products from RAYON_NUM_THREADS at every
/// product: one thread per run, whatever `--jobs` is, so a run's bytes do
/// not depend on how many run beside it. rayon's own pool (whose users
/// give thread-count-independent results) gets one thread per job.
fn single_threaded_runs(jobs: usize) -> Result<()> {
    // SAFETY: called before this process starts any thread, so nothing
    // reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global()
        .context("cannot configure the thread pool")
}

fn output_dir(args: &Args, suite: &str) -> Result<PathBuf> {
    if let Some(dir) = &args.out {
        return Ok(root().join(dir));
    }
    let parent = root().join("results").join(suite);
    if args.resume {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&parent)
            .with_context(|| format!("--resume: cannot read {}", parent.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("runs").is_dir())
            .collect();
        dirs.sort();
        return dirs
            .pop()
            .with_context(|| format!("--resume: no earlier run under {}", parent.display()));
    }
    // 2026-12-03T18:25:00Z → 20261203T182500Z: sortable, no colons.
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    Ok(parent.join(stamp))
}

/// The settings of a synthetic suite: the user's, with the suite's sizes
/// and epoch caps unless the user set them.
fn suite_settings(args: &Args, d: &SuiteDefaults) -> Result<Settings> {
    let mut settings = conceptlab_cli::settings::load(None, &args.overrides)?;
    if let Some(n) = d.n_pcs
        && !args
            .overrides
            .iter()
            .any(|o| o.starts_with("preprocess.n_pcs"))
    {
        settings.preprocess.n_pcs = Some(n);
    }
    if let Some(cap) = args.max_epochs.or(d.max_epochs) {
        settings.train.max_epochs = settings.train.max_epochs.min(cap);
        settings.flow.train.max_epochs = settings.flow.train.max_epochs.min(cap);
    }
    Ok(settings)
}

fn synthetic(args: &Args, d: &SuiteDefaults, store: &DirStore) -> Result<Vec<RunRecord>> {
    let settings = suite_settings(args, d)?;
    let names = if args.models.is_empty() {
        d.models.clone()
    } else {
        args.models.clone()
    };
    let mut models: Vec<BenchModel> = Vec::new();
    for n in &names {
        let m = BenchModel::named(n)?;
        if !models.contains(&m) {
            models.push(m);
        }
    }
    let seeds = if args.seeds.is_empty() {
        d.seeds.clone()
    } else {
        args.seeds.clone()
    };
    let (cells, genes) = (args.cells.or(d.cells), args.genes.or(d.genes));
    let base = settings.benchmark_setup();
    let flow = settings.benchmark_flow(Solver::Rk4, args.steps, false);
    let cap = args.max_epochs.or(d.max_epochs);
    let baseline = |m: &BenchModel| match m.role {
        Role::Baseline(kind) => {
            let mut train = kind.default_train();
            if let Some(cap) = cap {
                train.max_epochs = train.max_epochs.min(cap);
            }
            Some((settings.model.config(kind), train))
        }
        _ => None,
    };
    let preprocess = settings.benchmark_preprocessing();
    let mut plan: Vec<(RunSpec, SuiteKey, usize)> = Vec::new();
    let mut n_combinations = 0;
    for preset in d.presets {
        // The split holds out exactly this many (or refuses the data).
        let held_out = conceptlab_synth::SynthConfig::preset(preset)?
            .benchmark
            .n_hold_out;
        let combinations: Vec<usize> = if args.combinations.is_empty() {
            (0..held_out).collect()
        } else {
            args.combinations.clone()
        };
        n_combinations = n_combinations.max(combinations.len());
        for &seed in &seeds {
            for &c in &combinations {
                for (k, m) in models.iter().enumerate() {
                    let key = SuiteKey {
                        preset: preset.to_string(),
                        cells,
                        genes,
                        seed: args.data_seed,
                    };
                    let (model_config, train) = match m.role {
                        Role::Baseline(_) => {
                            let (c, t) = baseline(m).context("baseline configuration")?;
                            (json!(c), json!(t))
                        }
                        Role::BuiltIn => (json!(null), json!(null)),
                        Role::Bottleneck | Role::Flow => (json!(base.model), json!(base.train)),
                    };
                    let config = json!({
                        "data": key,
                        "preprocess": preprocess,
                        "cell_type_concepts": base.cell_type_concepts,
                        "model": model_config,
                        "train": train,
                        "flow": (m.role == Role::Flow).then(|| flow_json(&flow)),
                    });
                    let spec = RunSpec {
                        suite: d.name.to_string(),
                        dataset: preset.to_string(),
                        combination: c,
                        model: m.name.clone(),
                        seed,
                        config,
                    };
                    plan.push((spec, key, k));
                }
            }
        }
    }
    let specs: Vec<RunSpec> = plan.iter().map(|p| p.0.clone()).collect();
    let to_run = plan
        .iter()
        .filter(|(s, _, _)| runner::finished(store, s).is_none())
        .map(|(_, key, _)| key.clone());
    let cache = SuiteCache::new(preprocess.clone(), to_run);
    eprintln!(
        "{} suite: {} runs ({} data sets × {} seeds × {} combinations × {} models), {} at a time",
        d.name,
        specs.len(),
        d.presets.len(),
        seeds.len(),
        n_combinations,
        models.len(),
        args.jobs
    );
    let started = Instant::now();
    let one = |spec: &RunSpec| {
        let i = specs.iter().position(|s| s == spec).unwrap_or(0);
        let (_, key, k) = &plan[i];
        let m = &models[*k];
        let suite = cache.get(key)?;
        if spec.combination >= suite.interventions.len() {
            return Err(conceptlab_bench::BenchError::Protocol(format!(
                "held-out combination {} does not exist: {} has {}",
                spec.combination,
                key.preset,
                suite.interventions.len()
            )));
        }
        let setup = benchmark::setup_for(m, &base, &flow, baseline(m), spec)?;
        let record = benchmark::synthetic_run(&suite, spec, m, &setup);
        cache.release(key);
        record
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let records = runner::execute(&specs, args.jobs, store, one, |spec, event, record| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let what = match event {
            Event::Skipped => "recorded before".to_string(),
            Event::Ran => format!("{:.1} s", record.seconds),
        };
        let scores: Vec<String> = record
            .scores
            .iter()
            .map(|s| format!("{} {:.5}", s.method, s.mse))
            .collect();
        eprintln!(
            "[{n}/{}] {} {} seed {} {}: {} ({what}, {:.0} s in all)",
            specs.len(),
            spec.dataset,
            record.held_out,
            spec.seed,
            spec.model,
            scores.join(", "),
            started.elapsed().as_secs_f64()
        );
        for f in &record.failures {
            eprintln!("  {} could not run: {}", f.method, f.error);
        }
    })?;
    Ok(records)
}

fn flow_json(flow: &FlowSetup) -> serde_json::Value {
    json!({
        "concepts": flow.concepts,
        "network": flow.config,
        "train": flow.train,
        "solver": flow.solver,
        "steps": flow.steps,
    })
}

/// The pbmc68k suite: one run per (held-out cell type, seed), each scoring
/// the suite's fixed method set (`conceptlab_bench::pbmc::run`).
fn pbmc_suite(args: &Args, store: &DirStore) -> Result<Vec<RunRecord>> {
    let relative = "data/pbmc68k_reduced.h5ad";
    let path = root().join(relative);
    if !path.is_file() {
        println!("pbmc suite skipped: {relative} is absent");
        return Ok(Vec::new());
    }
    if !args.models.is_empty() {
        eprintln!(
            "pbmc suite: --models does not apply (its runs score the suite's own methods: copy, mean shift, the oracle, scCBGM, CBM-FM)"
        );
    }
    let data = crate::pbmc_suite::counts_data(&path.to_string_lossy())?;
    let types = ["CD14+ Monocyte", "CD19+ B", "CD56+ NK"];
    let seeds = if args.seeds.is_empty() {
        vec![0, 1, 2]
    } else {
        args.seeds.clone()
    };
    let combinations: Vec<usize> = if args.combinations.is_empty() {
        (0..types.len()).collect()
    } else {
        args.combinations.clone()
    };
    let config_of = |seed: u64| {
        let mut config = RunConfig::defaults(seed);
        if let Some(cap) = args.max_epochs {
            config.train.max_epochs = config.train.max_epochs.min(cap);
            if let Some(f) = config.flow.as_mut() {
                f.train.max_epochs = f.train.max_epochs.min(cap);
            }
        }
        config
    };
    let mut specs = Vec::new();
    for &seed in &seeds {
        for &c in &combinations {
            let Some(name) = types.get(c) else {
                bail!(
                    "pbmc: held-out cell type {c} does not exist (0..{})",
                    types.len()
                );
            };
            let config = config_of(seed);
            specs.push(RunSpec {
                suite: "pbmc".into(),
                dataset: "pbmc68k_reduced".into(),
                combination: c,
                model: "pbmc-suite".into(),
                seed,
                config: json!({
                    "data": relative,
                    "held_out": name,
                    "injection": InjectionConfig::default(),
                    "preprocess": config.preprocess,
                    "model": config.model,
                    "train": config.train,
                    "flow": config.flow.as_ref().map(|f| json!({
                        "network": f.config, "train": f.train, "solver": f.solver, "steps": f.steps
                    })),
                }),
            });
        }
    }
    eprintln!("pbmc suite: {} runs, {} at a time", specs.len(), args.jobs);
    let one = |spec: &RunSpec| -> Result<RunRecord, conceptlab_bench::BenchError> {
        let started = Instant::now();
        let suite = PbmcSuite::new(&data, "bulk_labels", &InjectionConfig::default(), spec.seed)?;
        let t = suite.type_index(types[spec.combination])?;
        let out = pbmc::run(&suite, t, &config_of(spec.seed))?;
        Ok(RunRecord {
            spec: spec.clone(),
            version: runner::VERSION.into(),
            held_out: out.cell_type.clone(),
            scores: out.methods.clone(),
            metrics: Vec::new(),
            top_genes: None,
            failures: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
            timings: Vec::new(),
            details: serde_json::to_value(&out)
                .map_err(|e| conceptlab_bench::BenchError::Store(e.to_string()))?,
        })
    };
    let records = runner::execute(&specs, args.jobs, store, one, |spec, event, record| {
        eprintln!(
            "pbmc {} seed {}: {:?}, {:.0} s",
            record.held_out, spec.seed, event, record.seconds
        );
    })?;
    Ok(records)
}

/// The real-data files of the paper's protocol, as data/README.md names them.
const REAL_FILES: &[(&str, &str)] = &[
    (
        "kang",
        "data/real/kang_scimilarity_v4_with_concepts_processed.h5ad",
    ),
    ("cui", "data/real/lig_seurat_v2_with_raw_with_concepts.h5ad"),
    ("liver", "data/real/adata_liver.h5ad"),
];

fn real_suite() {
    for (name, relative) in REAL_FILES {
        if root().join(relative).is_file() {
            println!(
                "real suite, {name}: {relative} is present, but this benchmark does not run the real-data protocol yet (docs/results.md)"
            );
        } else {
            println!("real suite, {name}: skipped, {relative} is absent");
        }
    }
}

/// Writes the CSV, the Markdown and the figures; returns the Markdown.
fn report(records: &[RunRecord], rows: &[Aggregate], out: &Path, seconds: f64) -> Result<String> {
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        conceptlab_fs::write_atomic(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write("results.csv", aggregate::to_csv(rows).as_bytes())?;
    let mut md = aggregate::to_markdown(rows, "mse");
    md.push_str(&format!(
        "Cell-level MSE to the exact counterfactual twins (PC space); {} runs, {:.0} s.\n",
        records.len(),
        seconds
    ));
    write("results.md", md.as_bytes())?;
    let mut datasets: Vec<&str> = Vec::new();
    for r in records {
        if !datasets.contains(&r.spec.dataset.as_str()) {
            datasets.push(&r.spec.dataset);
        }
    }
    for dataset in datasets {
        let fig = plots::error_bars(rows, dataset, "mse")?;
        write(&format!("error-bars-{dataset}.svg"), fig.svg.as_bytes())?;
        write(&format!("error-bars-{dataset}.png"), &fig.png)?;
        let mut methods: Vec<String> = Vec::new();
        for r in records.iter().filter(|r| r.spec.dataset == dataset) {
            for s in &r.scores {
                if !methods.contains(&s.method) {
                    methods.push(s.method.clone());
                }
            }
        }
        match plots::expression_scatter(records, dataset, &methods) {
            Ok(fig) => {
                write(&format!("top-genes-{dataset}.svg"), fig.svg.as_bytes())?;
                write(&format!("top-genes-{dataset}.png"), &fig.png)?;
            }
            // The pbmc runs record no gene means.
            Err(e) => eprintln!("{e}"),
        }
    }
    Ok(md)
}
