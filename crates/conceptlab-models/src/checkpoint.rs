//! Checkpoints: one directory holding `weights.safetensors` (every
//! parameter under the reference's state-dict names), `flow.safetensors`
//! when a flow-matching generator was trained on top (CBM-FM), and one
//! `meta.json` (what is needed to rebuild both models and to check new data
//! against them: configs, sizes, gene names, concept encodings,
//! preprocessing state, seeds, version).
//!
//! Both files are a function of the trained model only (no timestamps, keys
//! in a fixed order), so the same seed gives the same bytes. Each is written
//! to a temporary file in the directory and renamed into place.

use std::io::Write;
use std::path::Path;

use conceptlab_core::preprocess::ConceptGroup;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::flow::{FlowConfig, FlowMatcher, VelocityDims};
use crate::model::ModelKind;
use crate::pipeline::Preprocessor;
use crate::sccbgm::{Dims, ScCbgm, ScCbgmConfig};
use crate::train::TrainConfig;

/// Version of the checkpoint layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const META_FILE: &str = "meta.json";
pub const FLOW_WEIGHTS_FILE: &str = "flow.safetensors";

/// Which generator sits on top of the concept model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorKind {
    /// Flow matching conditioned on the concept model's [ĉ ‖ u] (CBM-FM).
    CbmFm,
}

/// The flow-matching generator of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorMeta {
    pub kind: GeneratorKind,
    pub seed: u64,
    pub config: FlowConfig,
    pub dims: VelocityDims,
    pub train: TrainConfig,
    pub epochs: usize,
    pub best_epoch: usize,
}

/// Where the training data came from and how concepts were encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// `var_names` of the data the pipeline was fitted on, in order.
    pub var_names: Vec<String>,
    /// The layer read instead of X, if any.
    pub layer: Option<String>,
    /// Concept column names (hard first, then soft), as the model orders them.
    pub concept_names: Vec<String>,
    /// How each obs column was turned into concept columns.
    pub concept_groups: Vec<ConceptGroup>,
}

/// Everything but the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub conceptlab_version: String,
    pub model: ModelKind,
    pub seed: u64,
    pub config: ScCbgmConfig,
    pub dims: Dims,
    pub train: TrainConfig,
    pub data: DataSpec,
    pub preprocessing: Preprocessor,
    /// Epochs run and the one whose weights were kept.
    pub epochs: usize,
    pub best_epoch: usize,
    /// The generator trained on top, if any (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorMeta>,
}

fn failure(path: &Path, reason: impl std::fmt::Display) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `bytes` to `target` through a temporary file in the same
/// directory and a rename, so a reader never sees a half-written file and a
/// failure leaves any previous file intact. The file gets the usual
/// world-readable mode (temporary files are created private).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| failure(dir, e))?;
    tmp.write_all(bytes).map_err(|e| failure(target, e))?;
    tmp.as_file().sync_all().map_err(|e| failure(target, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(target).map_err(|e| failure(target, e.error))?;
    Ok(())
}

/// Saves a trained scCBGM, the flow trained on top of it (when
/// `meta.generator` says there is one) and their metadata into `dir`
/// (created if missing). meta.json is written last, so a directory whose
/// meta.json is readable has every weight file it names.
pub fn save(
    dir: &Path,
    meta: &Meta,
    model: &ScCbgm,
    flow: Option<&FlowMatcher>,
) -> Result<(), ModelError> {
    if meta.generator.is_some() != flow.is_some() {
        return Err(failure(
            dir,
            "the metadata and the models passed disagree about the flow generator",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| failure(dir, e))?;
    let weights = model.params().to_safetensors(&[])?;
    let mut json = serde_json::to_vec_pretty(meta).map_err(|e| failure(dir, e))?;
    json.push(b'\n');
    write_atomic(&dir.join(WEIGHTS_FILE), &weights)?;
    let flow_path = dir.join(FLOW_WEIGHTS_FILE);
    match flow {
        Some(flow) => write_atomic(&flow_path, &flow.to_safetensors()?)?,
        // A model replaced with --force must not keep a stale flow.
        None if flow_path.exists() => {
            std::fs::remove_file(&flow_path).map_err(|e| failure(&flow_path, e))?
        }
        None => {}
    }
    write_atomic(&dir.join(META_FILE), &json)?;
    Ok(())
}

/// The flow generator of a checkpoint read by [`load`], if it has one.
pub fn load_flow(dir: &Path, meta: &Meta) -> Result<Option<FlowMatcher>, ModelError> {
    let Some(generator) = &meta.generator else {
        return Ok(None);
    };
    let path = dir.join(FLOW_WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| failure(&path, e))?;
    FlowMatcher::from_safetensors(generator.config.clone(), generator.dims, &bytes)
        .map(Some)
        .map_err(|e| failure(&path, e))
}

/// Reads a checkpoint directory back.
pub fn load(dir: &Path) -> Result<(Meta, ScCbgm), ModelError> {
    let meta_path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        failure(
            &meta_path,
            format!(
                "{e} (is `{}` a model directory written by `fit`?)",
                dir.display()
            ),
        )
    })?;
    let meta: Meta = serde_json::from_str(&text).map_err(|e| failure(&meta_path, e))?;
    if meta.format != FORMAT_VERSION {
        return Err(failure(
            &meta_path,
            format!(
                "checkpoint format {} is not supported (this build reads {FORMAT_VERSION})",
                meta.format
            ),
        ));
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights_path).map_err(|e| failure(&weights_path, e))?;
    let model = ScCbgm::new(meta.config.clone(), meta.dims, meta.seed)?;
    model
        .params()
        .load_safetensors(&bytes)
        .map_err(|e| failure(&weights_path, e))?;
    Ok((meta, model))
}
