//! Metrics on per-gene means and on mean shifts (deltas to control), and the
//! cell-level error to paired ground truth.

use std::collections::{HashMap, HashSet};

use crate::EvalError;
use crate::points::{Points, same_dims, squared_distance};

/// Per-gene summaries of a prediction against the truth, given controls.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanMetrics {
    /// scGen's R²: the squared Pearson correlation of the per-gene means.
    pub r2_pearson_means: f64,
    /// CPA's R²: scikit-learn `r2_score(mean(truth), mean(prediction))`,
    /// `1 − SS_res / SS_tot` (can be negative).
    pub r2_score_means: f64,
    /// Pearson correlation of `mean(truth) − mean(control)` and
    /// `mean(prediction) − mean(control)`.
    pub pearson_delta: f64,
    pub mse_means: f64,
    pub mae_means: f64,
    /// MSE / MAE of the deltas. The control mean cancels, so they equal
    /// those of the means; they are kept under cell-eval's names.
    pub mse_delta: f64,
    pub mae_delta: f64,
}

fn pearson(a: &[f64], b: &[f64]) -> Result<f64, EvalError> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        return Err(EvalError::Invalid(
            "Pearson correlation of a constant vector is undefined".into(),
        ));
    }
    Ok(cov / (va.sqrt() * vb.sqrt()))
}

/// scikit-learn's `r2_score(truth, prediction)`.
fn r2_score(truth: &[f64], prediction: &[f64]) -> Result<f64, EvalError> {
    let n = truth.len() as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_tot: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    let ss_res: f64 = truth
        .iter()
        .zip(prediction)
        .map(|(t, p)| (t - p).powi(2))
        .sum();
    if ss_tot == 0.0 {
        return Err(EvalError::Invalid(
            "R² is undefined when the true means are constant".into(),
        ));
    }
    Ok(1.0 - ss_res / ss_tot)
}

/// The squared distance of the per-gene means, averaged over genes: the
/// part of the cell-level MSE of paired predictions that every cell
/// shares (the rest is cell-to-cell). Defined for any prediction, also one
/// that equals the control (where [`mean_metrics`]' correlations are not).
pub fn mse_means(truth: &Points, prediction: &Points) -> Result<f64, EvalError> {
    same_dims(truth, "truth", prediction, "prediction")?;
    for (p, what) in [(truth, "truth"), (prediction, "prediction")] {
        if p.rows() == 0 {
            return Err(EvalError::TooFewCells {
                what: what.to_owned(),
                needed: 1,
                found: 0,
            });
        }
    }
    let (mt, mp) = (truth.mean(), prediction.mean());
    Ok(squared_mean_difference(&mt, &mp))
}

fn squared_mean_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
}

/// Mean-based metrics of `prediction` against `truth`, with deltas taken
/// against `control` (all cells × the same genes).
pub fn mean_metrics(
    truth: &Points,
    prediction: &Points,
    control: &Points,
) -> Result<MeanMetrics, EvalError> {
    same_dims(truth, "truth", prediction, "prediction")?;
    same_dims(truth, "truth", control, "control")?;
    for (p, what) in [
        (truth, "truth"),
        (prediction, "prediction"),
        (control, "control"),
    ] {
        if p.rows() == 0 {
            return Err(EvalError::TooFewCells {
                what: what.to_owned(),
                needed: 1,
                found: 0,
            });
        }
    }
    let (mt, mp, mc) = (truth.mean(), prediction.mean(), control.mean());
    let dt: Vec<f64> = mt.iter().zip(&mc).map(|(t, c)| t - c).collect();
    let dp: Vec<f64> = mp.iter().zip(&mc).map(|(p, c)| p - c).collect();
    let g = mt.len() as f64;
    let mse = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / g;
    let mae = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / g;
    Ok(MeanMetrics {
        r2_pearson_means: pearson(&mt, &mp)?.powi(2),
        r2_score_means: r2_score(&mt, &mp)?,
        pearson_delta: pearson(&dt, &dp)?,
        mse_means: squared_mean_difference(&mt, &mp),
        mae_means: mae(&mt, &mp),
        mse_delta: mse(&dt, &dp),
        mae_delta: mae(&dt, &dp),
    })
}

/// The `k` genes ranked highest by the Wilcoxon score of `truth` against
/// `control` (most up-regulated first), as scGen selects the "top DEGs" for
/// its R²: `rank_genes_groups(method="wilcoxon")` names in score order.
pub fn top_de_genes(truth: &Points, control: &Points, k: usize) -> Result<Vec<usize>, EvalError> {
    let tests = crate::de::wilcoxon_rank_sum(truth, control, true)?;
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| tests[b].z.total_cmp(&tests[a].z).then(a.cmp(&b)));
    order.truncate(k);
    Ok(order)
}

/// [`mean_metrics`] restricted to the genes `genes` (e.g. [`top_de_genes`]).
pub fn mean_metrics_on_genes(
    truth: &Points,
    prediction: &Points,
    control: &Points,
    genes: &[usize],
) -> Result<MeanMetrics, EvalError> {
    if let Some(&bad) = genes.iter().find(|&&g| g >= truth.cols()) {
        return Err(EvalError::Invalid(format!(
            "gene {bad} does not exist ({} genes)",
            truth.cols()
        )));
    }
    let pick = |p: &Points| -> Vec<f64> {
        (0..p.rows())
            .flat_map(|i| genes.iter().map(move |&g| p.row(i)[g]))
            .collect()
    };
    let (t, pr, c) = (pick(truth), pick(prediction), pick(control));
    mean_metrics(
        &Points::new("truth", &t, genes.len())?,
        &Points::new("prediction", &pr, genes.len())?,
        &Points::new("control", &c, genes.len())?,
    )
}

/// Mean squared error between each predicted cell and its true
/// counterfactual, paired by key (e.g. `original_index`): the average over
/// pairs of the per-cell mean over coordinates. Keys are joined explicitly
/// (the reference sorted both sides by key and relied on equal key sets).
/// Keys must be unique on each side and every prediction needs a truth;
/// extra truths are ignored.
pub fn cell_level_mse(
    prediction: &Points,
    prediction_keys: &[String],
    truth: &Points,
    truth_keys: &[String],
) -> Result<f64, EvalError> {
    same_dims(prediction, "prediction", truth, "truth")?;
    if prediction_keys.len() != prediction.rows() || truth_keys.len() != truth.rows() {
        return Err(EvalError::Invalid(
            "one pairing key is needed per cell".into(),
        ));
    }
    if prediction.rows() == 0 {
        return Err(EvalError::TooFewCells {
            what: "cell-level MSE".into(),
            needed: 1,
            found: 0,
        });
    }
    let mut index = HashMap::with_capacity(truth_keys.len());
    for (i, k) in truth_keys.iter().enumerate() {
        if index.insert(k.as_str(), i).is_some() {
            return Err(EvalError::Invalid(format!(
                "pairing key `{k}` appears twice in the truth"
            )));
        }
    }
    let mut seen = HashSet::with_capacity(prediction_keys.len());
    let d = prediction.cols() as f64;
    let mut total = 0.0;
    for (i, k) in prediction_keys.iter().enumerate() {
        if !seen.insert(k.as_str()) {
            return Err(EvalError::Invalid(format!(
                "pairing key `{k}` appears twice in the prediction"
            )));
        }
        let j = *index.get(k.as_str()).ok_or_else(|| {
            EvalError::Invalid(format!("no true counterfactual has pairing key `{k}`"))
        })?;
        total += squared_distance(prediction.row(i), truth.row(j)) / d;
    }
    Ok(total / prediction.rows() as f64)
}
