//! Layered configuration: built-in defaults < TOML file (`--config`) <
//! `CONCEPTLAB_*` environment variables < `--override key=value` < explicit
//! flags such as `--seed`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Every setting the tool reads. Keys are dotted paths in `--override`
/// (`io.compression=none`) and use `__` in environment variables
/// (`CONCEPTLAB_IO__COMPRESSION=none`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Seed of every random number drawn.
    pub seed: u64,
    /// Worker threads; 0 uses one per core.
    pub threads: usize,
    /// Compute device of the models: `cpu`, `cuda`, `cuda:N` or `auto`
    /// (CUDA when built with the `cuda` feature and a GPU is present).
    pub device: conceptlab_nn::DeviceSpec,
    pub io: IoSettings,
    /// From stored expression to model features (`fit`, `demo`).
    pub preprocess: conceptlab_models::PreprocessConfig,
    /// The model `fit` trains (`model.kind`, or `fit --model-type`) and
    /// each kind's hyperparameters (`model.sccbgm.hidden_dim`, ...).
    pub model: conceptlab_models::ModelSettings,
    /// Optimisation and early stopping.
    pub train: conceptlab_models::TrainConfig,
    /// The flow-matching generator (`fit --generator fm`, `demo --flow`).
    pub flow: FlowSettings,
    /// How long jobs show progress (`--progress`).
    pub progress: ProgressSettings,
}

/// How training, preprocessing and edits show progress on stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProgressSettings {
    /// `auto` (a bar on a terminal, log lines otherwise), `bar`, `log` or
    /// `none`; the `--progress` flag overrides it.
    pub mode: ProgressMode,
    /// Seconds between two progress log lines (the first and the last
    /// update of a job are always logged).
    pub log_interval_s: f64,
}

impl Default for ProgressSettings {
    fn default() -> Self {
        ProgressSettings {
            mode: ProgressMode::Auto,
            log_interval_s: 10.0,
        }
    }
}

/// Longest interval between progress log lines accepted: a day.
pub const MAX_LOG_INTERVAL_S: f64 = 86_400.0;

/// Where progress goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, log lines otherwise.
    #[default]
    Auto,
    /// An indicatif bar (drawn only on a terminal).
    Bar,
    /// `tracing` INFO lines at a bounded rate, for batch jobs and log files.
    Log,
    /// Nothing.
    None,
}

