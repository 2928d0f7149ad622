//! `conceptlab-cli fit`: preprocess an h5ad, curate concepts from obs
//! columns, train scCBGM and save a checkpoint directory.

use std::fmt::Write as _;

use std::path::Path;

use anyhow::Result;
use conceptlab_core::preprocess::{Concepts, curate_concepts, encode_with};
use conceptlab_io::read_h5ad;
use conceptlab_models::checkpoint::{self, DataSpec, GeneratorKind, GeneratorMeta, Meta};
use conceptlab_models::flow::cbm::{self, ConceptSource};
use conceptlab_models::flow::{FlowHistory, FlowMatcher};
use conceptlab_models::{
    ConceptData, ConceptModel, Dims, History, ModelKind, Preprocessor, ScCbgm,
};
use ndarray::Array2;

use super::model_data::{check_genes, expression};
use crate::cli::{FitArgs, GeneratorArg};
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

/// The flow's per-epoch losses as CSV.
fn flow_history_csv(history: &FlowHistory) -> String {
    let mut out = String::from("epoch,train_flow_matching,val_flow_matching\n");
    for (epoch, (train, val)) in history.epochs.iter().enumerate() {
        let _ = writeln!(
            out,
            "{epoch},{train},{}",
            val.map_or(String::new(), |v| v.to_string())
        );
    }
    out
}

/// Maps a model error to exit code 2 when the data caused it.
fn data_error(path: &Path) -> impl Fn(conceptlab_models::ModelError) -> anyhow::Error + '_ {
    move |e| {
        if e.is_bad_input() {
            user_error!("{}: {e}", path.display())
        } else {
            anyhow::Error::new(e)
        }
    }
}

/// A concept model ready for a generator: trained now or read from `--from`.
struct Stage1 {
    meta: Meta,
    model: ScCbgm,
    features: Array2<f32>,
    /// The training cells' concept annotations, when the flow reads them.
    concepts: Option<Concepts>,
    /// scCBGM's history.csv, when there is one to write.
    history: Option<String>,
}

pub fn run(args: &FitArgs, settings: &Settings) -> Result<()> {
    if args.output.join(checkpoint::META_FILE).exists() && !args.force {
        return Err(user_error!(
            "{}: already holds a model (pass --force to replace it)",
            args.output.display()
        ));
    }
    let stage1 = match &args.from {
        Some(dir) => reuse_sccbgm(args, dir, settings)?,
        None => train_sccbgm(args, settings)?,
    };
    let Stage1 {
        mut meta,
        model,
        features,
        concepts,
        history,
    } = stage1;
    let flow = match args.generator {
        Some(GeneratorArg::Fm) => {
            let annotations = concepts.as_ref().map(cbm::Annotations::from);
            let (flow, generator, history) = train_flow(&model, &features, annotations, settings)?;
            meta.generator = Some(generator);
            Some((flow, history))
        }
        None => None,
    };
    checkpoint::save(&args.output, &meta, &model, flow.as_ref().map(|(f, _)| f))?;
    if let Some(history) = history {
        checkpoint::write_atomic(&args.output.join("history.csv"), history.as_bytes())?;
    }
    let flow_history = args.output.join("flow_history.csv");
    match &flow {
        Some((_, history)) => {
            checkpoint::write_atomic(&flow_history, flow_history_csv(history).as_bytes())?
        }
        None if flow_history.exists() => std::fs::remove_file(&flow_history)?,
        None => {}
    }
    tracing::info!("saved the model to {}", args.output.display());
    Ok(())
}

