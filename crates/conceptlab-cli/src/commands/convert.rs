use std::path::Path;

use anyhow::Result;

use crate::cli::ConvertArgs;
use crate::exit::user_error;
use crate::settings::Settings;

pub fn run(args: &ConvertArgs, settings: &Settings) -> Result<()> {
    guard_output(&args.output, args.force, &[&args.input])?;
    let data = conceptlab_io::read_h5ad(&args.input)?;
    let mut io = settings.io.clone();
    if let Some(c) = args.compression {
        io.compression = c;
    }
    conceptlab_io::write_h5ad(&data, &args.output, &io.write_options())?;
    tracing::info!(
        input = %args.input.display(),
        output = %args.output.display(),
        n_obs = data.n_obs(),
        n_vars = data.n_vars(),
        "converted"
    );
    Ok(())
}

/// Refuses to write over an input (whatever path spells it) or, without
/// `--force`, over any existing file.
pub fn guard_output(output: &Path, force: bool, inputs: &[&Path]) -> Result<()> {
    if !output.exists() {
        return Ok(());
    }
    let target = output.canonicalize().ok();
    if inputs
        .iter()
        .any(|input| input.canonicalize().ok().is_some_and(|p| Some(p) == target))
    {
        return Err(user_error!(
            "{}: refusing to overwrite the input file; choose another output path",
            output.display()
        ));
    }
    if !force {
        return Err(user_error!(
            "{}: already exists (pass --force to replace it)",
            output.display()
        ));
    }
    Ok(())
}
