//! `cargo xtask bench-train`: scCBGM training throughput (cells/s) for the
//! reference's real-data configuration (128 PCs in, hidden 1024, 4 layers,
//! latent 128, batch 128) and its synthetic one (hidden 128, 2 layers,
//! latent 64, batch 512), on 1 and 2 threads, next to the same model in
//! PyTorch on CPU (`scripts/python/bench_sccbgm_torch.py`) measured in the
//! same run; and each neural baseline (`kind:NAME`: the registry's default
//! configuration, trained through the registry) next to its reference network
//! in PyTorch (`scripts/python/bench_baselines_torch.py`). Each measurement
//! runs in a fresh child process. Writes `results/bench-train.json`.
//!
//! `--device cuda` (a build with `--features cuda`) trains on the GPU and
//! runs PyTorch on the same GPU; `--batches` repeats each scCBGM
//! configuration at other batch sizes, `--out` names the results file
//! (`scripts/gpu-check.sh` writes `results/bench-train-gpu.json`).

use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use conceptlab_core::random::{standard_normal, stream_rng};
use conceptlab_models::flow::{FlowConfig, FlowMatcher, FlowMode, Sampling};
use conceptlab_models::{ConceptData, Dims, ScCbgm, ScCbgmConfig, TrainConfig};
use conceptlab_nn::ode::Solver;
use conceptlab_nn::{Device, DeviceSpec};
use ndarray::Array2;
use rand::Rng as _;
use serde_json::json;

use crate::proc::run_json;

#[derive(clap::Args)]
pub struct Args {
    /// Timed optimiser steps per measurement.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Untimed steps before.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Python with torch installed (see scripts/python/README.md); `none` skips PyTorch.
    #[arg(long, default_value = "/work/venv-torch/bin/python")]
    python: String,
    /// Which measurements: scCBGM `real` and `synthetic` training, CBM-FM
    /// `flow` training and `flow-edit`, and `kind:NAME` for the registry's
    /// default configuration of model NAME (the neural baselines: `kind:cbgm`,
    /// `kind:sccvae`, `kind:scgen`, `kind:trvae`, `kind:conceptflow`,
    /// `kind:raw-fm`). Rows of others already in the results file are kept.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "real,synthetic,flow,flow-edit"
    )]
    configs: Vec<String>,
    /// Device of both sides: `cpu`, or `cuda[:N]` (needs `--features cuda`;
    /// PyTorch then runs on the same GPU).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads of each measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Batch sizes of the scCBGM configurations (`real`, `synthetic`); empty
    /// keeps each configuration's own (128, 512). Other measurements keep theirs.
    #[arg(long, value_delimiter = ',')]
    batches: Vec<usize>,
    /// Results file, relative to the repository root.
    /// Thread policies to compare: `current` (conceptlab_nn::parallel's
    /// thresholds) and `split-all` (gemm's default threshold and row-wise
    /// ops split down to single rows: the behaviour before the thresholds).
    #[arg(long, value_delimiter = ',', default_value = "current")]
    policies: Vec<String>,
    /// Measurements per (configuration, threads, policy); the median is kept.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    #[arg(long, default_value = "results/bench-train.json")]
    out: String,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// `current` or `split-all` (see `bench-train --policies`).
    #[arg(long, default_value = "current")]
    policy: String,
    #[arg(long)]
    config: String,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    steps: usize,
    #[arg(long)]
    warmup: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Overrides the scCBGM configuration's batch size (0 keeps it).
    #[arg(long, default_value_t = 0)]
    batch: usize,
}

impl RunArgs {
    fn device(&self) -> Result<Device> {
        Ok(self.device.parse::<DeviceSpec>()?.resolve()?)
    }
}

/// (model, concepts, batch size, learning rate) of a named configuration.
fn configuration(name: &str) -> Result<(ScCbgmConfig, usize, usize, f64)> {
    Ok(match name {
        "real" => (ScCbgmConfig::reference_real_data(), 10, 128, 3e-4),
        "synthetic" => (ScCbgmConfig::reference_synthetic(), 5, 512, 5e-4),
        other => anyhow::bail!("unknown configuration {other}"),
    })
}

