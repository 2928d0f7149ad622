//! The registry of model kinds: the one place that knows every model.
//!
//! A model kind is a [`ModelKind`] name, a serde-tagged [`ModelConfig`]
//! variant (`kind = "sccbgm"`, stored in meta.json), and two dispatch arms:
//! [`fit`] and [`load`]. Everything else — the CLI's `fit --model-type`,
//! checkpoints, `edit`, the benchmark — goes through these, so adding a model
//! is one module implementing [`Model`] plus one entry here.

use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::baselines::{CopySource, MeanShift};
use crate::data::ConceptData;
use crate::flow::{ConceptFlow, ConceptFlowConfig, RawFm, RawFmConfig};
use crate::model::Model;
use crate::sccbgm::{Dims, ScCbgm, ScCbgmConfig};
use crate::train::{Observer, TrainConfig};

/// The kinds of model the registry can fit, save, load and edit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelKind {
    /// scCBGM (checkpoints of format 1 spell it `sc-cbgm`).
    #[serde(rename = "sccbgm", alias = "sc-cbgm")]
    ScCbgm,
    #[serde(rename = "copy")]
    Copy,
    #[serde(rename = "mean-shift")]
    MeanShift,
    /// Flow matching on the observed concepts (CellFlow-style "vanilla FM").
    #[serde(rename = "raw-fm", alias = "vanilla-fm")]
    RawFm,
    #[serde(rename = "conceptflow")]
    ConceptFlow,
}

/// One line of the registry: a name users type and what it is.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// The name `fit --model-type` takes.
    pub name: &'static str,
    pub kind: ModelKind,
    /// A generator trained on top of the model (CBM-FM: scCBGM + flow).
    pub generator: Option<GeneratorKind>,
    pub summary: &'static str,
}

/// Every model `fit --model-type` takes, in the order listed to users.
pub const KINDS: &[KindInfo] = &[
    KindInfo {
        name: "sccbgm",
        kind: ModelKind::ScCbgm,
        generator: None,
        summary: "scCBGM: concept bottleneck VAE with an unknown code, skip decoder and cross-covariance penalty; edits by abduction, action, prediction",
    },
    KindInfo {
        name: "cbm-fm",
        kind: ModelKind::ScCbgm,
        generator: Some(GeneratorKind::CbmFm),
        summary: "CBM-FM: scCBGM plus flow matching conditioned on its embedding [c, u] (edit --generator fm)",
    },
    KindInfo {
        name: "mixed-cbm-fm",
        kind: ModelKind::ScCbgm,
        generator: Some(GeneratorKind::CbmFm),
        summary: "mixed CBM-FM: cbm-fm for hard and soft (dose-like) concepts together; the same model, as scCBGM's soft columns already have the mixed model's linear head and clipped MSE",
    },
    KindInfo {
        name: "raw-fm",
        kind: ModelKind::RawFm,
        generator: None,
        summary: "vanilla FM (CellFlow-style): flow matching conditioned on the cells' observed concepts [c*observed, observed]; edits invert under the old annotations",
    },
    KindInfo {
        name: "vanilla-fm",
        kind: ModelKind::RawFm,
        generator: None,
        summary: "the same model as raw-fm (another name for it)",
    },
    KindInfo {
        name: "conceptflow",
        kind: ModelKind::ConceptFlow,
        generator: None,
        summary: "ConceptFlow: end-to-end concept-bottleneck flow with a learned conditional Gaussian prior on [c, u]; edits by inversion (--mode decode: generation from the prior)",
    },
    KindInfo {
        name: "copy",
        kind: ModelKind::Copy,
        generator: None,
        summary: "trivial predictor: returns the source cells unchanged (the 'unedited' baseline)",
    },
    KindInfo {
        name: "mean-shift",
        kind: ModelKind::MeanShift,
        generator: None,
        summary: "trivial predictor: moves each cell by the training mean difference between the target and its current concept values",
    },
];

