//! What one run of the benchmark computes on a synthetic suite: one model,
//! one held-out combination, one seed, through the protocol
//! ([`crate::protocol::run`]), keeping that model's rows; and the suites
//! those runs share, generated once and dropped after their last run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use conceptlab_models::registry::{self, KINDS, ModelConfig, ModelKind};
use serde::Serialize;

use crate::BenchError;
use crate::protocol::{Baseline, FlowSetup, Setup};
use crate::runner::{RunRecord, RunSpec, VERSION};
use crate::suite::SyntheticSuite;
use conceptlab_models::PreprocessConfig;

/// The bound that reads the answer (every cell shifted by the true mean
/// effect): scored like a model, though no registry model.
pub const ORACLE: &str = "oracle-shift";

/// How the protocol scores a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// scCBGM itself: rows `sccbgm` (residual kept), `sccbgm-decoder`.
    Bottleneck,
    /// CBM-FM (scCBGM + the flow stage): rows `cbm-fm-edit`, `cbm-fm-decode`.
    Flow,
    /// A row every run scores without training (`copy`, `mean-shift`,
    /// [`ORACLE`]).
    BuiltIn,
    /// Any other registry kind, fitted as a [`Baseline`].
    Baseline(ModelKind),
}

/// A model a benchmark runs, by the name its rows and files carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchModel {
    pub name: String,
    pub role: Role,
}

impl BenchModel {
    /// The model a user names (a registry name or [`ORACLE`]); aliases of
    /// one model (`vanilla-fm` for `raw-fm`, `mixed-cbm-fm` for `cbm-fm`)
    /// resolve to one name.
    pub fn named(name: &str) -> Result<Self, BenchError> {
        if name == ORACLE {
            return Ok(BenchModel {
                name: ORACLE.into(),
                role: Role::BuiltIn,
            });
        }
        let info = registry::lookup(name)?;
        let (name, role) = match (info.generator, info.kind) {
            (Some(_), _) => ("cbm-fm", Role::Flow),
            (None, ModelKind::ScCbgm) => ("sccbgm", Role::Bottleneck),
            (None, k @ (ModelKind::Copy | ModelKind::MeanShift)) => (k.name(), Role::BuiltIn),
            (None, k) => (k.name(), Role::Baseline(k)),
        };
        Ok(BenchModel {
            name: name.into(),
            role,
        })
    }

    /// The rows of a protocol outcome that are this model's.
    pub fn owns(&self, method: &str) -> bool {
        match self.role {
            Role::Bottleneck => method == "sccbgm" || method == "sccbgm-decoder",
            Role::Flow => method == "cbm-fm-edit" || method == "cbm-fm-decode",
            Role::BuiltIn | Role::Baseline(_) => method == self.name,
        }
    }
}

/// Every model of the registry once (aliases left out), in the registry's
/// order, with [`ORACLE`] after the trivial predictors.
pub fn all_models() -> Vec<BenchModel> {
    let mut out: Vec<BenchModel> = Vec::new();
    for info in KINDS {
        let Ok(m) = BenchModel::named(info.name) else {
            continue;
        };
        if out.contains(&m) {
            continue;
        }
        let after = m.name == "mean-shift";
        out.push(m);
        if after {
            out.push(BenchModel {
                name: ORACLE.into(),
                role: Role::BuiltIn,
            });
        }
    }
    out
}

/// The protocol setup that scores `model` in run `spec`: `base` (scCBGM's
/// configuration, training, cell-type concepts), with the bottleneck only
/// where the model needs it, the flow stage only for CBM-FM, and the model
/// as the one baseline otherwise.
pub fn setup_for(
    model: &BenchModel,
    base: &Setup,
    flow: &FlowSetup,
    baseline: Option<(ModelConfig, conceptlab_models::TrainConfig)>,
    spec: &RunSpec,
) -> Result<Setup, BenchError> {
    let mut setup = Setup {
        intervention: spec.combination,
        seed: spec.seed,
        bottleneck: false,
        flow: None,
        baselines: Vec::new(),
        ..base.clone()
    };
    match model.role {
        Role::Bottleneck => setup.bottleneck = true,
        Role::Flow => {
            setup.bottleneck = true;
            setup.flow = Some(flow.clone());
        }
        Role::BuiltIn => {}
        Role::Baseline(kind) => {
            let (config, train) = baseline.ok_or_else(|| {
                BenchError::Protocol(format!("no configuration for {}", model.name))
            })?;
            if config.kind() != kind {
                return Err(BenchError::Protocol(format!(
                    "{} was given the configuration of {}",
                    model.name,
                    config.kind().name()
                )));
            }
            setup.baselines.push(Baseline { config, train });
        }
    }
    Ok(setup)
}

