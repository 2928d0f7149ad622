//! `conceptlab-cli fit`: train a registry model (and optionally the flow
//! generator on top) on an h5ad and save its directory. The work is
//! `conceptlab_models::fit`; this reads the file, shows progress, saves.

use std::path::Path;

use anyhow::Result;
use conceptlab_io::read_h5ad;
use conceptlab_models::checkpoint::{self, HISTORY_FILE};
use conceptlab_models::fit::{FitRequest, GeneratorRequest, Trained, fit_cells_observed};
use conceptlab_models::registry::{self, GeneratorKind};

use super::data_error;
use super::outputs::claim_dir;
use crate::cli::{FitArgs, GeneratorArg};
use crate::exit::user_error;
use crate::progress::{self, TrainingProgress};
use crate::settings::Settings;

fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub fn run(args: &FitArgs, settings: &Settings) -> Result<()> {
    // Refuse an output that is not ours before spending minutes training.
    let inputs: Vec<&Path> = std::iter::once(args.data.as_path())
        .chain(args.from.as_deref())
        .collect();
    let _lock = claim_dir(&args.output, args.force, &inputs)?;
    checkpoint::check_replaceable(&args.output)?;
    let (kind, stacked) = match &args.model_type {
        Some(name) => {
            let entry = registry::lookup(name)?;
            (entry.kind, entry.generator)
        }
        None => (settings.model.kind, None),
    };
    let generator = match (args.generator, stacked) {
        (Some(GeneratorArg::Fm), _) | (None, Some(GeneratorKind::CbmFm)) => {
            Some(GeneratorRequest {
                concepts: settings.flow.concepts,
                config: settings.flow.network.clone(),
                train: settings.flow.train.clone(),
                seed: settings.seed,
            })
        }
        (None, None) => None,
    };
    let device = super::device(settings)?;
    let mut trained = match &args.from {
        Some(dir) => reuse(args, dir, &device)?,
        None => {
            let hard = split_list(&args.concepts);
            let soft = split_list(&args.soft);
            if hard.is_empty() && soft.is_empty() {
                return Err(user_error!(
                    "name at least one concept column with --concepts (or --soft)"
                ));
            }
            let data = read_h5ad(&args.data)?;
            let request = FitRequest {
                hard,
                soft,
                layer: args.layer.clone(),
                model: settings.model.config(kind),
                preprocess: settings.preprocess.clone(),
                train: settings.train.clone(),
                seed: settings.seed,
                device: device.clone(),
            };
            let mut progress =
                TrainingProgress::new(&settings.progress, settings.train.max_epochs, kind.name());
            let mut stages = progress::stages(&settings.progress, "fit");
            let trained =
                fit_cells_observed(&data, &request, &mut |r| progress.epoch(r), &mut stages)
                    .map_err(data_error(&args.data))?;
            progress.finish();
            for warning in &trained.warnings {
                tracing::warn!("{}: {warning}", args.data.display());
            }
            trained
        }
    };
    if let Some(generator) = &generator {
        let mut progress =
            TrainingProgress::new(&settings.progress, generator.train.max_epochs, "CBM-FM");
        trained
            .add_generator(generator, &mut |r| progress.epoch(r))
            .map_err(data_error(&args.data))?;
        progress.finish();
    }
    trained.save(&args.output)?;
    tracing::info!("saved the model to {}", args.output.display());
    Ok(())
}

/// The model of `dir` and the features of the training data under its
/// preprocessing, for a generator trained on top of it.
fn reuse(args: &FitArgs, dir: &Path, device: &conceptlab_nn::Device) -> Result<Trained> {
    let loaded = checkpoint::load_on(dir, device)?;
    let data = read_h5ad(&args.data)?;
    // The history belongs with the weights: carry it over to a new directory.
    let history = std::fs::read_to_string(dir.join(HISTORY_FILE)).ok();
    tracing::info!(
        cells = data.n_obs(),
        model = %dir.display(),
        "read the model; training only the generator"
    );
    Trained::from_checkpoint(loaded, &data, history, device).map_err(data_error(&args.data))
}