/// The flow-matching generator's network and training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSettings {
    /// The known part of the flow's condition: `annotated` (the cells'
    /// annotations, predictions where missing; default) or `predicted`
    /// (the concept head's output, as the reference does).
    pub concepts: conceptlab_models::flow::cbm::ConceptSource,
    pub network: conceptlab_models::flow::FlowConfig,
    /// Defaults to the reference's flow training (lr 3e-4, batch 128).
    pub train: conceptlab_models::TrainConfig,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            concepts: Default::default(),
            network: conceptlab_models::flow::FlowConfig::default(),
            train: conceptlab_models::flow::default_flow_training(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoSettings {
    /// Compression of written .h5ad files: `gzip` or `none`.
    pub compression: CompressionSetting,
    /// Deflate level 1-9 when `compression = "gzip"`.
    pub gzip_level: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CompressionSetting {
    Gzip,
    None,
}

impl Default for IoSettings {
    fn default() -> Self {
        Self {
            compression: CompressionSetting::Gzip,
            gzip_level: 4,
        }
    }
}

impl IoSettings {
    /// The h5ad writer's options.
    pub fn write_options(&self) -> conceptlab_io::WriteOptions {
        conceptlab_io::WriteOptions {
            compression: match self.compression {
                CompressionSetting::Gzip => conceptlab_io::Compression::Gzip(self.gzip_level),
                CompressionSetting::None => conceptlab_io::Compression::None,
            },
        }
    }
}

impl Settings {
    /// The synthetic benchmark's run under these settings: combination 0,
    /// clean concepts, cell types as concepts, no flow; the preprocessing
    /// normalises to the benchmark's library size unless a target is set.
    pub fn benchmark_setup(&self) -> conceptlab_bench::Setup {
        conceptlab_bench::Setup {
            intervention: 0,
            corruption: None,
            cell_type_concepts: true,
            model: self.model.config(conceptlab_models::ModelKind::ScCbgm),
            bottleneck: true,
            train: self.train.clone(),
            flow: None,
            baselines: Vec::new(),
            seed: self.seed,
        }
    }

    /// The flow stage of a benchmark run under these settings.
    pub fn benchmark_flow(
        &self,
        solver: conceptlab_nn::ode::Solver,
        steps: usize,
        solver_study: bool,
    ) -> conceptlab_bench::FlowSetup {
        conceptlab_bench::FlowSetup {
            concepts: self.flow.concepts,
            config: self.flow.network.clone(),
            train: self.flow.train.clone(),
            solver,
            steps,
            solver_study,
        }
    }

    /// The synthetic suite of `preset` (optionally resized) under these
    /// settings' seed and preprocessing.
    pub fn benchmark_suite(
        &self,
        preset: &str,
        cells: Option<usize>,
        genes: Option<usize>,
    ) -> Result<conceptlab_bench::SyntheticSuite, conceptlab_bench::BenchError> {
        conceptlab_bench::SyntheticSuite::preset(
            preset,
            cells,
            genes,
            self.seed,
            &self.benchmark_preprocessing(),
        )
    }

    /// The benchmark's preprocessing under these settings.
    pub fn benchmark_preprocessing(&self) -> conceptlab_models::PreprocessConfig {
        conceptlab_bench::suite::synthetic_preprocessing(&self.preprocess)
    }
}

/// One line per configuration error in the user's terms: the dotted key,
/// what was expected in words, and where the value came from (never serde's
/// type names or figment's source locations).
fn describe(err: figment::Error, config: Option<&Path>) -> String {
    use figment::error::Kind;
    let parts: Vec<String> = err
        .into_iter()
        .map(|e| {
            let key = e
                .path
                .iter()
                .filter(|p| p.as_str() != "default")
                .map(|p| p.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            let what = match &e.kind {
                Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                    format!("expected {}, found {actual}", in_words(expected))
                }
                Kind::UnknownVariant(found, expected) => {
                    format!("`{found}` is not one of: {}", expected.join(", "))
                }
                Kind::UnknownField(found, expected) => format!(
                    "`{found}` is not a setting here (settings: {})",
                    expected.join(", ")
                ),
                other => other.to_string(),
            };
            let origin = match &e.metadata {
                Some(m) if m.name.contains("environment") => {
                    format!(
                        " (from the environment variable CONCEPTLAB_{})",
                        key.to_ascii_uppercase().replace('.', "__")
                    )
                }
                Some(m) if m.name.contains("TOML") => config
                    .map(|p| format!(" (in {})", p.display()))
                    .unwrap_or_default(),
                Some(_) => " (from --override)".to_string(),
                None => String::new(),
            };
            let key = if key.is_empty() {
                String::new()
            } else {
                format!("{key}: ")
            };
            format!("{key}{what}{origin}")
        })
        .collect();
    parts.join("; ")
}

/// serde's expectations ("usize", "a boolean") in plain words.
fn in_words(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a non-negative integer".into(),
        "isize" | "i64" | "i32" => "an integer".into(),
        "f64" | "f32" => "a number".into(),
        "bool" | "a boolean" => "true or false".into(),
        e if e.starts_with("struct ") => "a table of settings".into(),
        e => e.to_string(),
    }
}

/// Parses `key=value`; the value is read as a TOML value when it is one
/// (`3`, `true`, `"x"`, `[1, 2]`) and as a plain string otherwise. Integers
/// beyond TOML's i64 are kept as unsigned numbers, so that a bound rather
/// than a type error refuses `train.max_epochs=10000000000000000000`.
fn parse_override(raw: &str) -> Result<(String, figment::value::Value)> {
    let Some((key, value)) = raw.split_once('=') else {
        bail!("--override `{raw}`: expected KEY=VALUE, e.g. io.compression=none");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("--override `{raw}`: the key is empty");
    }
    let value = value.trim();
    if let Ok(big) = value.parse::<u64>() {
        return Ok((key.to_owned(), figment::value::Value::from(big)));
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let parsed = figment::value::Value::serialize(parsed)
        .map_err(|e| anyhow::anyhow!("--override `{raw}`: {e}"))?;
    Ok((key.to_owned(), parsed))
}

/// Resolves the settings from all layers.
pub fn load(config: Option<&Path>, overrides: &[String]) -> Result<Settings> {
    load_for(config, overrides, None)
}

/// [`load`], with `[train]` defaulting to the training of `kind` (the model
/// `fit --model-type` names), or of the settings' own `model.kind`: each
/// model trains as its reference does unless the user says otherwise.
pub fn load_for(
    config: Option<&Path>,
    overrides: &[String],
    kind: Option<conceptlab_models::ModelKind>,
) -> Result<Settings> {
    let first = layered(config, overrides, Settings::default())?;
    let kind = kind.unwrap_or(first.model.kind);
    let train = kind.default_train();
    if train == Settings::default().train {
        return Ok(first);
    }
    let base = Settings {
        train,
        ..Settings::default()
    };
    layered(config, overrides, base)
}

/// `base` < the TOML file < the environment < the overrides, checked.
fn layered(config: Option<&Path>, overrides: &[String], base: Settings) -> Result<Settings> {
    let mut figment = Figment::from(Serialized::defaults(base));
    if let Some(path) = config {
        if !path.is_file() {
            bail!("{}: configuration file not found", path.display());
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(environment());
    for raw in overrides {
        let (key, value) = parse_override(raw)?;
        figment = figment.merge(Serialized::default(&key, value));
    }
    let settings: Settings = figment
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {}", describe(e, config)))?;
    settings.validate()?;
    Ok(settings)
}

/// The top-level keys; a `CONCEPTLAB_*` variable naming anything else is
/// someone else's (a wrapper script's `CONCEPTLAB_HOME`) and is ignored
/// with a warning instead of breaking every command.
const SECTIONS: [&str; 9] = [
    "seed",
    "threads",
    "device",
    "io",
    "preprocess",
    "model",
    "train",
    "flow",
    "progress",
];

fn environment() -> Env {
    Env::prefixed("CONCEPTLAB_").split("__").filter(|key| {
        let top = key.as_str().split('.').next().unwrap_or_default();
        let known = SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(top));
        if !known {
            tracing::warn!(
                "ignoring the environment variable CONCEPTLAB_{}: not a setting (settings: {})",
                key.as_str().to_ascii_uppercase().replace('.', "__"),
                SECTIONS.join(", ")
            );
        }
        known
    })
}

/// Most worker threads accepted: far more than any machine's cores, few
/// enough that a typo does not spawn a hundred thousand threads.
pub const MAX_THREADS: usize = 1024;

impl Settings {
    /// Checks every range before any work starts, naming the key.
    pub fn validate(&self) -> Result<()> {
        let invalid = |key: &str, e: &dyn std::fmt::Display| {
            anyhow::anyhow!("invalid configuration: {key}.{e}")
        };
        if self.threads > MAX_THREADS {
            bail!(
                "invalid configuration: threads must be between 0 (one per core) and {MAX_THREADS}, got {}",
                self.threads
            );
        }
        if let conceptlab_nn::DeviceSpec::Cuda(n) = self.device
            && !conceptlab_nn::device::CUDA_BUILT
        {
            bail!(
                "invalid configuration: device cuda:{n} needs a build with the `cuda` feature \
                 (cargo build -p conceptlab-cli --features cuda); this one runs on the CPU only \
                 (device = cpu or auto)"
            );
        }
        if !(1..=9).contains(&self.io.gzip_level) {
            bail!(
                "invalid configuration: io.gzip_level must be between 1 and 9, got {}",
                self.io.gzip_level
            );
        }
        let interval = self.progress.log_interval_s;
        if !(interval > 0.0 && interval <= MAX_LOG_INTERVAL_S) {
            bail!(
                "invalid configuration: progress.log_interval_s must be a number of seconds in \
                 (0, {MAX_LOG_INTERVAL_S}], got {interval}"
            );
        }
        let plain = |e: conceptlab_models::ModelError| match e {
            conceptlab_models::ModelError::Config(reason) => reason,
            other => other.to_string(),
        };
        self.preprocess
            .validate()
            .map_err(|e| invalid("preprocess", &plain(e)))?;
        // Each kind's errors name its section (`scgen.hidden_dim ...`).
        self.model
            .validate()
            .map_err(|e| invalid("model", &plain(e)))?;
        self.train
            .validate()
            .map_err(|e| invalid("train", &plain(e)))?;
        self.flow
            .network
            .validate()
            .map_err(|e| invalid("flow.network", &plain(e)))?;
        self.flow
            .train
            .validate()
            .map_err(|e| invalid("flow.train", &plain(e)))?;
        Ok(())
    }
}

/// The settings as TOML, for `conceptlab-cli config`.
pub fn to_toml(settings: &Settings) -> Result<String> {
    toml::to_string_pretty(settings).context("cannot render the configuration as TOML")
}

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_models::ModelKind;

    /// `[train]` defaults to the kind's reference training; the user's
    /// values still win, and other kinds keep the house defaults.
    #[test]
    fn train_defaults_follow_the_model_kind() {
        let scgen = load_for(None, &[], Some(ModelKind::ScGen)).unwrap();
        assert_eq!(scgen.train, ModelKind::ScGen.default_train());
        assert_eq!((scgen.train.lr, scgen.train.batch_size), (1e-3, 128));
        let capped = load_for(
            None,
            &["train.max_epochs=3".to_string()],
            Some(ModelKind::ScGen),
        )
        .unwrap();
        assert_eq!(capped.train.max_epochs, 3);
        assert_eq!(capped.train.lr, 1e-3);
        let by_setting = load_for(None, &["model.kind=trvae".to_string()], None).unwrap();
        assert_eq!(by_setting.train.batch_size, 512);
        let plain = load(None, &[]).unwrap();
        assert_eq!(plain.train, conceptlab_models::TrainConfig::default());
    }

    #[test]
    fn overrides_parse_typed_values() {
        use figment::value::Value;
        let (key, value) = parse_override("seed=3").unwrap();
        assert_eq!(key, "seed");
        assert_eq!(value.to_u128(), Some(3));
        let (_, value) = parse_override("io.compression=none").unwrap();
        assert_eq!(value.as_str(), Some("none"));
        let (_, value) = parse_override("train.lr=0.5").unwrap();
        assert!(matches!(value, Value::Num(..)), "{value:?}");
        assert!(parse_override("novalue").is_err());
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "seed = 5\n[io]\ngzip_level = 7\n").unwrap();
        let s = load(Some(&path), &["io.gzip_level=2".into()]).unwrap();
        assert_eq!(s.seed, 5);
        assert_eq!(s.io.gzip_level, 2);
        assert_eq!(s.io.compression, CompressionSetting::Gzip);
    }

    #[test]
    fn progress_settings_layer_and_are_checked() {
        let s = load(
            None,
            &[
                "progress.mode=log".into(),
                "progress.log_interval_s=2.5".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.progress.mode, ProgressMode::Log);
        assert_eq!(s.progress.log_interval_s, 2.5);
        assert_eq!(
            load(None, &[]).unwrap().progress,
            ProgressSettings::default()
        );
        let err = load(None, &["progress.log_interval_s=0".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("progress.log_interval_s"), "{err}");
        assert!(load(None, &["progress.mode=loud".into()]).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = load(None, &["io.compresion=none".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("compresion"), "{err}");
        assert!(load(None, &["io.gzip_level=12".into()]).is_err());
    }
}