/// Runs `setup` (from [`setup_for`]) on `suite` and keeps `model`'s rows.
pub fn synthetic_run(
    suite: &SyntheticSuite,
    spec: &RunSpec,
    model: &BenchModel,
    setup: &Setup,
) -> Result<RunRecord, BenchError> {
    let started = Instant::now();
    let outcome = crate::protocol::run(suite, setup, &mut |_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    let scores: Vec<_> = outcome
        .methods
        .iter()
        .filter(|m| model.owns(&m.method))
        .cloned()
        .collect();
    let failures: Vec<_> = outcome
        .failures
        .iter()
        .filter(|f| model.owns(&f.method))
        .cloned()
        .collect();
    if scores.is_empty() && failures.is_empty() {
        return Err(BenchError::Protocol(format!(
            "the protocol scored no row of {}",
            model.name
        )));
    }
    let mut metrics = Vec::new();
    let mut timings = Vec::new();
    match model.role {
        Role::Bottleneck => {
            metrics.extend(
                outcome
                    .concept_auroc
                    .map(|a| ("concept_auroc".to_string(), a)),
            );
            metrics.extend(
                outcome
                    .target_auroc
                    .map(|a| ("target_auroc".to_string(), a)),
            );
            timings.push(("fit".to_string(), outcome.train_seconds));
        }
        Role::Flow => {
            if let Some(f) = &outcome.flow {
                timings.push(("fit".to_string(), outcome.train_seconds + f.train_seconds));
            }
        }
        Role::BuiltIn => {}
        Role::Baseline(_) => {
            for t in outcome.timings.iter().filter(|t| model.owns(&t.method)) {
                timings.push(("fit".to_string(), t.fit_seconds));
                timings.push(("edit".to_string(), t.edit_seconds));
            }
        }
    }
    let top_genes = outcome.top_genes.clone().map(|mut t| {
        t.methods.retain(|(m, _)| model.owns(m));
        t
    });
    let mut details = serde_json::to_value(&outcome)
        .map_err(|e| BenchError::Store(format!("cannot encode run {}: {e}", spec.id())))?;
    if let Some(map) = details.as_object_mut() {
        // Kept once, in the record's own fields.
        map.remove("top_genes");
    }
    Ok(RunRecord {
        spec: spec.clone(),
        version: VERSION.to_string(),
        held_out: format!("{} x {}", outcome.cell_type, outcome.concept),
        scores,
        metrics,
        top_genes,
        failures,
        seconds,
        timings,
        details,
    })
}

/// Which synthetic data a run uses: a preset, optionally resized, under a
/// seed (the runs of one seed share one data set and one PCA).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SuiteKey {
    pub preset: String,
    pub cells: Option<usize>,
    pub genes: Option<usize>,
    pub seed: u64,
}

type Slot = Arc<Mutex<Option<Arc<SyntheticSuite>>>>;

/// Synthetic suites shared by the runs of a plan: each generated on first
/// use (concurrent users of one suite wait for one generation) and dropped
/// after the last run that needs it, so a plan over many data sets and
/// seeds holds only the suites in use.
pub struct SuiteCache {
    preprocess: PreprocessConfig,
    slots: Mutex<HashMap<SuiteKey, (Slot, usize)>>,
}

impl SuiteCache {
    /// A cache for runs that will ask for `uses` (one entry per run, in
    /// any order), all preprocessed with `preprocess`.
    pub fn new(preprocess: PreprocessConfig, uses: impl IntoIterator<Item = SuiteKey>) -> Self {
        let mut slots: HashMap<SuiteKey, (Slot, usize)> = HashMap::new();
        for key in uses {
            slots.entry(key).or_default().1 += 1;
        }
        SuiteCache {
            preprocess,
            slots: Mutex::new(slots),
        }
    }

