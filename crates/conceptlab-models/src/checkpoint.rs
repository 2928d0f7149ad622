//! Checkpoints: one directory per trained model.
//!
//! Format 2 (written since the model registry):
//! - `meta.json`: the model's kind and configuration (`model.kind`), sizes,
//!   seeds, training settings, gene names, concept encodings, preprocessing
//!   state, the generator trained on top (if any), and `files`: every other
//!   file of the directory with its size and sha256;
//! - `weights.safetensors`: the model's state (scCBGM: every parameter under
//!   the reference's state-dict names);
//! - `preprocess.safetensors`: the PCA's mean and components;
//! - `flow.safetensors`: the flow-matching generator, when one was trained;
//! - `history.csv`, `flow_history.csv`: per-epoch losses.
//!
//! Load checks each file it reads against `files` (the size before reading,
//! then the hash), so a corrupted, truncated or swapped weight file is an
//! error naming the file, never a model that answers NaN. The directory is
//! written whole: every file goes to a temporary directory beside it, which
//! then replaces the old directory in one atomic exchange (Linux
//! `renameat2(RENAME_EXCHANGE)`; two renames elsewhere), so a killed `fit`
//! leaves the previous model intact. Every file is a function of the trained
//! model only (no timestamps, keys in a fixed order): the same seed gives
//! the same bytes.
//!
//! Format 1 (scCBGM only; `model: "sc-cbgm"`, `config`, no checksums) still
//! loads.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use conceptlab_core::preprocess::ConceptGroup;
use conceptlab_nn::serialize_tensors;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ModelError;
use crate::flow::cbm::ConceptSource;
use crate::flow::{FlowConfig, FlowMatcher, VelocityDims};
use crate::model::Model;
use crate::pipeline::Preprocessor;
use crate::registry::{self, GeneratorKind, ModelConfig, ModelKind};
use crate::sccbgm::{Dims, ScCbgmConfig};
use crate::train::TrainConfig;

/// Version of the checkpoint layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 2;
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const META_FILE: &str = "meta.json";
pub const FLOW_WEIGHTS_FILE: &str = "flow.safetensors";
/// The PCA's mean and components (genes × PCs floats: megabytes as JSON).
pub const PREPROCESS_FILE: &str = "preprocess.safetensors";
pub const HISTORY_FILE: &str = "history.csv";
pub const FLOW_HISTORY_FILE: &str = "flow_history.csv";
/// Every file a model directory may hold; a directory with anything else
/// in it is not replaced (it is somebody's own).
pub const MODEL_FILES: &[&str] = &[
    META_FILE,
    WEIGHTS_FILE,
    PREPROCESS_FILE,
    FLOW_WEIGHTS_FILE,
    HISTORY_FILE,
    FLOW_HISTORY_FILE,
];
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
fn join_pca(
    dir: &Path,
    preprocessing: &mut Preprocessor,
    read: &dyn Fn(&str) -> Result<Vec<u8>, ModelError>,
) -> Result<(), ModelError> {
    let n_genes = preprocessing.genes.len();
    let Some(pca) = preprocessing.pca.as_mut() else {
        return Ok(());
    };
    if !pca.components.is_empty() {
        return Ok(());
    }
    let path = dir.join(PREPROCESS_FILE);
    let bytes = read(PREPROCESS_FILE)?;
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

/// A file of the directory as meta.json records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Everything but the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub conceptlab_version: String,
    /// The model's kind and configuration (`{"kind": "sccbgm", ...}`).
    pub model: ModelConfig,
    pub seed: u64,
    /// The device the model was trained on (`cpu`, `cuda:0`), for the
    /// record: weights are stored from host memory and load on any device.
    /// Checkpoints written before this field existed trained on the CPU.
    #[serde(default = "trained_on_cpu")]
    pub device: String,
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
    /// The directory's other files with sizes and hashes (filled by [`save`]).
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

fn trained_on_cpu() -> String {
    "cpu".into()
}

/// meta.json of format 1: scCBGM only, no checksums.
#[derive(Deserialize)]
struct MetaV1 {
    conceptlab_version: String,
    #[allow(dead_code)]
    model: ModelKind,
    seed: u64,
    config: ScCbgmConfig,
    dims: Dims,
    train: TrainConfig,
    data: DataSpec,
    preprocessing: Preprocessor,
    epochs: usize,
    best_epoch: usize,
    #[serde(default)]
    generator: Option<GeneratorMeta>,
}

impl From<MetaV1> for Meta {
    fn from(v: MetaV1) -> Self {
        Meta {
            format: 1,
            conceptlab_version: v.conceptlab_version,
            model: ModelConfig::ScCbgm(v.config),
            seed: v.seed,
            device: trained_on_cpu(),
            dims: v.dims,
            train: v.train,
            data: v.data,
            preprocessing: v.preprocessing,
            epochs: v.epochs,
            best_epoch: v.best_epoch,
            generator: v.generator,
            files: Vec::new(),
        }
    }
}

fn failure(path: &Path, reason: impl std::fmt::Display) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    readable(tmp.as_file());
    tmp.persist(target).map_err(|e| failure(target, e.error))?;
    Ok(())
}

