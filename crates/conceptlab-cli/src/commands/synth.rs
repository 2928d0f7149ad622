use std::path::Path;

use anyhow::{Context, Result};
use conceptlab_synth::{
    CountStorage, SynthConfig, benchmark_split, generate, to_cell_data_as, twins_cell_data_as,
};

use crate::cli::SynthArgs;
use crate::commands::outputs::{claim_file, distinct};
use crate::exit::user_error;
use crate::settings::Settings;

fn load_config(args: &SynthArgs) -> Result<SynthConfig> {
    let mut config = if SynthConfig::preset_names().contains(&args.preset.as_str()) {
        SynthConfig::preset(&args.preset)?
    } else if Path::new(&args.preset).is_file() {
        let text = std::fs::read_to_string(&args.preset)
            .with_context(|| format!("cannot read {}", args.preset))?;
        SynthConfig::from_toml(&text).map_err(|e| user_error!("{}: {e}", args.preset))?
    } else {
        return Err(user_error!(
            "--preset `{}` is neither a built-in preset ({}) nor a TOML file",
            args.preset,
            SynthConfig::preset_names().join(", ")
        ));
    };
    if let Some(n) = args.cells {
        config.n_obs = n;
    }
    if let Some(g) = args.genes {
        config.n_vars = g;
    }
    if let Some(c) = args.concepts {
        config.n_concepts = c;
    }
    if let Some(k) = args.hold_out {
        config.benchmark.n_hold_out = k;
    }
    config.validate().map_err(|e| user_error!("{e}"))?;
    Ok(config)
}

pub fn run(args: &SynthArgs, settings: &Settings) -> Result<()> {
    let config = load_config(args)?;
    // A preset given as a file is an input like any other.
    let inputs = [Path::new(&args.preset)];
    if let Some(twins) = &args.counterfactuals {
        distinct(&args.output, twins, "--counterfactuals")?;
    }
    let _locks = std::iter::once(&args.output)
        .chain(&args.counterfactuals)
        .map(|out| claim_file(out, args.force, &inputs))
        .collect::<Result<Vec<_>>>()?;
    let start = std::time::Instant::now();
    let data = generate(&config, settings.seed)?;
    let interventions = benchmark_split(&data).map_err(|e| user_error!("{e}"))?;
    tracing::info!(
        cells = config.n_obs,
        genes = config.n_vars,
        concepts = config.n_concepts,
        seed = settings.seed,
        seconds = format!("{:.2}", start.elapsed().as_secs_f64()),
        "generated"
    );
    for (k, iv) in interventions.iter().enumerate() {
        tracing::info!(
            intervention = k,
            cell_type = format!("celltype_{}", iv.celltype),
            concept = format!("concept_{}", iv.concept),
            modify = iv.modify.len(),
            "held out"
        );
    }
    let options = settings.io.write_options();
    let storage = CountStorage {
        sparse: !args.dense,
        counts_layer: args.counts_layer,
    };
    conceptlab_io::write_h5ad(
        &to_cell_data_as(&data, &interventions, storage)?,
        &args.output,
        &options,
    )?;
    if let Some(path) = &args.counterfactuals {
        conceptlab_io::write_h5ad(
            &twins_cell_data_as(&data, &interventions, storage)?,
            path,
            &options,
        )?;
    }
    Ok(())
}