/// Random N(0,1) features and 0/1 concepts, as the PyTorch script uses.
fn random_data(cells: usize, features: usize, concepts: usize) -> Result<ConceptData> {
    let mut rng = stream_rng(0, 0);
    let x = Array2::from_shape_fn((cells, features), |_| standard_normal(&mut rng) as f32);
    let c = Array2::from_shape_fn((cells, concepts), |_| {
        if rng.random::<bool>() { 1.0 } else { 0.0 }
    });
    let observed = Array2::ones((cells, concepts));
    Ok(ConceptData::new(x, c, observed, concepts)?)
}

/// Batch sizes of the neural baselines in the reference's configurations
/// (`kind:NAME` measurements train the registry's default configuration of
/// NAME at this batch size).
const BASELINE_BATCH: &[(&str, usize)] = &[
    ("cbgm", 128),
    ("sccvae", 128),
    ("scgen", 128),
    ("trvae", 512),
    ("conceptflow", 128),
    ("raw-fm", 128),
];

/// The registry's default configuration of `name`, trained for `steps`
/// batches through the registry (the path `fit --model-type` takes), on
/// random data with 128 features and 10 hard concepts.
fn run_kind(name: &str, args: &RunArgs) -> Result<()> {
    let device = args.device()?;
    let entry = conceptlab_models::registry::lookup(name)?;
    let config = conceptlab_models::ModelSettings::default().config(entry.kind);
    let batch = BASELINE_BATCH
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(128, |(_, b)| *b);
    let train = TrainConfig {
        batch_size: batch,
        max_epochs: 1,
        validation_fraction: 0.0,
        min_steps_per_epoch: 1,
        ..TrainConfig::default()
    };
    let fit = |data: &ConceptData, seed: u64| {
        conceptlab_models::registry::fit(&config, data, &train, seed, &device, &mut |_| {})
    };
    fit(&random_data(batch * args.warmup.max(1), 128, 10)?, 0)?;
    let data = random_data(batch * args.steps, 128, 10)?;
    let start = Instant::now();
    let fitted = fit(&data, 1)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"tool": "conceptlab", "config": args.config, "threads": args.threads, "device": args.device,
               "n_params": fitted.model.n_parameters(), "batch": batch, "steps": args.steps,
               "seconds": seconds, "cells_per_s": (batch * args.steps) as f64 / seconds})
    );
    Ok(())
}

/// Cells edited in the flow-edit measurement, and Euler steps each way.
const EDIT_CELLS: usize = 2048;
const EDIT_STEPS: usize = 20;
/// The reference CBM-FM condition: K = 10 concepts + U = 128 unknown.
const FLOW_C_DIM: usize = 138;

/// The reference's CBM-FM velocity network (E 1024, L 4) on 128 PCs:
/// training steps at batch 128, or a 20-step Euler edit of 2,048 cells.
fn run_flow(args: &RunArgs) -> Result<()> {
    let mut rng = stream_rng(0, 0);
    let mut normal = |rows: usize, cols: usize| {
        Array2::from_shape_fn((rows, cols), |_| standard_normal(&mut rng) as f32)
    };
    let device = args.device()?;
    let mut flow = FlowMatcher::new(FlowConfig::reference(), 128, FLOW_C_DIM, 0, &device)?;
    let batch = 128;
    let (cells, seconds) = if args.config == "flow-edit" {
        let (x, c) = (normal(EDIT_CELLS, 128), normal(EDIT_CELLS, FLOW_C_DIM));
        let mut c_new = c.clone();
        c_new.column_mut(0).mapv_inplace(|v| 1.0 - v);
        let sampling = Sampling {
            mode: FlowMode::Edit { t_edit: 0.0 },
            solver: Solver::Euler,
            steps: EDIT_STEPS,
            seed: 0,
        };
        let warm = Sampling {
            steps: 1,
            ..sampling
        };
        flow.counterfactual(x.view(), c.view(), c_new.view(), &warm)?;
        let start = Instant::now();
        flow.counterfactual(x.view(), c.view(), c_new.view(), &sampling)?;
        (EDIT_CELLS, start.elapsed().as_secs_f64())
    } else {
        let train = TrainConfig {
            lr: 3e-4,
            batch_size: batch,
            max_epochs: 1,
            validation_fraction: 0.0,
            min_steps_per_epoch: 1,
            ..TrainConfig::default()
        };
        let n_warm = batch * args.warmup.max(1);
        flow.fit(
            &normal(n_warm, 128),
            &normal(n_warm, FLOW_C_DIM),
            &train,
            0,
            &mut |_| {},
        )?;
        let n = batch * args.steps;
        let (x, c) = (normal(n, 128), normal(n, FLOW_C_DIM));
        let start = Instant::now();
        flow.fit(&x, &c, &train, 1, &mut |_| {})?;
        (n, start.elapsed().as_secs_f64())
    };
    println!(
        "{}",
        json!({"tool": "conceptlab", "config": args.config, "threads": args.threads, "device": args.device,
               "n_params": flow.n_parameters(), "batch": batch, "steps": args.steps,
               "seconds": seconds, "cells_per_s": cells as f64 / seconds})
    );
    Ok(())
}