/// Loads the scCBGM of `dir` and computes the features of the training data
/// with its preprocessing.
fn reuse_sccbgm(args: &FitArgs, dir: &Path, settings: &Settings) -> Result<Stage1> {
    let (mut meta, model) = checkpoint::load(dir)?;
    let data = read_h5ad(&args.data)?;
    check_genes(&meta, &data, &args.data, dir)?;
    let matrix = expression(&data, meta.data.layer.as_deref(), &args.data)?;
    let features = meta
        .preprocessing
        .transform(matrix)
        .map_err(data_error(&args.data))?;
    let concepts = match settings.flow.concepts {
        ConceptSource::Predicted => None,
        ConceptSource::Annotated => {
            let c = encode_with(&meta.data.concept_groups, &data.obs).map_err(|e| {
                user_error!(
                    "{}: {e} (the flow is conditioned on the training cells' concept \
                     annotations; without them, pass --override flow.concepts=predicted)",
                    args.data.display()
                )
            })?;
            Some(c)
        }
    };
    // The history belongs with the weights: carry it over to a new directory.
    let history = std::fs::read_to_string(dir.join("history.csv")).ok();
    meta.generator = None;
    tracing::info!(
        cells = data.n_obs(),
        model = %dir.display(),
        "read scCBGM; training only the generator"
    );
    Ok(Stage1 {
        meta,
        model,
        features,
        concepts,
        history,
    })
}

fn train_sccbgm(args: &FitArgs, settings: &Settings) -> Result<Stage1> {
    let hard = split_list(&args.concepts);
    let soft = split_list(&args.soft);
    if hard.is_empty() && soft.is_empty() {
        return Err(user_error!(
            "name at least one concept column with --concepts (or --soft)"
        ));
    }
    let data = read_h5ad(&args.data)?;
    let matrix = expression(&data, args.layer.as_deref(), &args.data)?;
    let concepts = curate_concepts(&data.obs, &hard, &soft)
        .map_err(|e| user_error!("{}: {e}", args.data.display()))?;
    let (pre, features) = Preprocessor::fit(matrix, &settings.preprocess, None, settings.seed)
        .map_err(data_error(&args.data))?;
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
        features.clone(),
        concepts.values.clone(),
        concepts.observed.clone(),
        n_hard,
    )?;
    let mut model =
        ScCbgm::new(settings.model.clone(), dims, settings.seed).map_err(|e| user_error!("{e}"))?;
    let progress = TrainingProgress::new(settings.train.max_epochs, "scCBGM");
    let started = std::time::Instant::now();
    let history = model.fit(&training, &settings.train, settings.seed, &mut |r| {
        progress.epoch(r)
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
        generator: None,
    };
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
        "trained scCBGM ({} parameters) on {} cells, {} held out for validation",
        model.n_parameters(),
        history.n_train,
        history.n_validation,
    );
    Ok(Stage1 {
        meta,
        model,
        features,
        concepts: (settings.flow.concepts == ConceptSource::Annotated).then_some(concepts),
        history: Some(history_csv(&history)),
    })
}

/// Trains CBM-FM: the flow conditioned on `model`'s embedding of each cell.
fn train_flow(
    model: &ScCbgm,
    features: &Array2<f32>,
    annotations: Option<cbm::Annotations>,
    settings: &Settings,
) -> Result<(FlowMatcher, GeneratorMeta, FlowHistory)> {
    let config = settings.flow.network.clone();
    let train = settings.flow.train.clone();
    let mut flow = FlowMatcher::new(
        config.clone(),
        features.ncols(),
        model.embedding_dim(),
        settings.seed,
    )
    .map_err(|e| user_error!("[flow] settings: {e}"))?;
    let progress = TrainingProgress::new(train.max_epochs, "CBM-FM");
    let started = std::time::Instant::now();
    let history = cbm::fit(
        model,
        &mut flow,
        features,
        annotations,
        &train,
        settings.seed,
        &mut |r| progress.epoch(r),
    )?;
    progress.finish();
    tracing::info!(
        epochs = history.epochs.len(),
        best_epoch = history.best_epoch,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "trained the flow ({} parameters) on {} cells, {} held out for validation",
        flow.n_parameters(),
        history.n_train,
        history.n_validation
    );
    let generator = GeneratorMeta {
        kind: GeneratorKind::CbmFm,
        concepts: settings.flow.concepts,
        seed: settings.seed,
        config,
        dims: flow.dims(),
        train,
        epochs: history.epochs.len(),
        best_epoch: history.best_epoch,
    };
    Ok((flow, generator, history))
}
