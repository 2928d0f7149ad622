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
            train: self.train.clone(),
            flow: None,
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

/// Parses `key=value`; the value is read as a TOML value when it is one
/// (`3`, `true`, `"x"`, `[1, 2]`) and as a plain string otherwise.
fn parse_override(raw: &str) -> Result<(String, toml::Value)> {
    let Some((key, value)) = raw.split_once('=') else {
        bail!("--override `{raw}`: expected KEY=VALUE, e.g. io.compression=none");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("--override `{raw}`: the key is empty");
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    Ok((key.to_owned(), parsed))
}

/// Resolves the settings from all layers.
pub fn load(config: Option<&Path>, overrides: &[String]) -> Result<Settings> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = config {
        if !path.is_file() {
            bail!("{}: configuration file not found", path.display());
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("CONCEPTLAB_").split("__"));
    for raw in overrides {
        let (key, value) = parse_override(raw)?;
        figment = figment.merge(Serialized::default(&key, value));
    }
    let settings: Settings = figment.extract().map_err(|e| {
        let source = config.map_or_else(String::new, |p| format!(" (config file {})", p.display()));
        anyhow::anyhow!("invalid configuration{source}: {e}")
    })?;
    if !(1..=9).contains(&settings.io.gzip_level) {
        bail!(
            "invalid configuration: io.gzip_level must be between 1 and 9, found {}",
            settings.io.gzip_level
        );
    }
    Ok(settings)
}

/// The settings as TOML, for `conceptlab-cli config`.
pub fn to_toml(settings: &Settings) -> Result<String> {
    toml::to_string_pretty(settings).context("cannot render the configuration as TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_typed_values() {
        assert_eq!(
            parse_override("seed=3").unwrap(),
            ("seed".into(), toml::Value::Integer(3))
        );
        assert_eq!(
            parse_override("io.compression=none").unwrap(),
            ("io.compression".into(), toml::Value::String("none".into()))
        );
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
    fn unknown_keys_are_rejected() {
        let err = load(None, &["io.compresion=none".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("compresion"), "{err}");
        assert!(load(None, &["io.gzip_level=12".into()]).is_err());
    }
}
