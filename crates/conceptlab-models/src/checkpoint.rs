//! Checkpoints: one directory holding `weights.safetensors` (every
//! parameter under the reference's state-dict names), `flow.safetensors`
//! when a flow-matching generator was trained on top (CBM-FM),
//! `preprocess.safetensors` (the PCA's mean and components), and one
//! `meta.json` (what is needed to rebuild both models and to check new data
//! against them: configs, sizes, gene names, concept encodings,
//! preprocessing state, seeds, version).
//!
//! Both files are a function of the trained model only (no timestamps, keys
//! in a fixed order), so the same seed gives the same bytes. Each is written
//! to a temporary file in the directory and renamed into place.

use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use conceptlab_core::preprocess::ConceptGroup;
use conceptlab_nn::serialize_tensors;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::flow::cbm::ConceptSource;
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
/// The PCA's mean and components (genes × PCs floats: megabytes as JSON).
pub const PREPROCESS_FILE: &str = "preprocess.safetensors";
const PCA_MEAN: &str = "pca.mean";
const PCA_COMPONENTS: &str = "pca.components";

/// The metadata without the PCA's arrays, and those arrays in the
/// safetensors format (`None` without PCA).
fn split_pca(meta: &Meta) -> Result<(Meta, Option<Vec<u8>>), ModelError> {
    let mut light = meta.clone();
    let Some(pca) = light.preprocessing.pca.as_mut() else {
        return Ok((light, None));
    };
    let cpu = Device::Cpu;
    let mean = Tensor::from_vec(pca.mean.to_vec(), pca.mean.len(), &cpu)?;
    let components = Tensor::from_vec(
        pca.components.iter().copied().collect::<Vec<f32>>(),
        pca.components.dim(),
        &cpu,
    )?;
    pca.mean = Array1::zeros(0);
    pca.components = Array2::zeros((0, 0));
    let bytes = serialize_tensors(vec![
        (PCA_MEAN.to_string(), mean),
        (PCA_COMPONENTS.to_string(), components),
    ])?;
    Ok((light, Some(bytes)))
}

/// Puts the PCA's arrays back from `dir`'s preprocess.safetensors.
/// Checkpoints written before the split carry them in meta.json.
fn join_pca(dir: &Path, meta: &mut Meta) -> Result<(), ModelError> {
    let n_genes = meta.preprocessing.genes.len();
    let Some(pca) = meta.preprocessing.pca.as_mut() else {
        return Ok(());
    };
    if !pca.components.is_empty() {
        return Ok(());
    }
    let path = dir.join(PREPROCESS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| failure(&path, e))?;
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| failure(&path, e))?;
    let mut take = |name: &str| {
        tensors
            .remove(name)
            .ok_or_else(|| failure(&path, format!("lacks `{name}`")))
    };
    let (mean, components) = (take(PCA_MEAN)?, take(PCA_COMPONENTS)?);
    let expected = (pca.n_components, n_genes);
    if mean.dims() != [n_genes] || components.dims() != [expected.0, expected.1] {
        return Err(failure(
            &path,
            format!(
                "PCA arrays of shapes {:?} and {:?} do not fit {} components of {n_genes} genes",
                mean.dims(),
                components.dims(),
                pca.n_components
            ),
        ));
    }
    let values = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    pca.mean = Array1::from(values(&mean)?);
    pca.components =
        Array2::from_shape_vec(expected, values(&components)?).map_err(|e| failure(&path, e))?;
    Ok(())
}

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
    /// What fills the known part of the flow's condition. Checkpoints
    /// written before this field existed were conditioned on predictions.
    #[serde(default = "legacy_concept_source")]
    pub concepts: ConceptSource,
    pub seed: u64,
    pub config: FlowConfig,
    pub dims: VelocityDims,
    pub train: TrainConfig,
    pub epochs: usize,
    pub best_epoch: usize,
}

fn legacy_concept_source() -> ConceptSource {
    ConceptSource::Predicted
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
    let (light, pca) = split_pca(meta)?;
    let mut json = serde_json::to_vec_pretty(&light).map_err(|e| failure(dir, e))?;
    json.push(b'\n');
    write_atomic(&dir.join(WEIGHTS_FILE), &weights)?;
    write_or_remove(&dir.join(PREPROCESS_FILE), pca)?;
    write_or_remove(
        &dir.join(FLOW_WEIGHTS_FILE),
        flow.map(FlowMatcher::to_safetensors).transpose()?,
    )?;
    write_atomic(&dir.join(META_FILE), &json)?;
    Ok(())
}

