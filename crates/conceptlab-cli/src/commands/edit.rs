//! `conceptlab-cli edit`: counterfactual cells. The work is
//! `conceptlab_models::edit`; this parses the request, reads and writes
//! the files.

use anyhow::Result;
use conceptlab_io::{H5ad, H5adStream, RowFormat, read_h5ad, write_h5ad};
use conceptlab_models::Residual;
use conceptlab_models::checkpoint;
use conceptlab_models::edit::{self, EditSpec, Stage};
use conceptlab_models::flow::{FlowMode, Sampling};
use conceptlab_models::input::matrix_name;

use super::data_error;
use super::outputs::claim_file;
use crate::cli::{EditArgs, EditGenerator, FlowModeArg, ResidualArg};
use crate::exit::user_error;
use crate::progress::WorkProgress;
use crate::settings::Settings;

/// `column=value` pairs from repeated and comma-separated arguments. A
/// comma starts a new pair only when what follows it is one (`a=1,b=2`);
/// otherwise it belongs to the value, so a category such as `T, CD4`
/// can be named (`--where "cell_type=T, CD4"`). A column named twice is
/// refused: one of the two values would be silently ignored.
pub(super) fn assignments(raw: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for arg in raw {
        let mut current: Option<(String, String)> = None;
        for piece in arg.split(',') {
            match piece.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    pairs.extend(current.take());
                    current = Some((k.trim().to_string(), v.trim_start().to_string()));
                }
                _ => match current.as_mut() {
                    Some((_, value)) => {
                        value.push(',');
                        value.push_str(piece);
                    }
                    None if piece.trim().is_empty() => {}
                    None => {
                        return Err(user_error!(
                            "{flag} `{}`: expected COLUMN=VALUE, e.g. stim=stimulated",
                            piece.trim()
                        ));
                    }
                },
            }
        }
        pairs.extend(current);
    }
    for (k, v) in &mut pairs {
        *v = v.trim().to_string();
        if v.is_empty() {
            return Err(user_error!("{flag} `{k}=`: the value is empty"));
        }
    }
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(earlier, _)| earlier == k) {
            return Err(user_error!(
                "{flag}: `{k}` is given more than once; give each column one value"
            ));
        }
    }
    Ok(pairs)
}

/// Refuses flow flags where no flow runs (neither `--generator fm` nor a
/// model that is a flow, such as raw-fm), and `--t-edit` where no cell is
/// inverted: they would be ignored.
fn check_flow_flags(args: &EditArgs, model_is_flow: bool) -> Result<()> {
    let flow = args.generator == Some(EditGenerator::Fm) || model_is_flow;
    let flag = args
        .ode
        .given()
        .or(args.mode.map(|_| "--mode"))
        .or(args.t_edit.map(|_| "--t-edit"));
    if let (false, Some(flag)) = (flow, flag) {
        return Err(user_error!(
            "{flag} only applies to flow edits (--generator fm, or a flow model such as \
             raw-fm or conceptflow)"
        ));
    }
    if args.mode == Some(FlowModeArg::Decode) && args.t_edit.is_some() {
        return Err(user_error!(
            "--t-edit only applies to --mode edit (decode starts from fresh noise)"
        ));
    }
    if let Some(flag) = args.ode.tolerance_without_dopri5() {
        return Err(user_error!("{flag} only applies to --solver dopri5"));
    }
    Ok(())
}

