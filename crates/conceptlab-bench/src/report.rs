//! What a benchmark reports: one score per method and run, result rows for
//! files and tables, and means over held-out combinations.

use serde::{Deserialize, Serialize};

use crate::Outcome;

/// How one method did on one run. Errors are mean squared differences per
/// cell and feature between edited cells and their exact counterfactual
/// twins, in the model's feature space (PC scores of log-normalised
/// expression).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    /// A stable id: the registry model's name, with the variant after a
    /// dash where one model gives several (`sccbgm-decoder`, `cbm-fm-decode`).
    pub method: String,
    /// How tables name it.
    pub label: String,
    /// Cell-level MSE to the twins.
    pub mse: f64,
    /// The part every cell shares: the squared distance of the edited cells'
    /// mean from the twins' (a method that moves the held-out cell type by
    /// the wrong amount shows it here); the rest is cell-to-cell.
    pub shared_mse: f64,
}

/// One number of a benchmark, as result files and tables hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    pub suite: String,
    /// The setting within the suite (e.g. a corruption scenario).
    pub setting: String,
    /// The held-out combination.
    pub held_out: String,
    pub seed: u64,
    pub method: String,
    pub metric: String,
    pub value: f64,
}

impl Outcome {
    /// The score of `method`, if the run has it.
    pub fn score(&self, method: &str) -> Option<&MethodScore> {
        self.methods.iter().find(|m| m.method == method)
    }

    /// Every number of the run as rows.
    pub fn rows(&self, suite: &str, setting: &str, seed: u64) -> Vec<ResultRow> {
        let held_out = format!("{} x {}", self.cell_type, self.concept);
        let row = |method: &str, metric: &str, value: f64| ResultRow {
            suite: suite.to_string(),
            setting: setting.to_string(),
            held_out: held_out.clone(),
            seed,
            method: method.to_string(),
            metric: metric.to_string(),
            value,
        };
        let mut rows = Vec::new();
        for m in &self.methods {
            rows.push(row(&m.method, "mse", m.mse));
            rows.push(row(&m.method, "shared_mse", m.shared_mse));
        }
        if let Some(a) = self.concept_auroc {
            rows.push(row("sccbgm", "concept_auroc", a));
        }
        if let Some(a) = self.target_auroc {
            rows.push(row("sccbgm", "target_auroc", a));
        }
        rows
    }
}

/// Each method's scores averaged over `outcomes` (each held-out combination
/// counts once, as in the paper's tables); methods missing from any run are
/// left out.
pub fn mean_scores(outcomes: &[Outcome]) -> Vec<MethodScore> {
    let Some(first) = outcomes.first() else {
        return Vec::new();
    };
    first
        .methods
        .iter()
        .filter_map(|m| {
            let all: Vec<&MethodScore> =
                outcomes.iter().filter_map(|o| o.score(&m.method)).collect();
            (all.len() == outcomes.len()).then(|| {
                let n = all.len() as f64;
                MethodScore {
                    method: m.method.clone(),
                    label: m.label.clone(),
                    mse: all.iter().map(|s| s.mse).sum::<f64>() / n,
                    shared_mse: all.iter().map(|s| s.shared_mse).sum::<f64>() / n,
                }
            })
        })
        .collect()
}

/// The mean of the `Some` values, when every outcome has one.
pub fn mean_of(outcomes: &[Outcome], value: impl Fn(&Outcome) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = outcomes.iter().filter_map(value).collect();
    (!v.is_empty() && v.len() == outcomes.len()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(method: &str, mse: f64, shared: f64) -> MethodScore {
        MethodScore {
            method: method.into(),
            label: method.to_uppercase(),
            mse,
            shared_mse: shared,
        }
    }

    fn outcome(methods: Vec<MethodScore>, auroc: Option<f64>) -> Outcome {
        Outcome {
            cell_type: "celltype_1".into(),
            concept: "concept_2".into(),
            corruption: "none".into(),
            n_train: 10,
            held_out_in_training: 0,
            n_edited: 3,
            n_features: 2,
            n_parameters: 5,
            methods,
            concept_auroc: auroc,
            target_auroc: None,
            flow: None,
            timings: Vec::new(),
            failures: Vec::new(),
            epochs: 1,
            best_epoch: 0,
            train_seconds: 0.1,
            cells_per_second: 100.0,
            top_genes: None,
        }
    }

    #[test]
    fn means_count_each_run_once_and_skip_methods_a_run_lacks() {
        let runs = [
            outcome(vec![score("a", 1.0, 0.5), score("b", 2.0, 1.0)], Some(0.8)),
            outcome(vec![score("a", 3.0, 1.5)], Some(0.6)),
        ];
        let means = mean_scores(&runs);
        assert_eq!(means, vec![score("a", 2.0, 1.0)]);
        assert_eq!(mean_of(&runs, |o| o.concept_auroc), Some(0.7));
        assert_eq!(mean_of(&runs, |o| o.target_auroc), None);
        assert!(mean_scores(&[]).is_empty());
    }

    #[test]
    fn rows_hold_every_score_of_a_run() {
        let run = outcome(vec![score("a", 1.0, 0.5)], Some(0.8));
        let rows = run.rows("synthetic", "clean", 7);
        let got: Vec<(&str, &str, f64)> = rows
            .iter()
            .map(|r| (r.method.as_str(), r.metric.as_str(), r.value))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "mse", 1.0),
                ("a", "shared_mse", 0.5),
                ("sccbgm", "concept_auroc", 0.8)
            ]
        );
        assert!(rows.iter().all(|r| r.seed == 7
            && r.suite == "synthetic"
            && r.setting == "clean"
            && r.held_out == "celltype_1 x concept_2"));
    }
}