impl ModelKind {
    /// The name users type (`fit --model-type`).
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|k| k.kind == self && k.generator.is_none())
            .map_or("?", |k| k.name)
    }

    /// Whether the model is a concept bottleneck (it can `encode`).
    pub fn is_bottleneck(self) -> bool {
        matches!(self, ModelKind::ScCbgm | ModelKind::ConceptFlow)
    }

    /// Whether the model's own counterfactuals integrate a flow (they read
    /// [`EditRequest::sampling`](crate::EditRequest::sampling)).
    pub fn is_flow(self) -> bool {
        matches!(self, ModelKind::RawFm | ModelKind::ConceptFlow)
    }
}

/// The registry entry `name` names, or an error listing the names.
pub fn lookup(name: &str) -> Result<&'static KindInfo, ModelError> {
    KINDS.iter().find(|k| k.name == name).ok_or_else(|| {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        ModelError::Config(format!(
            "unknown model type `{name}`; the registry has: {}",
            names.join(", ")
        ))
    })
}

/// Which generator sits on top of a concept model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorKind {
    /// Flow matching conditioned on the concept model's [ĉ ‖ u] (CBM-FM).
    CbmFm,
}

/// A model's configuration, tagged by kind (`{"kind": "sccbgm", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ModelConfig {
    #[serde(rename = "sccbgm")]
    ScCbgm(ScCbgmConfig),
    #[serde(rename = "copy")]
    Copy,
    #[serde(rename = "mean-shift")]
    MeanShift,
    #[serde(rename = "raw-fm", alias = "vanilla-fm")]
    RawFm(RawFmConfig),
    #[serde(rename = "conceptflow")]
    ConceptFlow(ConceptFlowConfig),
}

impl ModelConfig {
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelConfig::ScCbgm(_) => ModelKind::ScCbgm,
            ModelConfig::Copy => ModelKind::Copy,
            ModelConfig::MeanShift => ModelKind::MeanShift,
            ModelConfig::RawFm(_) => ModelKind::RawFm,
            ModelConfig::ConceptFlow(_) => ModelKind::ConceptFlow,
        }
    }
}

/// The per-kind settings a user can set (`[model]` of the CLI's settings:
/// `model.kind`, `model.sccbgm.hidden_dim`, ...). Kinds without
/// hyperparameters have no section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// The model `fit` trains (`--model-type` overrides it).
    pub kind: ModelKind,
    /// scCBGM's architecture and loss weights.
    pub sccbgm: ScCbgmConfig,
    /// raw-fm's velocity network.
    pub raw_fm: RawFmConfig,
    /// ConceptFlow's architecture and loss weights.
    pub conceptflow: ConceptFlowConfig,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            kind: ModelKind::ScCbgm,
            sccbgm: ScCbgmConfig::default(),
            raw_fm: RawFmConfig::default(),
            conceptflow: ConceptFlowConfig::default(),
        }
    }
}

impl ModelSettings {
    /// Checks what can be checked before the data is seen (the concept
    /// count some rules need is checked again at fit time).
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut sccbgm = self.sccbgm.clone();
        // The cosine penalty's U = K rule needs the data's K.
        sccbgm.orthogonality = crate::sccbgm::Orthogonality::CrossCovariance;
        // Each section's errors name it (`model.<section>` in the settings).
        let named = |section: &str, r: Result<(), ModelError>| {
            r.map_err(|e| match e {
                ModelError::Config(reason) => ModelError::Config(format!("{section}.{reason}")),
                other => other,
            })
        };
        named("sccbgm", sccbgm.validate(sccbgm.n_unknown))?;
        named("raw_fm", self.raw_fm.validate())?;
        named("conceptflow", self.conceptflow.validate())
    }

    /// The configuration of `kind` under these settings.
    pub fn config(&self, kind: ModelKind) -> ModelConfig {
        match kind {
            ModelKind::ScCbgm => ModelConfig::ScCbgm(self.sccbgm.clone()),
            ModelKind::Copy => ModelConfig::Copy,
            ModelKind::MeanShift => ModelConfig::MeanShift,
            ModelKind::RawFm => ModelConfig::RawFm(self.raw_fm.clone()),
            ModelKind::ConceptFlow => ModelConfig::ConceptFlow(self.conceptflow.clone()),
        }
    }
}

