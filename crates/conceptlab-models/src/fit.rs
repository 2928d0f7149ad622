//! Fitting a model on a data set, as `fit` does: curate concepts from obs
//! columns, fit the preprocessing, train the registry model, optionally the
//! flow-matching generator on top, and fill the checkpoint's metadata. The
//! CLI, the benchmark and a future Python binding share it.

use candle_core::Device;
use conceptlab_core::preprocess::{
    Concepts, NonCountKind, check_finite, curate_concepts, encode_with, first_non_count,
};
use conceptlab_core::{CellData, Matrix};
use ndarray::Array2;

use crate::ModelError;
use crate::checkpoint::{
    self, DataSpec, FLOW_HISTORY_FILE, GeneratorMeta, HISTORY_FILE, Loaded, Meta,
};
use crate::data::ConceptData;
use crate::flow::{ConceptSource, FlowConfig, FlowMatcher, cbm};
use crate::input::{expression, features, matrix_name};
use crate::model::{Annotations, Model};
use crate::pipeline::{Normalize, PreprocessConfig, Preprocessor};
use crate::registry::{self, GeneratorKind, ModelConfig};
use crate::stages::StageObserver;
use crate::train::{Observer, TrainConfig};

/// What to fit on a data set.
#[derive(Debug, Clone)]
pub struct FitRequest {
    /// obs columns read as hard concepts (categorical, boolean, 0/1).
    pub hard: Vec<String>,
    /// Numeric obs columns read as soft concepts (min-max scaled).
    pub soft: Vec<String>,
    /// The layer read instead of X.
    pub layer: Option<String>,
    pub model: ModelConfig,
    pub preprocess: PreprocessConfig,
    pub train: TrainConfig,
    pub seed: u64,
    /// Where the model's tensors live (and a generator's on top).
    pub device: Device,
}

/// The flow-matching generator to train on top of a bottleneck model.
#[derive(Debug, Clone)]
pub struct GeneratorRequest {
    /// What fills the known part of the flow's condition.
    pub concepts: ConceptSource,
    pub config: FlowConfig,
    pub train: TrainConfig,
    pub seed: u64,
}

/// A trained model with everything its checkpoint needs.
#[derive(Debug)]
pub struct Trained {
    pub meta: Meta,
    pub model: Box<dyn Model>,
    pub flow: Option<FlowMatcher>,
    /// The training cells' features (a generator trains on them).
    features: Array2<f32>,
    /// The training cells' concept annotations (None when unreadable).
    concepts: Option<Concepts>,
    /// history.csv and flow_history.csv, when there are histories.
    pub history_csv: Option<String>,
    pub flow_history_csv: Option<String>,
    /// The device the model lives on; a generator trains there too.
    device: Device,
    /// Things the user should know about how the data were read (nothing
    /// failed). Each is also logged at warn level when it arises, as
    /// `fit_cells` has no file name to prefix.
    pub warnings: Vec<String>,
}

/// Fits `request.model` on `data` (the CLI's `fit`).
pub fn fit_cells(
    data: &CellData,
    request: &FitRequest,
    observer: &mut Observer,
) -> Result<Trained, ModelError> {
    fit_cells_observed(data, request, observer, &mut |_| {})
}

/// [`fit_cells`], reporting the preprocessing's long steps to `stages`.
pub fn fit_cells_observed(
    data: &CellData,
    request: &FitRequest,
    observer: &mut Observer,
    stages: &mut StageObserver,
) -> Result<Trained, ModelError> {
    if request.hard.is_empty() && request.soft.is_empty() {
        return Err(ModelError::Input(
            "name at least one concept column (hard or soft)".into(),
        ));
    }
    let matrix = expression(data, request.layer.as_deref())?;
    let concepts = curate_concepts(&data.obs, &request.hard, &request.soft)?;
    // Returned in `Trained::warnings`; the caller tells the user.
    let warnings = normalisation_evidence(data, matrix, request)?;
    let (pre, features) =
        Preprocessor::fit_observed(matrix, &request.preprocess, None, request.seed, stages)?;
    tracing::info!(
        cells = data.n_obs(),
        genes = pre.genes.len(),
        features = pre.n_features(),
        normalized = pre.target_sum.is_some(),
        concepts = concepts.len(),
        "preprocessed"
    );
    let training = ConceptData::from_concepts(features.clone(), &concepts)?;
    let started = std::time::Instant::now();
    let fit = registry::fit(
        &request.model,
        &training,
        &request.train,
        request.seed,
        &request.device,
        observer,
    )?;
    tracing::info!(
        epochs = fit.epochs,
        best_epoch = fit.best_epoch,
        stopped_early = fit.stopped_early,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "fitted {} ({} parameters) on {} cells, {} held out for validation",
        fit.model.kind().name(),
        fit.model.n_parameters(),
        fit.n_train,
        fit.n_validation,
    );
    let meta = Meta {
        format: checkpoint::FORMAT_VERSION,
        conceptlab_version: env!("CARGO_PKG_VERSION").to_string(),
        model: request.model.clone(),
        seed: request.seed,
        device: conceptlab_nn::device_name(&request.device),
        dims: fit.model.dims(),
        train: request.train.clone(),
        data: DataSpec {
            var_names: data.var_names().to_vec(),
            layer: request.layer.clone(),
            concept_names: concepts.names.clone(),
            concept_groups: concepts.groups.clone(),
        },
        preprocessing: pre,
        epochs: fit.epochs,
        best_epoch: fit.best_epoch,
        generator: None,
        files: Vec::new(),
    };
    Ok(Trained {
        meta,
        model: fit.model,
        flow: None,
        features,
        concepts: Some(concepts),
        history_csv: fit.history_csv,
        flow_history_csv: None,
        warnings,
        device: request.device.clone(),
    })
}

