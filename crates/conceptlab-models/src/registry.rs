//! The registry of model kinds: the one place that knows every model.
//!
//! A model kind is a [`ModelKind`] name, a serde-tagged [`ModelConfig`]
//! variant (`kind = "sccbgm"`, stored in meta.json), and two dispatch arms:
//! [`fit`] and [`load`]. Everything else — the CLI's `fit --model-type`,
//! checkpoints, `edit`, the benchmark — goes through these, so adding a model
//! is one module implementing [`Model`] plus one entry here.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::baselines::{CopySource, MeanShift};
use crate::cbgm::{Cbgm, CbgmConfig};
use crate::cinemaot::{CinemaOt, CinemaOtConfig};
use crate::cvae::{ScCvae, ScCvaeConfig, ScCvaeFm, ScCvaeFmConfig};
use crate::data::ConceptData;
use crate::flow::{ConceptFlow, ConceptFlowConfig, RawFm, RawFmConfig};
use crate::model::Model;
use crate::nearest::NearestPopulation;
use crate::sccbgm::{Dims, ScCbgm, ScCbgmConfig};
use crate::scgen::{ScGen, ScGenConfig};
use crate::train::{Observer, TrainConfig};
use crate::trvae::{TrVae, TrVaeConfig};

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
    #[serde(rename = "cinemaot")]
    CinemaOt,
    #[serde(rename = "nearest")]
    Nearest,
    #[serde(rename = "scgen")]
    ScGen,
    #[serde(rename = "sccvae")]
    ScCvae,
    #[serde(rename = "sccvae-fm")]
    ScCvaeFm,
    #[serde(rename = "trvae")]
    TrVae,
    /// The CBGM baseline (concept-embedding VAE).
    #[serde(rename = "cbgm")]
    Cbgm,
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
    KindInfo {
        name: "cinemaot",
        kind: ModelKind::CinemaOt,
        generator: None,
        summary: "CINEMA-OT: ICA confounders (Chatterjee ξ < thres), entropic OT from control to observed treated training cells; no training",
    },
    KindInfo {
        name: "nearest",
        kind: ModelKind::Nearest,
        generator: None,
        summary: "trivial predictor: each cell becomes its nearest cell of the training population with the targets whose mean is nearest",
    },
    KindInfo {
        name: "scgen",
        kind: ModelKind::ScGen,
        generator: None,
        summary: "scGen: unsupervised batch-norm VAE; edits by latent arithmetic, decoder(mu + mean mu(target) - mean mu(source)) over balanced training populations",
    },
    KindInfo {
        name: "sccvae",
        kind: ModelKind::ScCvae,
        generator: None,
        summary: "scCVAE: conditional VAE on [x, c] and [z, c]; edits by encoding with the cell's annotations and decoding with the new concepts",
    },
    KindInfo {
        name: "sccvae-fm",
        kind: ModelKind::ScCvaeFm,
        generator: None,
        summary: "scCVAE-FM: scCVAE plus flow matching conditioned on [mu_CVAE, c]; edits by flow inversion under the new concepts",
    },
    KindInfo {
        name: "trvae",
        kind: ModelKind::TrVae,
        generator: None,
        summary: "trVAE: conditional VAE on hard-concept patterns (batch norm, MMD between conditions); edits by decoding under the new pattern",
    },
    KindInfo {
        name: "cbgm",
        kind: ModelKind::Cbgm,
        generator: None,
        summary: "CBGM baseline: concept-embedding VAE (two embeddings per concept mixed by its probability, |cos| orthogonality); edits by abduction, action, prediction",
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

    /// How the kind trains when the user sets nothing (`[train]` defaults
    /// to it): the reference's settings for that model, so `fit
    /// --model-type NAME` trains NAME the way its authors did.
    pub fn default_train(self) -> TrainConfig {
        match self {
            // Closed-form and matching models do not train; the loop's
            // defaults only size their validation split (none is used).
            ModelKind::ScCbgm
            | ModelKind::Cbgm
            | ModelKind::Copy
            | ModelKind::MeanShift
            | ModelKind::CinemaOt
            | ModelKind::Nearest => TrainConfig::default(),
            ModelKind::ScGen => crate::scgen::default_training(),
            // Cond_FM and Concept_FM: lr 3e-4, batch 128, 200 epochs.
            ModelKind::RawFm | ModelKind::ConceptFlow => crate::flow::default_flow_training(),
            // `CVAE_MetaTrainer`: lr 3e-4, batch 128, 200 epochs (the
            // flow stage of scCVAE-FM has its own, in its config).
            ModelKind::ScCvae | ModelKind::ScCvaeFm => TrainConfig {
                lr: 3e-4,
                batch_size: 128,
                ..TrainConfig::default()
            },
            // `train_trvae`: lr 1e-3, batch 512, patience 30, 85 % training.
            ModelKind::TrVae => TrainConfig {
                lr: 1e-3,
                batch_size: 512,
                patience: 30,
                validation_fraction: 0.15,
                ..TrainConfig::default()
            },
        }
    }

    /// Whether the model is a concept bottleneck (it can `encode`).
    pub fn is_bottleneck(self) -> bool {
        matches!(
            self,
            ModelKind::ScCbgm | ModelKind::Cbgm | ModelKind::ConceptFlow
        )
    }

    /// Whether the model's own counterfactuals integrate a flow (they read
    /// [`EditRequest::sampling`](crate::EditRequest::sampling)).
    pub fn is_flow(self) -> bool {
        matches!(
            self,
            ModelKind::RawFm | ModelKind::ConceptFlow | ModelKind::ScCvaeFm
        )
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
    #[serde(rename = "cinemaot")]
    CinemaOt(CinemaOtConfig),
    #[serde(rename = "nearest")]
    Nearest,
    #[serde(rename = "scgen")]
    ScGen(ScGenConfig),
    #[serde(rename = "sccvae")]
    ScCvae(ScCvaeConfig),
    #[serde(rename = "sccvae-fm")]
    ScCvaeFm(ScCvaeFmConfig),
    #[serde(rename = "trvae")]
    TrVae(TrVaeConfig),
    #[serde(rename = "cbgm")]
    Cbgm(CbgmConfig),
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
            ModelConfig::CinemaOt(_) => ModelKind::CinemaOt,
            ModelConfig::Nearest => ModelKind::Nearest,
            ModelConfig::ScGen(_) => ModelKind::ScGen,
            ModelConfig::ScCvae(_) => ModelKind::ScCvae,
            ModelConfig::ScCvaeFm(_) => ModelKind::ScCvaeFm,
            ModelConfig::TrVae(_) => ModelKind::TrVae,
            ModelConfig::Cbgm(_) => ModelKind::Cbgm,
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
    /// CINEMA-OT's matching settings.
    pub cinemaot: CinemaOtConfig,
    /// scGen's architecture and KL weight.
    pub scgen: ScGenConfig,
    /// scCVAE's architecture and KL weight.
    pub sccvae: ScCvaeConfig,
    /// scCVAE-FM's two stages and the flow's training.
    pub sccvae_fm: ScCvaeFmConfig,
    /// trVAE's architecture and loss weights.
    pub trvae: TrVaeConfig,
    /// CBGM's architecture and loss weights (`model.cbgm.*`).
    pub cbgm: CbgmConfig,
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
            cinemaot: CinemaOtConfig::default(),
            scgen: ScGenConfig::default(),
            sccvae: ScCvaeConfig::default(),
            sccvae_fm: ScCvaeFmConfig::default(),
            trvae: TrVaeConfig::default(),
            cbgm: CbgmConfig::default(),
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
        // Each error names its section (`sccbgm.hidden_dim ...`), so the
        // CLI can report the full key under `model.`.
        let section = |name: &str, e: ModelError| match e {
            ModelError::Config(reason) => {
                let field = reason
                    .strip_prefix(&format!("{name}."))
                    .or_else(|| reason.strip_prefix(&format!("{name} ")))
                    .unwrap_or(&reason);
                ModelError::Config(format!("{name}.{field}"))
            }
            other => other,
        };
        sccbgm
            .validate(sccbgm.n_unknown)
            .map_err(|e| section("sccbgm", e))?;
        self.cbgm.validate().map_err(|e| section("cbgm", e))?;
        self.cinemaot
            .validate()
            .map_err(|e| section("cinemaot", e))?;
        self.scgen.validate().map_err(|e| section("scgen", e))?;
        self.sccvae.validate().map_err(|e| section("sccvae", e))?;
        self.sccvae_fm
            .validate()
            .map_err(|e| section("sccvae_fm", e))?;
        self.trvae.validate().map_err(|e| section("trvae", e))?;
        self.raw_fm.validate().map_err(|e| section("raw_fm", e))?;
        self.conceptflow
            .validate()
            .map_err(|e| section("conceptflow", e))
    }

    /// The configuration of `kind` under these settings.
    pub fn config(&self, kind: ModelKind) -> ModelConfig {
        match kind {
            ModelKind::ScCbgm => ModelConfig::ScCbgm(self.sccbgm.clone()),
            ModelKind::Copy => ModelConfig::Copy,
            ModelKind::MeanShift => ModelConfig::MeanShift,
            ModelKind::CinemaOt => ModelConfig::CinemaOt(self.cinemaot.clone()),
            ModelKind::Nearest => ModelConfig::Nearest,
            ModelKind::ScGen => ModelConfig::ScGen(self.scgen.clone()),
            ModelKind::ScCvae => ModelConfig::ScCvae(self.sccvae.clone()),
            ModelKind::ScCvaeFm => ModelConfig::ScCvaeFm(self.sccvae_fm.clone()),
            ModelKind::TrVae => ModelConfig::TrVae(self.trvae.clone()),
            ModelKind::Cbgm => ModelConfig::Cbgm(self.cbgm.clone()),
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
    /// A model trained by the shared loop (`run` its first stage's run).
    fn trained<S>(model: Box<dyn Model>, run: &crate::train::TrainingRun<S>, csv: String) -> Self {
        Fit {
            model,
            epochs: run.epochs.len(),
            best_epoch: run.best_epoch,
            stopped_early: run.stopped_early,
            n_train: run.n_train,
            n_validation: run.n_validation,
            history_csv: Some(csv),
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
/// `seed`'s streams, so a seed fixes every byte; tensors live on `device`
/// (host-side models ignore it).
pub fn fit(
    config: &ModelConfig,
    data: &ConceptData,
    train: &TrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut Observer,
) -> Result<Fit, ModelError> {
    let dims = data.dims();
    match config {
        ModelConfig::ScCbgm(c) => {
            let mut model = ScCbgm::new(c.clone(), dims, seed, device)?;
            let history = model.fit(data, train, seed, observer)?;
            let csv = history.to_csv();
            Ok(Fit::trained(Box::new(model), &history, csv))
        }
        ModelConfig::Cbgm(c) => {
            let mut model = Cbgm::new(c.clone(), dims, seed, device)?;
            let history = model.fit(data, train, seed, observer)?;
            let csv = history.to_csv();
            Ok(Fit::trained(Box::new(model), &history, csv))
        }
        ModelConfig::Copy => Ok(Fit::closed_form(
            Box::new(CopySource::new(dims)),
            data.n_cells(),
        )),
        ModelConfig::MeanShift => Ok(Fit::closed_form(
            Box::new(MeanShift::fit(data)?),
            data.n_cells(),
        )),
        ModelConfig::CinemaOt(c) => Ok(Fit::closed_form(
            Box::new(CinemaOt::fit(c, data, seed)?),
            data.n_cells(),
        )),
        ModelConfig::Nearest => Ok(Fit::closed_form(
            Box::new(NearestPopulation::fit(data)?),
            data.n_cells(),
        )),
        ModelConfig::ScGen(c) => {
            let mut model = ScGen::new(c.clone(), dims, seed, device)?;
            let history = model.fit(data, train, observer)?;
            let csv = crate::scgen::history_csv(&history);
            Ok(Fit::trained(Box::new(model), &history, csv))
        }
        ModelConfig::ScCvae(c) => {
            let mut model = ScCvae::new(c.clone(), dims, seed, device)?;
            let h = model.fit(data, train, seed, observer)?;
            let csv = crate::cvae::history_csv(&h);
            Ok(Fit::trained(Box::new(model), &h, csv))
        }
        ModelConfig::ScCvaeFm(c) => {
            let mut model = ScCvaeFm::new(c.clone(), dims, seed, device)?;
            let h = model.fit(data, train, seed, observer)?;
            Ok(Fit::trained(Box::new(model), &h.cvae, h.to_csv()))
        }
        ModelConfig::TrVae(c) => {
            let (model, h, csv) =
                crate::trvae::fit_for_registry(c, data, train, seed, device, observer)?;
            Ok(Fit::trained(Box::new(model), &h, csv))
        }
        ModelConfig::RawFm(c) => {
            let (model, history) = RawFm::fit(c.clone(), data, train, seed, device, observer)?;
            Ok(Fit::trained(Box::new(model), &history, history.to_csv()))
        }
        ModelConfig::ConceptFlow(c) => {
            let (model, history) =
                ConceptFlow::fit(c.clone(), data, train, seed, device, observer)?;
            Ok(Fit::trained(Box::new(model), &history, history.to_csv()))
        }
    }
}

/// Rebuilds a model of `config`'s kind and sizes from its weights file, its
/// tensors on `device` (weights are stored from host memory, so a model
/// trained on either device loads on either).
pub fn load(
    config: &ModelConfig,
    dims: Dims,
    seed: u64,
    weights: &[u8],
    device: &Device,
) -> Result<Box<dyn Model>, ModelError> {
    match config {
        ModelConfig::ScCbgm(c) => {
            let model = ScCbgm::new(c.clone(), dims, seed, device)?;
            model.params().load_safetensors(weights)?;
            Ok(Box::new(model))
        }
        ModelConfig::Cbgm(c) => {
            let model = Cbgm::new(c.clone(), dims, seed, device)?;
            model.params().load_safetensors(weights)?;
            Ok(Box::new(model))
        }
        ModelConfig::Copy => Ok(Box::new(CopySource::new(dims))),
        ModelConfig::MeanShift => Ok(Box::new(MeanShift::from_safetensors(dims, weights)?)),
        ModelConfig::CinemaOt(c) => Ok(Box::new(CinemaOt::from_safetensors(
            c, dims, seed, weights,
        )?)),
        ModelConfig::Nearest => Ok(Box::new(NearestPopulation::from_safetensors(
            dims, weights,
        )?)),
        ModelConfig::ScGen(c) => Ok(Box::new(ScGen::from_safetensors(
            c.clone(),
            dims,
            seed,
            weights,
            device,
        )?)),
        ModelConfig::ScCvae(c) => {
            let model = ScCvae::new(c.clone(), dims, seed, device)?;
            model.params().load_safetensors(weights)?;
            Ok(Box::new(model))
        }
        ModelConfig::ScCvaeFm(c) => Ok(Box::new(ScCvaeFm::from_safetensors(
            c.clone(),
            dims,
            seed,
            weights,
            device,
        )?)),
        ModelConfig::TrVae(c) => Ok(Box::new(TrVae::from_safetensors(
            c.clone(),
            dims,
            seed,
            weights,
            device,
        )?)),
        ModelConfig::RawFm(c) => Ok(Box::new(RawFm::from_safetensors(
            c.clone(),
            dims,
            weights,
            device,
        )?)),
        ModelConfig::ConceptFlow(c) => Ok(Box::new(ConceptFlow::from_safetensors(
            c.clone(),
            dims,
            weights,
            device,
        )?)),
    }
}
