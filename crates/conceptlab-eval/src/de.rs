//! Differential expression: Wilcoxon rank-sum tests per gene,
//! Benjamini-Hochberg adjustment, and scCBGM's DE recall.

use rayon::prelude::*;

use crate::EvalError;
use crate::points::{Points, same_dims};

/// One gene's test of a group against the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneTest {
    /// Standardised rank sum of the group (positive: higher in the group).
    pub z: f64,
    /// Two-sided p-value from the normal approximation.
    pub p: f64,
    /// `log2((expm1(mean_group) + 1e-9) / (expm1(mean_rest) + 1e-9))`, for
    /// log1p-normalised values.
    pub log2_fold_change: f64,
}

/// The Wilcoxon rank-sum test (normal approximation, no continuity
/// correction) of `group` against `rest`, per gene, as scanpy's
/// `rank_genes_groups(method="wilcoxon")` computes it: average ranks over
/// both groups, `z = (R₁ − n₁(N+1)/2) / sqrt(n₁ n₀ (N+1)/12 · T)` with the tie
/// factor `T = 1 − Σ(t³ − t)/(N³ − N)` when `tie_correct` (1 otherwise), and
/// `p = 2(1 − Φ(|z|))`. A gene constant across all cells gets `z = 0, p = 1`.
pub fn wilcoxon_rank_sum(
    group: &Points,
    rest: &Points,
    tie_correct: bool,
) -> Result<Vec<GeneTest>, EvalError> {
    same_dims(group, "group", rest, "rest")?;
    let (n1, n0) = (group.rows(), rest.rows());
    if n1 == 0 || n0 == 0 {
        return Err(EvalError::TooFewCells {
            what: "Wilcoxon test (each side)".into(),
            needed: 1,
            found: n1.min(n0),
        });
    }
    let n = (n1 + n0) as f64;
    Ok((0..group.cols())
        .into_par_iter()
        .map(|g| {
            let mut values: Vec<(f64, bool)> = (0..n1)
                .map(|i| (group.row(i)[g], true))
                .chain((0..n0).map(|i| (rest.row(i)[g], false)))
                .collect();
            values.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut rank_sum = 0.0;
            let mut ties = 0.0;
            let mut i = 0;
            while i < values.len() {
                let mut j = i;
                while j + 1 < values.len() && values[j + 1].0 == values[i].0 {
                    j += 1;
                }
                let t = (j - i + 1) as f64;
                let average_rank = (i + j) as f64 / 2.0 + 1.0;
                rank_sum += average_rank * values[i..=j].iter().filter(|v| v.1).count() as f64;
                ties += t * t * t - t;
                i = j + 1;
            }
            let tie_factor = if tie_correct {
                1.0 - ties / (n * n * n - n)
            } else {
                1.0
            };
            let sd = (n1 as f64 * n0 as f64 * (n + 1.0) / 12.0 * tie_factor).sqrt();
            let z = if sd > 0.0 {
                (rank_sum - n1 as f64 * (n + 1.0) / 2.0) / sd
            } else {
                0.0
            };
            let p = libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
            let mean = |pts: &Points| {
                (0..pts.rows()).map(|i| pts.row(i)[g]).sum::<f64>() / pts.rows() as f64
            };
            let lfc = ((mean(group).exp_m1() + 1e-9) / (mean(rest).exp_m1() + 1e-9)).log2();
            GeneTest {
                z,
                p,
                log2_fold_change: lfc,
            }
        })
        .collect())
}

/// Benjamini-Hochberg adjusted p-values (`q_(i) = min_{j≥i} min(1, p_(j) G / j)`),
/// in the input order; NaN p-values count as 1.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let g = p.len();
    let mut order: Vec<usize> = (0..g).collect();
    let clean = |x: f64| if x.is_nan() { 1.0 } else { x };
    order.sort_by(|&a, &b| clean(p[a]).total_cmp(&clean(p[b])));
    let mut q = vec![0.0; g];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running
            .min(clean(p[i]) * g as f64 / (rank + 1) as f64)
            .min(1.0);
        q[i] = running;
    }
    q
}

/// scCBGM's DE recall: how many of the genes truly
/// differentially expressed between the target and the base cells are also
/// called between the prediction and the base cells, per direction.
#[derive(Debug, Clone, PartialEq)]
pub struct DeRecall {
    /// Share of truly up-regulated genes also up in the prediction; `None`
    /// when no gene is truly up (the reference reported 0 via a `+1e-8`).
    pub recall_up: Option<f64>,
    pub recall_down: Option<f64>,
    pub n_true_up: usize,
    pub n_true_down: usize,
    pub n_predicted_up: usize,
    pub n_predicted_down: usize,
}

/// Thresholds on BH-adjusted p-values: scCBGM calls true DE at `q < 0.001`
/// and predicted DE at `q < 0.05` (deliberately asymmetric in the reference).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeThresholds {
    pub true_q: f64,
    pub predicted_q: f64,
    pub tie_correct: bool,
}

impl Default for DeThresholds {
    fn default() -> Self {
        Self {
            true_q: 0.001,
            predicted_q: 0.05,
            tie_correct: true,
        }
    }
}

pub fn de_recall(
    base: &Points,
    target: &Points,
    prediction: &Points,
    t: DeThresholds,
) -> Result<DeRecall, EvalError> {
    let calls = |group: &Points, threshold: f64| -> Result<(Vec<bool>, Vec<bool>), EvalError> {
        let tests = wilcoxon_rank_sum(group, base, t.tie_correct)?;
        let q = benjamini_hochberg(&tests.iter().map(|x| x.p).collect::<Vec<_>>());
        let up = tests
            .iter()
            .zip(&q)
            .map(|(x, &q)| q < threshold && x.log2_fold_change > 0.0)
            .collect();
        let down = tests
            .iter()
            .zip(&q)
            .map(|(x, &q)| q < threshold && x.log2_fold_change < 0.0)
            .collect();
        Ok((up, down))
    };
    let (true_up, true_down) = calls(target, t.true_q)?;
    let (pred_up, pred_down) = calls(prediction, t.predicted_q)?;
    let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
    let recall = |truth: &[bool], pred: &[bool]| {
        let n = count(truth);
        (n > 0)
            .then(|| truth.iter().zip(pred).filter(|(a, b)| **a && **b).count() as f64 / n as f64)
    };
    Ok(DeRecall {
        recall_up: recall(&true_up, &pred_up),
        recall_down: recall(&true_down, &pred_down),
        n_true_up: count(&true_up),
        n_true_down: count(&true_down),
        n_predicted_up: count(&pred_up),
        n_predicted_down: count(&pred_down),
    })
}
