//! How well predicted concept probabilities recover binary concept labels.

use crate::EvalError;

/// Metrics of one concept.
#[derive(Debug, Clone, PartialEq)]
pub struct ConceptScore {
    /// Share of cells whose thresholded prediction (`p >= 0.5`) is right.
    pub accuracy: f64,
    /// Binary F1 at the 0.5 threshold; `None` unless both classes occur.
    pub f1: Option<f64>,
    /// Area under the ROC curve (ties counted half, as the Mann-Whitney
    /// statistic and scikit-learn's `roc_auc_score`); `None` unless both
    /// classes occur.
    pub auroc: Option<f64>,
    /// Trapezoidal area under scikit-learn's precision-recall curve (what the
    /// reference reports, not average precision); `None` unless both classes occur.
    pub auprc: Option<f64>,
}

/// Scores one concept: `truth` in {0, 1}, `probability` in [0, 1].
pub fn concept_score(truth: &[u8], probability: &[f64]) -> Result<ConceptScore, EvalError> {
    if truth.len() != probability.len() || truth.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{} labels for {} predictions (need the same, non-zero number)",
            truth.len(),
            probability.len()
        )));
    }
    if let Some(i) = probability.iter().position(|p| !p.is_finite()) {
        return Err(EvalError::NonFinite {
            what: "concept probabilities".into(),
            row: i,
            col: 0,
        });
    }
    if let Some(&bad) = truth.iter().find(|&&t| t > 1) {
        return Err(EvalError::Invalid(format!(
            "concept labels must be 0 or 1, found {bad}"
        )));
    }
    let n = truth.len();
    let predicted: Vec<bool> = probability.iter().map(|&p| p >= 0.5).collect();
    let correct = truth
        .iter()
        .zip(&predicted)
        .filter(|(t, p)| (**t == 1) == **p)
        .count();
    let positives = truth.iter().filter(|&&t| t == 1).count();
    let both = positives > 0 && positives < n;
    let f1 = both.then(|| {
        let tp = truth
            .iter()
            .zip(&predicted)
            .filter(|(t, p)| **t == 1 && **p)
            .count() as f64;
        let fp = truth
            .iter()
            .zip(&predicted)
            .filter(|(t, p)| **t == 0 && **p)
            .count() as f64;
        let fn_ = positives as f64 - tp;
        if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fn_)
        }
    });
    Ok(ConceptScore {
        accuracy: correct as f64 / n as f64,
        f1,
        auroc: both.then(|| auroc(truth, probability)),
        auprc: both.then(|| auprc(truth, probability)),
    })
}

/// Scores descending, grouped into runs of equal score: `(tp, fp)` after each run.
fn cumulative_counts(truth: &[u8], score: &[f64]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..truth.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if truth[i] == 1 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_run = k + 1 == order.len() || score[order[k + 1]] != score[i];
        if last_of_run {
            out.push((tp, fp));
        }
    }
    out
}

fn auroc(truth: &[u8], score: &[f64]) -> f64 {
    let counts = cumulative_counts(truth, score);
    let (p, n) = counts.last().copied().unwrap_or((1.0, 1.0));
    let mut area = 0.0;
    let (mut tp0, mut fp0) = (0.0, 0.0);
    for &(tp, fp) in &counts {
        area += (fp - fp0) * (tp + tp0) / 2.0;
        (tp0, fp0) = (tp, fp);
    }
    area / (p * n)
}

fn auprc(truth: &[u8], score: &[f64]) -> f64 {
    // scikit-learn's precision_recall_curve: one point per distinct threshold
    // (highest score first), then (recall 0, precision 1); trapezoid in recall.
    let counts = cumulative_counts(truth, score);
    let positives = counts.last().map_or(1.0, |c| c.0);
    let mut points: Vec<(f64, f64)> = vec![(0.0, 1.0)];
    for &(tp, fp) in &counts {
        points.push((tp / positives, tp / (tp + fp)));
        if tp == positives {
            break; // scikit-learn stops at full recall
        }
    }
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}
