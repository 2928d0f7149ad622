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

/// Refuses to write over an input (whatever path spells it) or into an
/// input directory (a model's files), and, without `--force`, over any
/// existing file.
pub fn guard_output(output: &Path, force: bool, inputs: &[&Path]) -> Result<()> {
    let target = resolved(output);
    for input in inputs {
        let Ok(input) = input.canonicalize() else {
            continue;
        };
        if target.as_ref() == Some(&input) {
            return Err(user_error!(
                "{}: refusing to overwrite the input file; choose another output path",
                output.display()
            ));
        }
        if input.is_dir() && target.as_ref().is_some_and(|t| t.starts_with(&input)) {
            return Err(user_error!(
                "{}: refusing to write into the input directory {}; choose another output path",
                output.display(),
                input.display()
            ));
        }
    }
    if output.exists() && !force {
        return Err(user_error!(
            "{}: already exists (pass --force to replace it)",
            output.display()
        ));
    }
    Ok(())
}

/// The absolute path `path` names, also when it does not exist yet (its
/// directory resolved, the file name appended).
fn resolved(path: &Path) -> Option<std::path::PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(parent.canonicalize().ok()?.join(name))
}