/// `normalize = auto` decides "counts" only when every value is a
/// non-negative integer; a single negative or fractional value switches
/// normalisation and log1p off. That decision is said out loud, naming the
/// value that made it: a warning for X, and a refusal for a layer the user
/// named (asking for a layer is asking for its counts, usually
/// `--layer counts`), unless the settings say how to treat it.
fn normalisation_evidence(
    data: &CellData,
    matrix: &Matrix,
    request: &FitRequest,
) -> Result<Vec<String>, ModelError> {
    if request.preprocess.normalize != Normalize::Auto {
        return Ok(Vec::new());
    }
    let name = matrix_name(request.layer.as_deref());
    // A NaN is an error of its own (the preprocessing's), not evidence.
    check_finite(matrix, &name)?;
    let Some(bad) = first_non_count(matrix, None) else {
        return Ok(Vec::new());
    };
    let evidence = format!(
        "{name}: cell `{}` (row {}), gene `{}` holds {}, {}",
        data.obs_names().get(bad.row).map_or("?", String::as_str),
        bad.row,
        data.var_names().get(bad.col).map_or("?", String::as_str),
        bad.value,
        match bad.kind {
            NonCountKind::Negative => "a negative value",
            _ => "not an integer",
        }
    );
    if let Some(layer) = &request.layer {
        return Err(ModelError::Input(format!(
            "{evidence}: layer `{layer}` does not hold counts (non-negative integers), which a \
             named layer must under preprocess.normalize = auto. Pass the counts layer, or say \
             how to treat this one: --override preprocess.normalize=never (already normalised \
             expression, modelled as it is) or preprocess.normalize=always (normalise and \
             log-transform it anyway)"
        )));
    }
    Ok(vec![format!(
        "{evidence}, so X is not counts and is modelled as it is, without library-size \
         normalisation or log1p (preprocess.normalize = auto). If X is already log-normalised \
         that is right (--override preprocess.normalize=never says so and silences this); if \
         the counts are in a layer, pass --layer; to normalise X anyway, \
         --override preprocess.normalize=always"
    )])
}

impl Trained {
    /// A saved model and the data it was trained on, ready for a generator
    /// on top (`fit --generator fm --from DIR`). `history_csv` is the saved
    /// model's own history, carried over; `device` is the one it was
    /// loaded on (where the generator trains).
    pub fn from_checkpoint(
        loaded: Loaded,
        data: &CellData,
        history_csv: Option<String>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let features = features(&loaded.meta, data)?;
        let concepts = encode_with(&loaded.meta.data.concept_groups, &data.obs).ok();
        let mut meta = loaded.meta;
        meta.generator = None;
        Ok(Trained {
            meta,
            model: loaded.model,
            flow: None,
            features,
            concepts,
            history_csv,
            flow_history_csv: None,
            warnings: Vec::new(),
            device: device.clone(),
        })
    }

    /// Trains CBM-FM on top: the flow conditioned on the model's embedding
    /// of each training cell (with their annotations in place of the
    /// predictions when `generator.concepts` says so).
    pub fn add_generator(
        &mut self,
        generator: &GeneratorRequest,
        observer: &mut Observer,
    ) -> Result<(), ModelError> {
        let model = self.model.as_concept_model().ok_or_else(|| {
            ModelError::Input(format!(
                "a {} model has no concept bottleneck to train a flow on",
                self.model.kind().name()
            ))
        })?;
        let annotations = match generator.concepts {
            ConceptSource::Predicted => None,
            ConceptSource::Annotated => Some(self.concepts.as_ref().ok_or_else(|| {
                ModelError::Input(
                    "the flow is conditioned on the training cells' concept annotations, \
                     which cannot be read from this data set (condition on the predictions \
                     instead: flow.concepts = predicted)"
                        .into(),
                )
            })?),
        };
        let mut flow = FlowMatcher::new(
            generator.config.clone(),
            self.features.ncols(),
            model.embedding_dim(),
            generator.seed,
            &self.device,
        )?;
        let started = std::time::Instant::now();
        let history = cbm::fit(
            model,
            &mut flow,
            &self.features,
            annotations.map(Annotations::from),
            &generator.train,
            generator.seed,
            observer,
        )?;
        tracing::info!(
            epochs = history.epochs.len(),
            best_epoch = history.best_epoch,
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            "trained the flow ({} parameters) on {} cells, {} held out for validation",
            flow.n_parameters(),
            history.n_train,
            history.n_validation
        );
        self.meta.generator = Some(GeneratorMeta {
            kind: GeneratorKind::CbmFm,
            concepts: generator.concepts,
            seed: generator.seed,
            config: generator.config.clone(),
            dims: flow.dims(),
            train: generator.train.clone(),
            epochs: history.epochs.len(),
            best_epoch: history.best_epoch,
        });
        self.flow_history_csv = Some(history.to_csv());
        self.flow = Some(flow);
        Ok(())
    }

    /// Writes the model directory (see [`checkpoint::save`]).
    pub fn save(&self, dir: &std::path::Path) -> Result<(), ModelError> {
        let mut extras: Vec<(&str, &[u8])> = Vec::new();
        if let Some(h) = &self.history_csv {
            extras.push((HISTORY_FILE, h.as_bytes()));
        }
        if let Some(h) = &self.flow_history_csv {
            extras.push((FLOW_HISTORY_FILE, h.as_bytes()));
        }
        checkpoint::save(dir, &self.meta, &*self.model, self.flow.as_ref(), &extras)
    }
}