pub fn run_one(args: &RunArgs) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    conceptlab_nn::parallel::configure();
    match args.policy.as_str() {
        "current" => {}
        "split-all" => {
            conceptlab_nn::parallel::set_min_parallel_product(48 * 48 * 256);
            conceptlab_nn::parallel::set_min_elements_per_task(1);
        }
        other => anyhow::bail!("unknown policy {other} (current, split-all)"),
    }
    if args.config.starts_with("flow") {
        return run_flow(args);
    }
    if let Some(name) = args.config.strip_prefix("kind:") {
        return run_kind(name, args);
    }
    let (config, k, default_batch, lr) = configuration(&args.config)?;
    let batch = if args.batch > 0 {
        args.batch
    } else {
        default_batch
    };
    let dims = Dims {
        input_dim: 128,
        n_hard: k,
        n_soft: 0,
    };
    let mut model = ScCbgm::new(config, dims, 0, &args.device()?)?;
    // One epoch over `steps × batch` cells is exactly `steps` full batches.
    let train = TrainConfig {
        lr,
        batch_size: batch,
        max_epochs: 1,
        validation_fraction: 0.0,
        min_steps_per_epoch: 1,
        ..TrainConfig::default()
    };
    let warm = random_data(batch * args.warmup.max(1), 128, k)?;
    model.fit(&warm, &train, 0, &mut |_| {})?;
    let data = random_data(batch * args.steps, 128, k)?;
    let start = Instant::now();
    model.fit(&data, &train, 1, &mut |_| {})?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"tool": "conceptlab", "config": args.config, "threads": args.threads, "device": args.device,
               "n_params": model.n_parameters(), "batch": batch, "steps": args.steps,
               "seconds": seconds, "cells_per_s": (batch * args.steps) as f64 / seconds})
    );
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let exe = std::env::current_exe()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut rows = Vec::new();
    let device = args.device.parse::<DeviceSpec>()?;
    let torch_device = match device {
        DeviceSpec::Cpu => "cpu".to_string(),
        DeviceSpec::Cuda(n) => format!("cuda:{n}"),
        DeviceSpec::Auto => {
            anyhow::bail!("--device auto: name the device measured (cpu or cuda:N)")
        }
    };
    if device != DeviceSpec::Cpu && args.configs.iter().any(|c| c.starts_with("kind:")) {
        // Its PyTorch side (bench_baselines_torch.py) runs on the CPU only.
        anyhow::bail!("kind:NAME measurements run on the CPU only (--device cpu)");
    }
    let sccbgm = |c: &str| c == "real" || c == "synthetic";
    let mut plan: Vec<(&str, usize)> = Vec::new();
    for config in args.configs.iter().map(String::as_str) {
        if sccbgm(config) && !args.batches.is_empty() {
            plan.extend(args.batches.iter().map(|&b| (config, b)));
        } else {
            plan.push((config, 0));
        }
    }
    for (config, batch) in plan {
        for (threads, policy) in args
            .threads
            .iter()
            .copied()
            .flat_map(|t| args.policies.iter().map(move |p| (t, p.as_str())))
        {
            let mut measured = Vec::new();
            for _ in 0..args.repeats.max(1) {
                measured.push(run_json(
                    Command::new(&exe)
                        // candle sizes its own element-wise worker pool from these.
                        .env("RAYON_NUM_THREADS", threads.to_string())
                        .env("CANDLE_NUM_THREADS", threads.to_string())
                        .args(["bench-train-run", "--config", config])
                        .args(["--threads", &threads.to_string()])
                        .args(["--device", &device.to_string()])
                        .args(["--batch", &batch.to_string()])
                        .args(["--policy", policy])
                        .args([
                            "--steps",
                            &args.steps.to_string(),
                            "--warmup",
                            &args.warmup.to_string(),
                        ]),
                )?);
            }
            let all: Vec<f64> = measured
                .iter()
                .filter_map(|m| m["cells_per_s"].as_f64())
                .collect();
            measured.sort_by(|a, b| {
                a["cells_per_s"]
                    .as_f64()
                    .partial_cmp(&b["cells_per_s"].as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let mut ours = measured[measured.len() / 2].clone();
            ours["policy"] = json!(policy);
            ours["cells_per_s_all"] = json!(all);
            let torch = if args.python == "none" {
                serde_json::Value::Null
            } else {
                let mut cmd = Command::new(&args.python);
                if let Some(name) = config.strip_prefix("kind:") {
                    cmd.arg(root.join("scripts/python/bench_baselines_torch.py"))
                        .args(["--model", name]);
                } else {
                    cmd.arg(root.join("scripts/python/bench_sccbgm_torch.py"));
                }
                match config {
                    c if c.starts_with("kind:") => &mut cmd,
                    "flow" => cmd.args(["--model", "flow"]),
                    "flow-edit" => cmd.args(["--model", "flow", "--edit"]).args([
                        "--edit-cells",
                        &EDIT_CELLS.to_string(),
                        "--edit-steps",
                        &EDIT_STEPS.to_string(),
                    ]),
                    _ => cmd
                        .args(["--model", "sccbgm", "--config", config])
                        .args(["--batch", &batch.to_string()]),
                };
                if !config.starts_with("kind:") {
                    cmd.args(["--device", &torch_device]);
                }
                run_json(
                    cmd.arg("--json")
                        .args(["--threads", &threads.to_string()])
                        .args([
                            "--steps",
                            &args.steps.to_string(),
                            "--warmup",
                            &args.warmup.to_string(),
                        ]),
                )?
            };
            let a = ours["cells_per_s"].as_f64().unwrap_or(f64::NAN);
            let b = torch["cells_per_s"].as_f64().unwrap_or(f64::NAN);
            let batch = ours["batch"].as_u64().unwrap_or_default();
            println!(
                "{config:<10} batch {batch:>5} {device} {threads} thread(s) {policy:<9}: conceptlab {a:>8.0} cells/s   PyTorch {b:>8.0} cells/s   ratio {:.2}",
                a / b
            );
            rows.push(
                json!({"config": config, "batch": batch, "device": device.to_string(), "threads": threads,
                       "policy": policy, "conceptlab": ours, "pytorch": torch}),
            );
        }
    }
    let out = root.join(&args.out);
    // Keep earlier rows of configurations not measured now.
    if let Ok(previous) = std::fs::read_to_string(&out) {
        let previous: serde_json::Value = serde_json::from_str(&previous)?;
        let kept = previous["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                // Rows written before the device was recorded ran on the CPU.
                let same_device = r["device"].as_str().unwrap_or("cpu") == device.to_string();
                !(same_device
                    && args
                        .configs
                        .iter()
                        .any(|c| r["config"].as_str() == Some(c.as_str())))
            });
        rows.splice(0..0, kept.cloned().collect::<Vec<_>>());
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(
            &json!({"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                    "load_avg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
                    "runs": rows}),
        )?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