    fn slot(&self, key: &SuiteKey) -> Result<Slot, BenchError> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .get(key)
            .map(|(s, _)| s.clone())
            .ok_or_else(|| BenchError::Protocol(format!("no run of the plan uses {key:?}")))
    }

    /// The suite of `key`, generated if it is not held.
    pub fn get(&self, key: &SuiteKey) -> Result<Arc<SyntheticSuite>, BenchError> {
        let slot = self.slot(key)?;
        let mut held = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = held.as_ref() {
            return Ok(s.clone());
        }
        let suite = Arc::new(SyntheticSuite::preset(
            &key.preset,
            key.cells,
            key.genes,
            key.seed,
            &self.preprocess,
        )?);
        *held = Some(suite.clone());
        Ok(suite)
    }

    /// One run of `key` is done; the suite is dropped after the last.
    pub fn release(&self, key: &SuiteKey) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((slot, remaining)) = slots.get_mut(key) {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
    }

    /// Whether the suite of `key` is held now.
    pub fn holds(&self, key: &SuiteKey) -> bool {
        self.slot(key)
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).is_some())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_models::{ScCbgmConfig, TrainConfig};

    #[test]
    fn names_resolve_to_one_model_each() {
        let names: Vec<String> = all_models().into_iter().map(|m| m.name).collect();
        assert_eq!(&names[..2], ["sccbgm", "cbm-fm"]);
        assert!(names.contains(&"raw-fm".to_string()));
        assert!(!names.contains(&"vanilla-fm".to_string()));
        assert!(!names.contains(&"mixed-cbm-fm".to_string()));
        let at = names.iter().position(|n| n == "mean-shift").unwrap();
        assert_eq!(names[at + 1], ORACLE);
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert_eq!(BenchModel::named("vanilla-fm").unwrap().name, "raw-fm");
        assert!(BenchModel::named("no-such-model").is_err());
        let sccbgm = BenchModel::named("sccbgm").unwrap();
        assert!(sccbgm.owns("sccbgm-decoder") && !sccbgm.owns("copy"));
    }

    fn small() -> (Setup, FlowSetup, PreprocessConfig) {
        let base = Setup {
            intervention: 0,
            corruption: None,
            cell_type_concepts: true,
            model: ModelConfig::ScCbgm(ScCbgmConfig {
                hidden_dim: 16,
                latent_dim: 8,
                n_unknown: 8,
                ..ScCbgmConfig::default()
            }),
            bottleneck: true,
            train: TrainConfig {
                max_epochs: 2,
                ..TrainConfig::default()
            },
            flow: None,
            baselines: Vec::new(),
            seed: 0,
        };
        let flow = FlowSetup {
            concepts: conceptlab_models::flow::cbm::ConceptSource::Annotated,
            config: conceptlab_models::flow::FlowConfig::default(),
            train: TrainConfig {
                max_epochs: 1,
                ..TrainConfig::default()
            },
            solver: conceptlab_nn::ode::Solver::Euler,
            steps: 2,
            solver_study: false,
        };
        let pre = PreprocessConfig {
            n_pcs: Some(6),
            ..PreprocessConfig::default()
        };
        (base, flow, pre)
    }

    fn spec(model: &str, seed: u64) -> RunSpec {
        RunSpec {
            suite: "test".into(),
            dataset: "synthetic_1".into(),
            combination: 1,
            model: model.into(),
            seed,
            config: serde_json::Value::Null,
        }
    }

    /// A model's run keeps its own rows only, and a trivial model's row is
    /// bit-identical to the same row of a full protocol run (the other
    /// models' presence changes nothing about it).
    #[test]
    fn a_run_keeps_its_models_rows_and_matches_the_full_protocol() {
        let (base, flow, pre) = small();
        let key = SuiteKey {
            preset: "synthetic_1".into(),
            cells: Some(400),
            genes: Some(30),
            seed: 2,
        };
        let cache = SuiteCache::new(
            crate::suite::synthetic_preprocessing(&pre),
            [key.clone(), key.clone()],
        );
        let suite = cache.get(&key).unwrap();
        let full = crate::protocol::run(
            &suite,
            &Setup {
                intervention: 1,
                seed: 2,
                ..base.clone()
            },
            &mut |_| {},
        )
        .unwrap();
        for name in ["mean-shift", "nearest", "sccbgm"] {
            let model = BenchModel::named(name).unwrap();
            let s = spec(name, 2);
            let baseline = match model.role {
                Role::Baseline(k) => Some((
                    conceptlab_models::ModelSettings::default().config(k),
                    k.default_train(),
                )),
                _ => None,
            };
            let setup = setup_for(&model, &base, &flow, baseline, &s).unwrap();
            let record = synthetic_run(&suite, &s, &model, &setup).unwrap();
            assert!(record.scores.iter().all(|m| model.owns(&m.method)));
            let top = record.top_genes.as_ref().unwrap();
            assert_eq!(top.genes.len(), top.truth.len());
            assert!(
                top.methods
                    .iter()
                    .all(|(m, v)| model.owns(m) && v.len() == top.genes.len())
            );
            if name != "nearest" {
                for score in &record.scores {
                    let same = full.score(&score.method).unwrap();
                    assert_eq!(score.mse.to_bits(), same.mse.to_bits(), "{name}");
                }
            }
            if name == "sccbgm" {
                assert_eq!(record.scores.len(), 2);
                assert!(record.metrics.iter().any(|(m, _)| m == "concept_auroc"));
            }
        }
        cache.release(&key);
        assert!(cache.holds(&key));
        cache.release(&key);
        assert!(!cache.holds(&key));
    }
}
