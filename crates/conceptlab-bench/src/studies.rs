//! Studies built on the protocol: the paper's noisy-concept robustness
//! study and the flow-matching study over seeds.

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
