//! `conceptlab-cli edit`: counterfactual cells. The work is
//! `conceptlab_models::edit`; this parses the request, reads and writes
//! the files.

use anyhow::Result;
use conceptlab_io::{read_h5ad, write_h5ad};
use conceptlab_models::Residual;
use conceptlab_models::checkpoint;
use conceptlab_models::edit::{self, EditSpec, Stage};
use conceptlab_models::flow::{FlowMode, Sampling};

use super::convert::guard_output;
use super::data_error;
use crate::cli::{EditArgs, EditGenerator, FlowModeArg, ResidualArg};
use crate::exit::user_error;
use crate::settings::Settings;

/// `column=value` pairs from repeated and comma-separated arguments.
fn assignments(raw: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    raw.iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    user_error!("{flag} `{item}`: expected COLUMN=VALUE, e.g. stim=stimulated")
                })
        })
        .collect()
}

pub fn run(args: &EditArgs, settings: &Settings) -> Result<()> {
    guard_output(
        &args.output,
        args.force,
        &[args.data.as_path(), args.model.as_path()],
    )?;
    let set = assignments(&args.set, "--set")?;
    if set.is_empty() {
        return Err(user_error!("say what to change with --set COLUMN=VALUE"));
    }
    let spec = EditSpec {
        set,
        filter: assignments(&args.r#where, "--where")?,
        residual: match args.residual {
            ResidualArg::Keep => Residual::Keep,
            ResidualArg::Discard => Residual::Discard,
        },
        stage: match args.generator {
            None | Some(EditGenerator::ScCbgm) => Stage::Model,
            Some(EditGenerator::Fm) => Stage::Flow,
        },
        sampling: Sampling {
            mode: match args.mode {
                FlowModeArg::Edit => FlowMode::Edit {
                    t_edit: args.t_edit,
                },
                FlowModeArg::Decode => FlowMode::Decode,
            },
            solver: args.ode.solver(),
            steps: args.ode.steps,
            seed: settings.seed,
        },
        model_label: args.model.display().to_string(),
    };
    let loaded = checkpoint::load(&args.model)?;
    if args.generator == Some(EditGenerator::ScCbgm) && !loaded.model.kind().is_bottleneck() {
        return Err(user_error!(
            "{}: --generator sccbgm needs an scCBGM; this is a {} model (leave --generator out)",
            args.model.display(),
            loaded.model.kind().name()
        ));
    }
    // Validate the requested edit before reading a possibly large file.
    let plan = edit::plan(&loaded.meta, &spec)
        .map_err(|e| user_error!("{}: {e}", args.model.display()))?;
    let data = read_h5ad(&args.data)?;
    let edited = edit::edit(&loaded, &data, &plan).map_err(data_error(&args.data))?;
    for warning in &edited.warnings {
        tracing::warn!("{}: {warning}", args.data.display());
    }
    if let Some(evaluations) = edited.evaluations {
        tracing::debug!(evaluations, "flow counterfactuals");
    }
    write_h5ad(&edited.cells, &args.output, &settings.io.write_options())?;
    tracing::info!(
        edited = edited.n_edited,
        cells = edited.cells.n_obs(),
        genes = edited.cells.n_vars(),
        "wrote counterfactual cells to {}",
        args.output.display()
    );
    Ok(())
}
