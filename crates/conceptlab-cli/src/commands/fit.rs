//! `conceptlab-cli fit`: preprocess an h5ad, curate concepts from obs
//! columns, train scCBGM and save a checkpoint directory.

use std::fmt::Write as _;

use anyhow::Result;
use conceptlab_core::preprocess::curate_concepts;
use conceptlab_io::read_h5ad;
use conceptlab_models::checkpoint::{self, DataSpec, Meta};
use conceptlab_models::{ConceptData, Dims, History, ModelKind, Preprocessor, ScCbgm};

use super::model_data::expression;
use crate::cli::FitArgs;
use crate::exit::user_error;
use crate::progress::TrainingProgress;
use crate::settings::Settings;

fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The per-epoch history as CSV (no timings, so reruns are byte-identical).
fn history_csv(history: &History) -> String {
    let mut out = String::from(
        "epoch,lr,train_total,train_reconstruction,train_kl,train_concept,train_orthogonality,train_concept_f1,\
         val_total,val_reconstruction,val_kl,val_concept,val_orthogonality,val_concept_f1\n",
    );
    for r in &history.epochs {
        let t = r.train;
        let _ = write!(
            out,
            "{},{:e},{},{},{},{},{},{}",
            r.epoch,
            r.lr,
            t.total,
            t.reconstruction,
            t.kl,
            t.concept,
            t.orthogonality,
            r.train_concept_f1
        );
        match (r.validation, r.validation_concept_f1) {
            (Some(v), Some(f1)) => {
                let _ = writeln!(
                    out,
                    ",{},{},{},{},{},{f1}",
                    v.total, v.reconstruction, v.kl, v.concept, v.orthogonality
                );
            }
            _ => out.push_str(",,,,,,\n"),
        }
    }
    out
}

pub fn run(args: &FitArgs, settings: &Settings) -> Result<()> {
    let hard = split_list(&args.concepts);
    let soft = split_list(&args.soft);
    if hard.is_empty() && soft.is_empty() {
        return Err(user_error!(
            "name at least one concept column with --concepts (or --soft)"
        ));
    }
    if args.output.join(checkpoint::META_FILE).exists() && !args.force {
        return Err(user_error!(
            "{}: already holds a model (pass --force to replace it)",
            args.output.display()
        ));
    }
    let data = read_h5ad(&args.data)?;
    let matrix = expression(&data, args.layer.as_deref(), &args.data)?;
    let concepts = curate_concepts(&data.obs, &hard, &soft)
        .map_err(|e| user_error!("{}: {e}", args.data.display()))?;
    let (pre, features) = Preprocessor::fit(matrix, &settings.preprocess, None, settings.seed)
        .map_err(|e| {
            if e.is_bad_input() {
                user_error!("{}: {e}", args.data.display())
            } else {
                anyhow::Error::new(e)
            }
        })?;
    tracing::info!(
        cells = data.n_obs(),
        genes = pre.genes.len(),
        features = pre.n_features(),
        normalized = pre.target_sum.is_some(),
        concepts = concepts.len(),
        "preprocessed"
    );
    let n_hard = concepts.n_hard();
    let dims = Dims {
        input_dim: pre.n_features(),
        n_hard,
        n_soft: concepts.len() - n_hard,
    };
    let training = ConceptData::new(
        features,
        concepts.values.clone(),
        concepts.observed.clone(),
        n_hard,
    )?;
    let mut model =
        ScCbgm::new(settings.model.clone(), dims, settings.seed).map_err(|e| user_error!("{e}"))?;
    let progress = TrainingProgress::new(settings.train.max_epochs, "scCBGM");
    let started = std::time::Instant::now();
    let history = model
        .fit(&training, &settings.train, settings.seed, &mut |r| {
            progress.epoch(r)
        })
        .map_err(|e| {
            if e.is_bad_input() {
                user_error!("{e}")
            } else {
                anyhow::Error::new(e)
            }
        })?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let meta = Meta {
        format: checkpoint::FORMAT_VERSION,
        conceptlab_version: env!("CARGO_PKG_VERSION").to_string(),
        model: ModelKind::ScCbgm,
        seed: settings.seed,
        config: settings.model.clone(),
        dims,
        train: settings.train.clone(),
        data: DataSpec {
            var_names: data.var_names().to_vec(),
            layer: args.layer.clone(),
            concept_names: concepts.names.clone(),
            concept_groups: concepts.groups.clone(),
        },
        preprocessing: pre,
        epochs: history.epochs.len(),
        best_epoch: history.best_epoch,
    };
    checkpoint::save(&args.output, &meta, &model)?;
    checkpoint::write_atomic(
        &args.output.join("history.csv"),
        history_csv(&history).as_bytes(),
    )?;
    let best = &history.epochs[history
        .best_epoch
        .min(history.epochs.len().saturating_sub(1))];
    tracing::info!(
        epochs = history.epochs.len(),
        best_epoch = history.best_epoch,
        stopped_early = history.stopped_early,
        validation_loss = best.validation.map(|v| v.total),
        concept_f1 = best.validation_concept_f1.unwrap_or(best.train_concept_f1),
        seconds = format!("{seconds:.1}"),
        "trained scCBGM ({} parameters) on {} cells, {} held out for validation; saved to {}",
        model.n_parameters(),
        history.n_train,
        history.n_validation,
        args.output.display()
    );
    Ok(())
}
