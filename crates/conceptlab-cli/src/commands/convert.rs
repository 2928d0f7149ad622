use anyhow::Result;

use super::outputs::claim_file;
use crate::cli::ConvertArgs;
use crate::settings::Settings;

pub fn run(args: &ConvertArgs, settings: &Settings) -> Result<()> {
    let _lock = claim_file(&args.output, args.force, &[&args.input])?;
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
