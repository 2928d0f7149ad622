//! `cargo xtask pbmc-suite`: the pbmc68k semi-synthetic suite
//! (`conceptlab_bench::pbmc`) over seeds and held-out cell types. Reads
//! `data/pbmc68k_reduced.h5ad`, recovers its counts from `raw.X`, and for
//! every (seed, cell type) injects the seed's stimulation program, holds out
//! the type's stimulated cells and scores every method against the exact
//! twins. Writes the runs and the mean ± SEM table to `--out`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use conceptlab_bench::pbmc::{self, InjectionConfig, PbmcOutcome, PbmcSuite, RunConfig};
use conceptlab_core::{CellData, DenseArray, Matrix, NumVec};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Seeds (each draws its own program, stimulated cells and model weights).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Held-out cell types (bulk_labels values).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "CD14+ Monocyte,CD19+ B,CD56+ NK"
    )]
    cell_types: Vec<String>,
    /// The bundled data (relative to the workspace root).
    #[arg(long, default_value = "data/pbmc68k_reduced.h5ad")]
    data: String,
    /// Where to write the results (relative to the workspace root).
    #[arg(long, default_value = "results/pbmc-suite.json")]
    out: String,
    /// Skip the candidate scCBGM settings (`pbmc::candidate_variants`).
    #[arg(long)]
    no_candidates: bool,
}

/// pbmc68k with X replaced by the counts recovered from raw.X.
pub(crate) fn counts_data(path: &str) -> Result<CellData> {
    let data = conceptlab_io::read_h5ad(path).with_context(|| format!("reading {path}"))?;
    let raw = data
        .raw
        .as_ref()
        .context("the file has no raw.X to recover counts from")?;
    let counts = pbmc::counts_from_log_normalized(&raw.x)?;
    let (n, g) = counts.dim();
    let x = Matrix::Dense(DenseArray::new(
        vec![n, g],
        NumVec::F32(counts.iter().map(|&c| c as f32).collect()),
    )?);
    let mut cells = CellData::new(x, data.obs_names().to_vec(), raw.var.index.clone())?;
    cells.obs = data.obs.clone();
    Ok(cells)
}

fn mean_sem(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

pub fn run(args: &Args) -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = counts_data(&root.join(&args.data).to_string_lossy())?;
    let started = Instant::now();
    let mut runs: Vec<PbmcOutcome> = Vec::new();
    for &seed in &args.seeds {
        let suite = PbmcSuite::new(&data, "bulk_labels", &InjectionConfig::default(), seed)?;
        for name in &args.cell_types {
            let t = suite.type_index(name)?;
            let config = RunConfig {
                variants: if args.no_candidates {
                    Vec::new()
                } else {
                    pbmc::candidate_variants()
                },
                ..RunConfig::defaults(seed)
            };
            let out = pbmc::run(&suite, t, &config)?;
            let get = |m: &str| out.score(m).map_or(f64::NAN, |s| s.mse);
            eprintln!(
                "seed {seed} {name}: copy {:.4} mean-shift {:.4} scCBGM {:.4} small {:.4} dropout-0.3 {:.4} ortho-5 {:.4} CBM-FM {:.4} ({:.0} s)",
                get("copy"),
                get("mean-shift"),
                get("sccbgm"),
                get("sccbgm-small"),
                get("sccbgm-dropout-0.3"),
                get("sccbgm-ortho-5"),
                get("cbm-fm-edit"),
                started.elapsed().as_secs_f64()
            );
            runs.push(out);
        }
    }
    // (cell type, method) → per-seed (mse, shared).
    let mut table: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for o in &runs {
        for m in &o.methods {
            table
                .entry((o.cell_type.clone(), m.method.clone()))
                .or_default()
                .push((m.mse, m.shared_mse));
        }
    }
    let rows: Vec<_> = table
        .iter()
        .map(|((cell_type, method), v)| {
            let (mse, mse_sem) = mean_sem(&v.iter().map(|p| p.0).collect::<Vec<_>>());
            let (shared, shared_sem) = mean_sem(&v.iter().map(|p| p.1).collect::<Vec<_>>());
            println!(
                "{cell_type:<16} {method:<20} {mse:.4} ± {mse_sem:.4}  shared {shared:.4} ± {shared_sem:.4}"
            );
            json!({"cell_type": cell_type, "method": method, "n_seeds": v.len(),
                   "mse": mse, "mse_sem": mse_sem, "shared_mse": shared, "shared_mse_sem": shared_sem})
        })
        .collect();
    crate::proc::write_result(
        &args.out,
        &json!({
            "seeds": args.seeds,
            "cell_types": args.cell_types,
            "injection": InjectionConfig::default(),
            "seconds": started.elapsed().as_secs_f64(),
            "table": rows,
            "runs": runs,
        }),
    )
}