/// A trained model and what its training did.
#[derive(Debug)]
pub struct Fit {
    pub model: Box<dyn Model>,
    /// Epochs run (0 for models fitted in closed form).
    pub epochs: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub n_train: usize,
    pub n_validation: usize,
    /// The per-epoch history as CSV (history.csv), for trained models.
    pub history_csv: Option<String>,
}

impl Fit {
    fn trained<S>(
        model: Box<dyn Model>,
        run: &crate::train::TrainingRun<S>,
        history_csv: String,
    ) -> Self {
        Fit {
            model,
            epochs: run.epochs.len(),
            best_epoch: run.best_epoch,
            stopped_early: run.stopped_early,
            n_train: run.n_train,
            n_validation: run.n_validation,
            history_csv: Some(history_csv),
        }
    }

    fn closed_form(model: Box<dyn Model>, n_cells: usize) -> Self {
        Fit {
            model,
            epochs: 0,
            best_epoch: 0,
            stopped_early: false,
            n_train: n_cells,
            n_validation: 0,
            history_csv: None,
        }
    }
}

/// Fits a model of `config`'s kind on `data` (features and concepts) with
/// the shared training loop where the model trains. Weights come from
/// `seed`'s streams, so a seed fixes every byte.
pub fn fit(
    config: &ModelConfig,
    data: &ConceptData,
    train: &TrainConfig,
    seed: u64,
    observer: &mut Observer,
) -> Result<Fit, ModelError> {
    let dims = data.dims();
    match config {
        ModelConfig::ScCbgm(c) => {
            let mut model = ScCbgm::new(c.clone(), dims, seed)?;
            let history = model.fit(data, train, seed, observer)?;
            Ok(Fit {
                epochs: history.epochs.len(),
                best_epoch: history.best_epoch,
                stopped_early: history.stopped_early,
                n_train: history.n_train,
                n_validation: history.n_validation,
                history_csv: Some(history.to_csv()),
                model: Box::new(model),
            })
        }
        ModelConfig::Copy => Ok(Fit::closed_form(
            Box::new(CopySource::new(dims)),
            data.n_cells(),
        )),
        ModelConfig::MeanShift => Ok(Fit::closed_form(
            Box::new(MeanShift::fit(data)?),
            data.n_cells(),
        )),
        ModelConfig::RawFm(c) => {
            let (model, history) = RawFm::fit(c.clone(), data, train, seed, observer)?;
            Ok(Fit::trained(Box::new(model), &history, history.to_csv()))
        }
        ModelConfig::ConceptFlow(c) => {
            let (model, history) = ConceptFlow::fit(c.clone(), data, train, seed, observer)?;
            Ok(Fit::trained(Box::new(model), &history, history.to_csv()))
        }
    }
}

/// Rebuilds a model of `config`'s kind and sizes from its weights file.
pub fn load(
    config: &ModelConfig,
    dims: Dims,
    seed: u64,
    weights: &[u8],
) -> Result<Box<dyn Model>, ModelError> {
    match config {
        ModelConfig::ScCbgm(c) => {
            let model = ScCbgm::new(c.clone(), dims, seed)?;
            model.params().load_safetensors(weights)?;
            Ok(Box::new(model))
        }
        ModelConfig::Copy => Ok(Box::new(CopySource::new(dims))),
        ModelConfig::MeanShift => Ok(Box::new(MeanShift::from_safetensors(dims, weights)?)),
        ModelConfig::RawFm(c) => Ok(Box::new(RawFm::from_safetensors(c.clone(), dims, weights)?)),
        ModelConfig::ConceptFlow(c) => Ok(Box::new(ConceptFlow::from_safetensors(
            c.clone(),
            dims,
            weights,
        )?)),
    }
}