pub fn run(args: &EditArgs, settings: &Settings) -> Result<()> {
    let _lock = claim_file(
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
            mode: match args.mode.unwrap_or(FlowModeArg::Edit) {
                FlowModeArg::Edit => FlowMode::Edit {
                    t_edit: args.t_edit.unwrap_or(0.0),
                },
                FlowModeArg::Decode => FlowMode::Decode,
            },
            solver: args.ode.solver(),
            steps: args.ode.steps(),
            seed: settings.seed,
        },
        model_label: args.model.display().to_string(),
    };
    // The flags are checked against the model's kind before its weights are read.
    let kind = checkpoint::read_meta(&args.model)?.model.kind();
    check_flow_flags(args, kind.is_flow())?;
    let loaded = checkpoint::load_on(&args.model, &super::device(settings)?)?;
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
    let h5 = H5ad::open(&args.data)?;
    let key = matrix_name(loaded.meta.data.layer.as_deref());
    let format = match h5.matrix_info(&key).map(|info| info.encoding) {
        Ok("array") => Some(RowFormat::Dense),
        Ok("csr_matrix") => Some(RowFormat::Csr),
        // CSC rows cannot be read a block at a time cheaply; a missing
        // matrix is reported by the edit, in the model's terms.
        _ => None,
    };
    let Some(format) = format else {
        let data = read_h5ad(&args.data)?;
        let mut progress = WorkProgress::new(&settings.progress, "edit", data.n_obs(), "cells");
        let edited = edit::edit(&loaded, &data, &plan).map_err(data_error(&args.data))?;
        progress.advance(data.n_obs());
        progress.finish();
        report(args, &edited);
        return Ok(write_h5ad(
            &edited.cells,
            &args.output,
            &settings.io.write_options(),
        )?);
    };
    let edited = stream_edit(args, settings, &h5, &key, format, &loaded, &plan)?;
    report(args, &edited);
    Ok(())
}

/// The edit read from `h5` and written to the output a chunk of cells at a
/// time (`--chunk-rows`): the same bytes as a whole edit.
fn stream_edit(
    args: &EditArgs,
    settings: &Settings,
    h5: &H5ad,
    key: &str,
    format: RowFormat,
    loaded: &checkpoint::Loaded,
    plan: &edit::Plan,
) -> Result<edit::Edited> {
    let head = h5.read_except(&[key])?;
    let options = settings.io.write_options();
    let chunk = usize::try_from(args.chunk_rows).unwrap_or(usize::MAX);
    let (mut read_failure, mut write_failure) = (None, None);
    let mut stream: Option<H5adStream> = None;
    // Cells count as done when their block is written (the second pass).
    let mut progress = WorkProgress::new(&settings.progress, "edit", head.n_obs(), "cells");
    // I/O errors are kept aside and reported as they are (they name the file).
    let aside = || conceptlab_models::ModelError::Input("input/output failed".into());
    let result = edit::edit_chunked(
        loaded,
        &head,
        plan,
        chunk,
        &mut |start, count| {
            h5.read_row_range(key, start, count).map_err(|e| {
                read_failure = Some(e);
                aside()
            })
        },
        &mut |block| {
            progress.advance(block.shape().0);
            let pushed = match stream.as_mut() {
                Some(s) => s.push(key, &block),
                None => {
                    // The output's element type is known from the first block.
                    let mut first = head.clone();
                    let m = edit::placeholder((first.n_obs(), block.shape().1), block.dtype())?;
                    match key.strip_prefix("layers/") {
                        Some(name) => {
                            first.layers.insert(name.to_string(), m);
                        }
                        None => first.x = m,
                    }
                    H5adStream::create(&args.output, first, &[(key, format)], &options).and_then(
                        |mut s| {
                            let pushed = s.push(key, &block);
                            stream = Some(s);
                            pushed
                        },
                    )
                }
            };
            pushed.map_err(|e| {
                write_failure = Some(e);
                aside()
            })
        },
    );
    if let Some(e) = read_failure.or(write_failure) {
        return Err(e.into());
    }
    let edited = result.map_err(data_error(&args.data))?;
    progress.finish();
    let stream = stream.ok_or_else(|| anyhow::anyhow!("the edit wrote no cells"))?;
    stream.finish_with(edited.cells.clone())?;
    Ok(edited)
}

fn report(args: &EditArgs, edited: &edit::Edited) {
    for warning in &edited.warnings {
        tracing::warn!("{}: {warning}", args.data.display());
    }
    if let Some(evaluations) = edited.evaluations {
        tracing::debug!(evaluations, "flow counterfactuals");
    }
    tracing::info!(
        edited = edited.n_edited,
        cells = edited.cells.n_obs(),
        genes = edited.cells.n_vars(),
        "wrote counterfactual cells to {}",
        args.output.display()
    );
}
