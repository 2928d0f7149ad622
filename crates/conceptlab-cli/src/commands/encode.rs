//! `conceptlab-cli encode`: write each cell's predicted concepts and unknown
//! code (from z = μ, deterministic) into obsm of a copy of the data.

use anyhow::Result;
use conceptlab_core::{CellData, DenseArray, Matrix, NumVec, UnsValue};
use conceptlab_io::{read_h5ad, write_h5ad};
use conceptlab_models::{ConceptModel, checkpoint};
use ndarray::Array2;

use super::convert::guard_output;
use super::model_data::{check_genes, expression};
use crate::cli::EncodeArgs;
use crate::settings::Settings;

/// A dense f32 obsm entry.
pub fn dense(a: Array2<f32>) -> Result<Matrix> {
    let (r, c) = a.dim();
    Ok(Matrix::Dense(DenseArray::new(
        vec![r, c],
        NumVec::F32(a.into_raw_vec_and_offset().0),
    )?))
}

pub fn run(args: &EncodeArgs, settings: &Settings) -> Result<()> {
    guard_output(&args.output, args.force, &[args.data.as_path()])?;
    let (meta, model) = checkpoint::load(&args.model)?;
    let mut data: CellData = read_h5ad(&args.data)?;
    check_genes(&meta, &data, &args.data, &args.model)?;
    let matrix = expression(&data, meta.data.layer.as_deref(), &args.data)?;
    let features = meta.preprocessing.transform(matrix).map_err(|e| {
        if e.is_bad_input() {
            crate::exit::user_error!("{}: {e}", args.data.display())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let encoding = model.encode(features.view())?;
    let key = &args.key;
    data.obsm
        .insert(format!("{key}_known_concepts"), dense(encoding.known)?);
    data.obsm
        .insert(format!("{key}_unknown"), dense(encoding.unknown)?);
    data.uns.insert(
        format!("{key}_concept_names"),
        UnsValue::StringArray {
            shape: vec![meta.data.concept_names.len()],
            values: meta.data.concept_names.clone(),
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
