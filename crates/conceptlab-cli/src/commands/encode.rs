//! `conceptlab-cli encode`: write each cell's predicted concepts and unknown
//! code (from z = μ, deterministic) into obsm of a copy of the data.

use anyhow::Result;
use conceptlab_core::preprocess::dense_matrix;
use conceptlab_core::{CellData, UnsValue};
use conceptlab_io::{read_h5ad, write_h5ad};
use conceptlab_models::{checkpoint, input};

use super::data_error;
use super::outputs::claim_file;
use crate::cli::EncodeArgs;
use crate::exit::user_error;
use crate::settings::Settings;

pub fn run(args: &EncodeArgs, settings: &Settings) -> Result<()> {
    let _lock = claim_file(
        &args.output,
        args.force,
        &[args.data.as_path(), args.model.as_path()],
    )?;
    let loaded = checkpoint::load_on(&args.model, &super::device(settings)?)?;
    let Some(model) = loaded.model.as_concept_model() else {
        return Err(user_error!(
            "{}: a {} model has no concept bottleneck to encode with",
            args.model.display(),
            loaded.model.kind().name()
        ));
    };
    let mut data: CellData = read_h5ad(&args.data)?;
    let features = input::features(&loaded.meta, &data).map_err(data_error(&args.data))?;
    let encoding = model.encode(features.view())?;
    // Nothing non-finite is written.
    for (name, codes) in [("concept", &encoding.known), ("unknown", &encoding.unknown)] {
        if let Some((i, j)) = conceptlab_models::first_non_finite(codes.view()) {
            return Err(anyhow::anyhow!(
                "{}: the model produced a non-finite {name} code (cell {i}, unit {j}); nothing was written",
                args.model.display()
            ));
        }
    }
    let key = &args.key;
    data.obsm.insert(
        format!("{key}_known_concepts"),
        dense_matrix(encoding.known)?,
    );
    data.obsm
        .insert(format!("{key}_unknown"), dense_matrix(encoding.unknown)?);
    let names = &loaded.meta.data.concept_names;
    data.uns.insert(
        format!("{key}_concept_names"),
        UnsValue::StringArray {
            shape: vec![names.len()],
            values: names.clone(),
        },
    );
    write_h5ad(&data, &args.output, &settings.io.write_options())?;
    tracing::info!(
        cells = data.n_obs(),
        "wrote obsm[\"{key}_known_concepts\"] and obsm[\"{key}_unknown\"] to {}",
        args.output.display()
    );
    Ok(())
}
