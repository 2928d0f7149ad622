//! Studies built on the protocol: the paper's noisy-concept robustness
//! study (for any bottleneck model of the registry, over seeds) and the
//! flow-matching study over seeds.

use conceptlab_models::ModelConfig;
use conceptlab_synth::{Amount, Corruption};
use serde::Serialize;

use crate::report::{MethodScore, mean_of, mean_scores};
use crate::suite::SyntheticSuite;
use crate::{BenchError, Outcome, Setup, run};

/// The paper's noisy-annotation scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoisyConcepts {
    /// Concept columns removed.
    Missing,
    /// Random columns added.
    Irrelevant,
    /// Entries of columns flipped at random.
    Incorrect,
    /// Columns copied.
    Duplicated,
}

impl NoisyConcepts {
    pub const ALL: [NoisyConcepts; 4] = [
        NoisyConcepts::Incorrect,
        NoisyConcepts::Irrelevant,
        NoisyConcepts::Missing,
        NoisyConcepts::Duplicated,
    ];

    /// The corruption of the training concepts, touching `n_mod` columns
    /// (never the edited one).
    pub fn corruption(self, n_mod: usize) -> (Corruption, Amount) {
        let kind = match self {
            NoisyConcepts::Missing => Corruption::Drop,
            NoisyConcepts::Irrelevant => Corruption::Add { p_active: 0.5 },
            NoisyConcepts::Incorrect => Corruption::Noise { p_noise: 0.5 },
            NoisyConcepts::Duplicated => Corruption::Duplicate { n_replica: 1 },
        };
        (kind, Amount::Count(n_mod))
    }

    pub fn label(self) -> &'static str {
        match self {
            NoisyConcepts::Missing => "missing",
            NoisyConcepts::Irrelevant => "irrelevant",
            NoisyConcepts::Incorrect => "incorrect",
            NoisyConcepts::Duplicated => "duplicated",
        }
    }
}

/// One scenario of the robustness study.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    /// Each method's error averaged over the held-out combinations.
    pub means: Vec<MethodScore>,
    pub concept_auroc: Option<f64>,
    pub runs: Vec<Outcome>,
}

/// Runs the clean setup and every [`NoisyConcepts`] scenario on each of
/// `interventions`, each with its own model. `progress` hears of each run
/// (scenario, combination) as it finishes.
pub fn robustness(
    suite: &SyntheticSuite,
    base: &Setup,
    interventions: &[usize],
    n_mod: usize,
    progress: &mut dyn FnMut(&str, usize, &Outcome),
) -> Result<Vec<ScenarioResult>, BenchError> {
    let scenarios = std::iter::once(("clean", None)).chain(
        NoisyConcepts::ALL
            .iter()
            .map(|s| (s.label(), Some(s.corruption(n_mod)))),
    );
    let mut out = Vec::new();
    for (label, corruption) in scenarios {
        let mut runs = Vec::new();
        for &intervention in interventions {
            let setup = Setup {
                intervention,
                corruption,
                ..base.clone()
            };
            let outcome = run(suite, &setup, &mut |_| {})?;
            progress(label, intervention, &outcome);
            runs.push(outcome);
        }
        out.push(ScenarioResult {
            scenario: label.to_string(),
            means: mean_scores(&runs),
            concept_auroc: mean_of(&runs, |o| o.concept_auroc),
            runs,
        });
    }
    Ok(out)
}

/// One bottleneck model's robustness study over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRobustness {
    /// The registry kind's name (`sccbgm`, `cbgm`).
    pub model: String,
    pub config: ModelConfig,
    /// Per scenario, each method's error (mean over the held-out
    /// combinations of one seed) as mean ± sd over seeds. The protocol's
    /// `sccbgm` / `sccbgm-decoder` rows are the model under study; here they
    /// are named after it (`cbgm`, `cbgm-decoder`).
    pub scenarios: Vec<ScenarioSpread>,
    /// The full study of each seed, as [`robustness`] returns it.
    pub seeds: Vec<(u64, Vec<ScenarioResult>)>,
}

/// One scenario's errors over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSpread {
    pub scenario: String,
    pub methods: Vec<Spread>,
}

/// [`robustness`] for each bottleneck model `models` (registry configs, put
/// into `base`) and each model seed of `seeds`, on one suite (the data are
/// the same for every seed; the seed fixes weights, batches and the
/// corruptions). `progress` hears of each run (model, seed, scenario,
/// combination).
pub fn robustness_by_model(
    suite: &SyntheticSuite,
    base: &Setup,
    models: &[ModelConfig],
    seeds: &[u64],
    interventions: &[usize],
    n_mod: usize,
    progress: &mut dyn FnMut(&str, u64, &str, usize, &Outcome),
) -> Result<Vec<ModelRobustness>, BenchError> {
    let mut out = Vec::new();
    for model in models {
        let name = model.kind().name();
        let mut per_seed = Vec::new();
        for &seed in seeds {
            let setup = Setup {
                model: model.clone(),
                seed,
                ..base.clone()
            };
            let scenarios = robustness(suite, &setup, interventions, n_mod, &mut |s, iv, o| {
                progress(name, seed, s, iv, o)
            })?;
            per_seed.push((seed, scenarios));
        }
        out.push(ModelRobustness {
            model: name.to_string(),
            config: model.clone(),
            scenarios: spread_over_seeds(&per_seed, name),
            seeds: per_seed,
        });
    }
    Ok(out)
}

/// Each scenario's method means, as mean ± sd over the seeds' studies.
fn spread_over_seeds(per_seed: &[(u64, Vec<ScenarioResult>)], model: &str) -> Vec<ScenarioSpread> {
    let Some((_, first)) = per_seed.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, scenario)| ScenarioSpread {
            scenario: scenario.scenario.clone(),
            methods: scenario
                .means
                .iter()
                .map(|m| {
                    let values: Vec<f64> = per_seed
                        .iter()
                        .filter_map(|(_, s)| s.get(i))
                        .filter_map(|s| s.means.iter().find(|x| x.method == m.method))
                        .map(|x| x.mse)
                        .collect();
                    let (mean, sd) = mean_sd(&values);
                    let method = match m.method.strip_prefix("sccbgm") {
                        Some(rest) => format!("{model}{rest}"),
                        None => m.method.clone(),
                    };
                    Spread {
                        method,
                        label: if model == "sccbgm" {
                            m.label.clone()
                        } else {
                            m.label.replace("scCBGM", &model.to_uppercase())
                        },
                        mean,
                        sd,
                        values,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Mean and sample standard deviation of a method's error over runs.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub method: String,
    pub label: String,
    pub mean: f64,
    pub sd: f64,
    pub values: Vec<f64>,
}

/// A metric of every method over runs: mean ± sd, in the order of the
/// first run's methods (methods missing from a run are left out of it).
pub fn spread(runs: &[Outcome], metric: impl Fn(&MethodScore) -> f64) -> Vec<Spread> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .methods
        .iter()
        .map(|m| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|o| o.score(&m.method).map(&metric))
                .collect();
            let (mean, sd) = mean_sd(&values);
            Spread {
                method: m.method.clone(),
                label: m.label.clone(),
                mean,
                sd,
                values,
            }
        })
        .collect()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}