#[cfg(unix)]
fn readable(file: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
}

#[cfg(not(unix))]
fn readable(_file: &std::fs::File) {}

/// Refuses to replace `dir` unless it is missing, empty, or a model
/// directory holding only model files (so a user's own directory is never
/// swept away by `fit -o DIR --force`).
pub fn check_replaceable(dir: &Path) -> Result<(), ModelError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory || dir.is_file() => {
            return Err(failure(
                dir,
                format!("{e}: a model is written as a directory"),
            ));
        }
        Err(e) => return Err(failure(dir, e)),
    };
    let mut foreign = Vec::new();
    let mut any = false;
    for entry in entries {
        let entry = entry.map_err(|e| failure(dir, e))?;
        any = true;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || !MODEL_FILES.contains(&name.as_str()) {
            foreign.push(name);
        }
    }
    if !any {
        return Ok(());
    }
    if !dir.join(META_FILE).is_file() {
        return Err(failure(
            dir,
            "is not empty and holds no model (no meta.json); choose another output directory",
        ));
    }
    if !foreign.is_empty() {
        foreign.sort();
        return Err(failure(
            dir,
            format!(
                "holds files that are not part of a model ({}); refusing to replace it",
                foreign.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Saves a trained model, the flow trained on top of it (when
/// `meta.generator` says there is one), `extras` (e.g. history.csv) and their
/// metadata as the directory `dir`, replacing a model directory there as a
/// whole (see the module docs). meta.json records every other file's size
/// and hash.
pub fn save(
    dir: &Path,
    meta: &Meta,
    model: &dyn Model,
    flow: Option<&FlowMatcher>,
    extras: &[(&str, &[u8])],
) -> Result<(), ModelError> {
    if meta.generator.is_some() != flow.is_some() {
        return Err(failure(
            dir,
            "the metadata and the models passed disagree about the flow generator",
        ));
    }
    if meta.model != model.config() {
        return Err(failure(
            dir,
            "the metadata and the model passed disagree about the model's configuration",
        ));
    }
    if let Some((name, _)) = extras.iter().find(|(n, _)| !MODEL_FILES.contains(n)) {
        return Err(failure(dir, format!("`{name}` is not a model file")));
    }
    check_replaceable(dir)?;
    let name = dir
        .file_name()
        .ok_or_else(|| failure(dir, "a model directory needs a name"))?
        .to_string_lossy()
        .into_owned();
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| failure(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(parent)
        .map_err(|e| failure(parent, e))?;

    let (mut light, pca) = split_pca(meta)?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![(WEIGHTS_FILE, model.to_safetensors()?)];
    if let Some(pca) = pca {
        files.push((PREPROCESS_FILE, pca));
    }
    if let Some(flow) = flow {
        files.push((FLOW_WEIGHTS_FILE, flow.to_safetensors()?));
    }
    files.extend(extras.iter().map(|(n, b)| (*n, b.to_vec())));
    light.format = FORMAT_VERSION;
    light.files = files
        .iter()
        .map(|(n, b)| FileEntry {
            name: n.to_string(),
            bytes: b.len() as u64,
            sha256: sha256_hex(b),
        })
        .collect();
    let mut json = serde_json::to_vec_pretty(&light).map_err(|e| failure(dir, e))?;
    json.push(b'\n');
    files.push((META_FILE, json));
    for (file, bytes) in &files {
        write_synced(&staging.path().join(file), bytes)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755));
    }
    install(staging, dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let mut file = std::fs::File::create(path).map_err(|e| failure(path, e))?;
    file.write_all(bytes).map_err(|e| failure(path, e))?;
    file.sync_all().map_err(|e| failure(path, e))?;
    readable(&file);
    Ok(())
}

/// Puts the staged directory at `dir`: a plain rename when there is none,
/// an atomic exchange with the old one otherwise (whose files, now at the
/// staging path, are then removed).
fn install(staging: tempfile::TempDir, dir: &Path) -> Result<(), ModelError> {
    if !dir.exists() {
        let staged = staging.keep();
        return std::fs::rename(&staged, dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&staged);
            failure(dir, e)
        });
    }
    if exchange(staging.path(), dir).is_ok() {
        // The old model now sits at the staging path; dropping removes it.
        drop(staging);
        return Ok(());
    }
    // No atomic exchange on this platform or file system: move the old
    // directory aside, put the new one in place, then remove the old.
    let aside: PathBuf = staging.path().with_extension("old");
    std::fs::rename(dir, &aside).map_err(|e| failure(dir, e))?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, dir) {
        let _ = std::fs::rename(&aside, dir);
        let _ = std::fs::remove_dir_all(&staged);
        return Err(failure(dir, e));
    }
    let _ = std::fs::remove_dir_all(&aside);
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// A model directory read back: its metadata, the model, and the flow
/// trained on top of it (if any).
#[derive(Debug)]
pub struct Loaded {
    pub meta: Meta,
    pub model: Box<dyn Model>,
    pub flow: Option<FlowMatcher>,
}

/// Reads the metadata of a model directory (either format).
pub fn read_meta(dir: &Path) -> Result<Meta, ModelError> {
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
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| failure(&meta_path, e))?;
    let format = value.get("format").and_then(serde_json::Value::as_u64);
    match format {
        Some(1) => serde_json::from_value::<MetaV1>(value)
            .map(Meta::from)
            .map_err(|e| failure(&meta_path, e)),
        Some(2) => serde_json::from_value(value).map_err(|e| failure(&meta_path, e)),
        Some(f) => Err(failure(
            &meta_path,
            format!(
                "checkpoint format {f} is not supported (this build reads 1 and {FORMAT_VERSION})"
            ),
        )),
        None => Err(failure(&meta_path, "has no `format` number")),
    }
}

/// Reads `name` from `dir`, checking it against meta.json's record (format
/// 2: the size before reading it, then its sha256).
fn read_checked(
    dir: &Path,
    format: u32,
    files: &[FileEntry],
    name: &str,
) -> Result<Vec<u8>, ModelError> {
    let path = dir.join(name);
    let entry = files.iter().find(|f| f.name == name);
    if format >= 2 && entry.is_none() {
        return Err(failure(
            &path,
            format!("meta.json does not list `{name}`, which this model needs"),
        ));
    }
    let on_disk = std::fs::metadata(&path).map_err(|e| failure(&path, e))?;
    if let Some(entry) = entry
        && on_disk.len() != entry.bytes
    {
        return Err(failure(
            &path,
            format!(
                "is {} bytes but meta.json records {}: the file was truncated or replaced \
                 after the model was saved (refit the model)",
                on_disk.len(),
                entry.bytes
            ),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| failure(&path, e))?;
    if let Some(entry) = entry {
        let actual = sha256_hex(&bytes);
        if actual != entry.sha256 {
            return Err(failure(
                &path,
                format!(
                    "its sha256 {actual} differs from the {} meta.json records: the file was \
                     corrupted or replaced after the model was saved (refit the model)",
                    entry.sha256
                ),
            ));
        }
    }
    Ok(bytes)
}

/// Reads a checkpoint directory back onto the CPU, checking every file it
/// reads ([`load_on`] for another device).
pub fn load(dir: &Path) -> Result<Loaded, ModelError> {
    load_on(dir, &Device::Cpu)
}

/// Reads a checkpoint directory back with the model's tensors on `device`,
/// whichever device it was trained on, checking every file it reads.
pub fn load_on(dir: &Path, device: &Device) -> Result<Loaded, ModelError> {
    let mut meta = read_meta(dir)?;
    let (format, files) = (meta.format, std::mem::take(&mut meta.files));
    let read = |name: &str| read_checked(dir, format, &files, name);
    join_pca(dir, &mut meta.preprocessing, &read)?;
    let weights = read(WEIGHTS_FILE)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let model = registry::load(&meta.model, meta.dims, meta.seed, &weights, device)
        .map_err(|e| failure(&weights_path, e))?;
    let flow = match &meta.generator {
        None => None,
        Some(generator) => {
            let path = dir.join(FLOW_WEIGHTS_FILE);
            let bytes = read(FLOW_WEIGHTS_FILE)?;
            Some(
                FlowMatcher::from_safetensors(
                    generator.config.clone(),
                    generator.dims,
                    &bytes,
                    device,
                )
                .map_err(|e| failure(&path, e))?,
            )
        }
    };
    meta.files = files;
    Ok(Loaded { meta, model, flow })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sccbgm::{Dims, ScCbgm};
    use crate::{PreprocessConfig, ScCbgmConfig};
    use conceptlab_core::{DenseArray, Matrix, NumVec};

    fn example(seed: u64) -> (Meta, ScCbgm) {
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
        let model = ScCbgm::new(model_config.clone(), dims, seed, &Device::Cpu).unwrap();
        let meta = Meta {
            format: FORMAT_VERSION,
            conceptlab_version: "test".into(),
            model: ModelConfig::ScCbgm(model_config),
            seed,
            device: "cpu".into(),
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
            files: Vec::new(),
        };
        (meta, model)
    }

    /// The metadata as load returns it: `files` filled in by save.
    fn saved(dir: &Path, meta: &Meta, model: &ScCbgm) -> Meta {
        save(dir, meta, model, None, &[(HISTORY_FILE, b"epoch\n")]).unwrap();
        let back = load(dir).unwrap();
        let mut expected = meta.clone();
        expected.files = back.meta.files.clone();
        assert_eq!(back.meta, expected);
        back.meta
    }

    #[test]
    fn pca_arrays_and_checksums_live_beside_the_metadata_and_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        let (meta, model) = example(1);
        let stored = saved(&dir, &meta, &model);
        let json = std::fs::read_to_string(dir.join(META_FILE)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["preprocessing"]["pca"]["components"]["dim"],
            serde_json::json!([0, 0])
        );
        assert_eq!(value["model"]["kind"], "sccbgm");
        let names: Vec<&str> = stored.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [WEIGHTS_FILE, PREPROCESS_FILE, HISTORY_FILE]);
        for f in &stored.files {
            let bytes = std::fs::read(dir.join(&f.name)).unwrap();
            assert_eq!(f.bytes, bytes.len() as u64);
            assert_eq!(f.sha256, sha256_hex(&bytes));
        }
        let weights = load(&dir).unwrap().model.to_safetensors().unwrap();
        assert_eq!(weights, model.params().to_safetensors(&[]).unwrap());
        // Nothing is left beside the directory.
        let siblings: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(siblings.len(), 1);
    }

    /// meta.json names the training device; a checkpoint written before
    /// that field existed loads as trained on the CPU, and `load_on` puts
    /// the weights on the device asked for, unchanged.
    #[test]
    fn the_training_device_is_recorded_and_older_checkpoints_load_as_cpu() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        let (meta, model) = example(2);
        saved(&dir, &meta, &model);
        let text = std::fs::read_to_string(dir.join(META_FILE)).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["device"], "cpu");
        let on_cpu = load_on(&dir, &Device::Cpu).unwrap();
        assert_eq!(
            on_cpu.model.to_safetensors().unwrap(),
            model.params().to_safetensors(&[]).unwrap()
        );
        value.as_object_mut().unwrap().remove("device");
        let bytes = serde_json::to_vec(&value).unwrap();
        std::fs::write(dir.join(META_FILE), bytes).unwrap();
        assert_eq!(load(&dir).unwrap().meta.device, "cpu");
    }

    #[test]
    fn format_1_checkpoints_still_load() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        let (meta, model) = example(1);
        save(&dir, &meta, &model, None, &[]).unwrap();
        // The layout format 1 wrote: kind `sc-cbgm`, `config`, no `files`,
        // PCA arrays inline (before they moved to preprocess.safetensors).
        let ModelConfig::ScCbgm(config) = &meta.model else {
            unreachable!()
        };
        let mut v1 = serde_json::to_value(&meta).unwrap();
        let obj = v1.as_object_mut().unwrap();
        obj.insert("format".into(), 1.into());
        obj.insert("model".into(), "sc-cbgm".into());
        obj.insert("config".into(), serde_json::to_value(config).unwrap());
        obj.remove("files");
        std::fs::write(dir.join(META_FILE), serde_json::to_vec(&v1).unwrap()).unwrap();
        std::fs::remove_file(dir.join(PREPROCESS_FILE)).unwrap();
        let back = load(&dir).unwrap();
        assert_eq!(back.meta.format, 1);
        assert_eq!(back.meta.model, meta.model);
        assert_eq!(back.meta.preprocessing, meta.preprocessing);
        // A split format-1 checkpoint without its arrays is refused, naming the file.
        obj_without_pca(&dir, &meta);
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains(PREPROCESS_FILE), "{err}");
    }

    fn obj_without_pca(dir: &Path, meta: &Meta) {
        let (light, _) = split_pca(meta).unwrap();
        let mut v = serde_json::to_value(&light).unwrap();
        v["format"] = 1.into();
        v["model"] = "sc-cbgm".into();
        let ModelConfig::ScCbgm(config) = &meta.model else {
            unreachable!()
        };
        v["config"] = serde_json::to_value(config).unwrap();
        std::fs::write(dir.join(META_FILE), serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn corrupted_truncated_and_mixed_files_are_refused_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        let (meta, model) = example(1);
        let dir = root.path().join("model");
        saved(&dir, &meta, &model);
        let weights = dir.join(WEIGHTS_FILE);
        let original = std::fs::read(&weights).unwrap();

        // One byte flipped in the middle: same size, other hash.
        let mut flipped = original.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        std::fs::write(&weights, &flipped).unwrap();
        let err = load(&dir).unwrap_err();
        assert!(err.is_bad_input());
        let text = err.to_string();
        assert!(
            text.contains(WEIGHTS_FILE) && text.contains("sha256"),
            "{text}"
        );

        // Truncated.
        std::fs::write(&weights, &original[..original.len() - 100]).unwrap();
        let text = load(&dir).unwrap_err().to_string();
        assert!(
            text.contains(WEIGHTS_FILE) && text.contains("bytes"),
            "{text}"
        );

        // What a fit killed between two file writes left before format 2:
        // another model's weights beside this meta.json.
        let other = root.path().join("other");
        let (meta2, model2) = example(2);
        saved(&other, &meta2, &model2);
        std::fs::copy(other.join(WEIGHTS_FILE), &weights).unwrap();
        let text = load(&dir).unwrap_err().to_string();
        assert!(text.contains(WEIGHTS_FILE), "{text}");

        // The PCA file is checked like the weights.
        std::fs::write(&weights, &original).unwrap();
        assert!(load(&dir).is_ok());
        std::fs::write(dir.join(PREPROCESS_FILE), b"short").unwrap();
        let text = load(&dir).unwrap_err().to_string();
        assert!(text.contains(PREPROCESS_FILE), "{text}");
    }

    #[test]
    fn a_saved_model_replaces_the_old_directory_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        let (meta1, model1) = example(1);
        save(&dir, &meta1, &model1, None, &[(HISTORY_FILE, b"old\n")]).unwrap();
        // The new model has no history: the old one's must not survive.
        let (meta2, model2) = example(2);
        save(&dir, &meta2, &model2, None, &[]).unwrap();
        assert!(!dir.join(HISTORY_FILE).exists());
        let back = load(&dir).unwrap();
        assert_eq!(back.meta.seed, 2);
        assert_eq!(
            back.model.to_safetensors().unwrap(),
            model2.params().to_safetensors(&[]).unwrap()
        );
        let siblings: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(siblings.len(), 1, "staging directories left behind");
    }

    #[test]
    fn directories_that_are_not_models_are_never_replaced() {
        let root = tempfile::tempdir().unwrap();
        let (meta, model) = example(1);
        // A user's own directory.
        let mine = root.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("notes.txt"), b"keep me").unwrap();
        let err = save(&mine, &meta, &model, None, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no model"), "{err}");
        assert_eq!(std::fs::read(mine.join("notes.txt")).unwrap(), b"keep me");
        // A model directory with a user's file added.
        let dir = root.path().join("model");
        saved(&dir, &meta, &model);
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        let err = save(&dir, &meta, &model, None, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("notes.txt"), "{err}");
        // A file in the way.
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(save(&file, &meta, &model, None, &[]).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
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