/// Writes `bytes`, or removes a file left by an earlier model in the same
/// directory (replaced with --force) that this one does not have.
fn write_or_remove(path: &Path, bytes: Option<Vec<u8>>) -> Result<(), ModelError> {
    match bytes {
        Some(bytes) => write_atomic(path, &bytes),
        None if path.exists() => std::fs::remove_file(path).map_err(|e| failure(path, e)),
        None => Ok(()),
    }
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
    let mut meta: Meta = serde_json::from_str(&text).map_err(|e| failure(&meta_path, e))?;
    if meta.format != FORMAT_VERSION {
        return Err(failure(
            &meta_path,
            format!(
                "checkpoint format {} is not supported (this build reads {FORMAT_VERSION})",
                meta.format
            ),
        ));
    }
    join_pca(dir, &mut meta)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights_path).map_err(|e| failure(&weights_path, e))?;
    let model = ScCbgm::new(meta.config.clone(), meta.dims, meta.seed)?;
    model
        .params()
        .load_safetensors(&bytes)
        .map_err(|e| failure(&weights_path, e))?;
    Ok((meta, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sccbgm::Dims;
    use crate::{PreprocessConfig, ScCbgmConfig};
    use conceptlab_core::{DenseArray, Matrix, NumVec};

    fn example() -> (Meta, ScCbgm) {
        let (cells, genes) = (30, 12);
        let values: Vec<f32> = (0..cells * genes)
            .map(|i| ((i * 7919) % 13) as f32)
            .collect();
        let x = Matrix::Dense(DenseArray::new(vec![cells, genes], NumVec::F32(values)).unwrap());
        let config = PreprocessConfig {
            n_pcs: Some(5),
            ..PreprocessConfig::default()
        };
        let (pre, _) = Preprocessor::fit(&x, &config, None, 0).unwrap();
        assert_eq!(pre.pca.as_ref().unwrap().components.dim(), (5, 12));
        let dims = Dims {
            input_dim: 5,
            n_hard: 2,
            n_soft: 0,
        };
        let model_config = ScCbgmConfig {
            hidden_dim: 8,
            latent_dim: 4,
            n_unknown: 3,
            ..ScCbgmConfig::default()
        };
        let model = ScCbgm::new(model_config.clone(), dims, 1).unwrap();
        let meta = Meta {
            format: FORMAT_VERSION,
            conceptlab_version: "test".into(),
            model: ModelKind::ScCbgm,
            seed: 1,
            config: model_config,
            dims,
            train: TrainConfig::default(),
            data: DataSpec {
                var_names: (0..genes).map(|g| format!("g{g}")).collect(),
                layer: None,
                concept_names: vec!["a".into(), "b".into()],
                concept_groups: Vec::new(),
            },
            preprocessing: pre,
            epochs: 1,
            best_epoch: 0,
            generator: None,
        };
        (meta, model)
    }

    #[test]
    fn pca_arrays_live_beside_the_metadata_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, model) = example();
        save(dir.path(), &meta, &model, None).unwrap();
        let json = std::fs::read_to_string(dir.path().join(META_FILE)).unwrap();
        let stored: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            stored["preprocessing"]["pca"]["components"]["dim"],
            serde_json::json!([0, 0])
        );
        assert!(dir.path().join(PREPROCESS_FILE).is_file());
        let (back, _) = load(dir.path()).unwrap();
        assert_eq!(back, meta);

        // A checkpoint written before the split (arrays inline) still loads.
        std::fs::write(
            dir.path().join(META_FILE),
            serde_json::to_vec(&meta).unwrap(),
        )
        .unwrap();
        std::fs::remove_file(dir.path().join(PREPROCESS_FILE)).unwrap();
        assert_eq!(load(dir.path()).unwrap().0, meta);

        // A split checkpoint without its arrays is refused, naming the file.
        save(dir.path(), &meta, &model, None).unwrap();
        std::fs::remove_file(dir.path().join(PREPROCESS_FILE)).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(PREPROCESS_FILE), "{err}");
    }

    #[test]
    fn generators_saved_before_the_condition_choice_read_as_predicted() {
        let generator = GeneratorMeta {
            kind: GeneratorKind::CbmFm,
            concepts: ConceptSource::Annotated,
            seed: 3,
            config: FlowConfig::default(),
            dims: VelocityDims {
                x_dim: 5,
                c_dim: 4,
                emb_dim: 8,
                n_layers: 2,
            },
            train: TrainConfig::default(),
            epochs: 2,
            best_epoch: 1,
        };
        let mut json = serde_json::to_value(&generator).unwrap();
        assert_eq!(json["concepts"], "annotated");
        let back: GeneratorMeta = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, generator);
        json.as_object_mut().unwrap().remove("concepts");
        let legacy: GeneratorMeta = serde_json::from_value(json).unwrap();
        assert_eq!(legacy.concepts, ConceptSource::Predicted);
    }
}
