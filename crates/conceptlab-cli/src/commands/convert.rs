use anyhow::Result;

use crate::cli::ConvertArgs;
use crate::exit::user_error;
use crate::settings::Settings;

pub fn run(args: &ConvertArgs, settings: &Settings) -> Result<()> {
    guard_output(&args.input, &args.output, args.force)?;
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

/// Refuses to write over the input (whatever path spells it) or, without
/// `--force`, over any existing file.
pub fn guard_output(input: &std::path::Path, output: &std::path::Path, force: bool) -> Result<()> {
    if output.exists() {
        let same = match (input.canonicalize(), output.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
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
    }
    Ok(())
}
