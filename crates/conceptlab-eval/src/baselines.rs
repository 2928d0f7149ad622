//! Trivial reference predictors every benchmark table should include: they
//! are hard to beat, and a model that does not beat them has learned nothing.

use crate::EvalError;
use crate::points::{Points, same_dims, squared_distance};

/// "Copy the source cells": the prediction is the unedited cells.
pub fn copy_source(source: &Points) -> Vec<f64> {
    (0..source.rows())
        .flat_map(|i| source.row(i).to_vec())
        .collect()
}

/// "Shift by the mean training difference": every source cell moved by
/// `mean(train_after) − mean(train_before)`, the average effect of the edit
/// where it was observed in training (e.g. the concept switched on in other
/// cell types).
pub fn mean_shift(
    source: &Points,
    train_before: &Points,
    train_after: &Points,
) -> Result<Vec<f64>, EvalError> {
    same_dims(
        source,
        "source",
        train_before,
        "training cells before the edit",
    )?;
    same_dims(
        source,
        "source",
        train_after,
        "training cells after the edit",
    )?;
    if train_before.rows() == 0 || train_after.rows() == 0 {
        return Err(EvalError::TooFewCells {
            what: "mean shift (training groups)".into(),
            needed: 1,
            found: 0,
        });
    }
    let shift: Vec<f64> = train_after
        .mean()
        .iter()
        .zip(train_before.mean())
        .map(|(a, b)| a - b)
        .collect();
    Ok((0..source.rows())
        .flat_map(|i| {
            source
                .row(i)
                .iter()
                .zip(&shift)
                .map(|(x, s)| x + s)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Cell-eval's discrimination score: for each perturbation `p`, the share of
/// the other perturbations whose true effect is farther (L1) from the
/// predicted effect of `p` than the true effect of `p` is. Rows of
/// `predicted_effects` and `true_effects` are perturbations in the same
/// order; 1 means every prediction is closest to its own truth, 0.5 is chance.
pub fn discrimination_scores(
    predicted_effects: &Points,
    true_effects: &Points,
) -> Result<Vec<f64>, EvalError> {
    same_dims(
        predicted_effects,
        "predicted effects",
        true_effects,
        "true effects",
    )?;
    let n = true_effects.rows();
    if predicted_effects.rows() != n || n < 2 {
        return Err(EvalError::Invalid(format!(
            "discrimination needs at least two perturbations with one predicted and one true effect each \
             ({} predicted, {n} true)",
            predicted_effects.rows()
        )));
    }
    let l1 = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>();
    Ok((0..n)
        .map(|p| {
            let own = l1(predicted_effects.row(p), true_effects.row(p));
            let farther = (0..n)
                .filter(|&q| q != p && l1(predicted_effects.row(p), true_effects.row(q)) > own)
                .count();
            farther as f64 / (n - 1) as f64
        })
        .collect())
}

/// The training group whose mean is nearest (Euclidean) to the target's
/// mean — the "nearest training population" predictor — as `(label, rows)`.
pub fn nearest_population(
    target: &Points,
    train: &Points,
    labels: &[String],
) -> Result<(String, Vec<usize>), EvalError> {
    same_dims(target, "target", train, "training cells")?;
    if labels.len() != train.rows() || train.rows() == 0 || target.rows() == 0 {
        return Err(EvalError::Invalid(
            "nearest population needs labelled training cells and a target".into(),
        ));
    }
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == l) {
            Some((_, rows)) => rows.push(i),
            None => groups.push((l, vec![i])),
        }
    }
    let tm = target.mean();
    let mean_of = |rows: &[usize]| {
        let data = train.select(rows);
        Points::new("group", &data, train.cols()).map(|p| p.mean())
    };
    let mut best: Option<(f64, usize)> = None;
    for (k, (_, rows)) in groups.iter().enumerate() {
        let d = squared_distance(&mean_of(rows)?, &tm);
        if best.is_none_or(|(b, _)| d < b) {
            best = Some((d, k));
        }
    }
    let (_, k) = best.ok_or_else(|| EvalError::Invalid("no training group".into()))?;
    let (label, rows) = groups.swap_remove(k);
    Ok((label.to_owned(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_and_discrimination() {
        let src = [0.0, 0.0, 1.0, 1.0];
        let before = [0.0, 0.0, 2.0, 2.0];
        let after = [1.0, 3.0, 3.0, 5.0];
        let (s, b, a) = (
            Points::new("s", &src, 2).unwrap(),
            Points::new("b", &before, 2).unwrap(),
            Points::new("a", &after, 2).unwrap(),
        );
        assert_eq!(mean_shift(&s, &b, &a).unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
        let truth = [0.0, 0.0, 5.0, 5.0, 10.0, 0.0];
        let good = [0.1, 0.0, 5.0, 4.9, 9.0, 0.0];
        let bad = [5.0, 5.0, 0.0, 0.0, 10.0, 0.0];
        let t = Points::new("t", &truth, 2).unwrap();
        assert_eq!(
            discrimination_scores(&Points::new("g", &good, 2).unwrap(), &t).unwrap(),
            vec![1.0, 1.0, 1.0]
        );
        assert_eq!(
            discrimination_scores(&Points::new("b", &bad, 2).unwrap(), &t).unwrap(),
            vec![0.0, 0.0, 1.0]
        );
    }

    #[test]
    fn nearest_population_by_mean() {
        let train = [0.0, 0.0, 0.2, 0.0, 5.0, 5.0, 5.2, 5.0];
        let labels: Vec<String> = ["a", "a", "b", "b"].iter().map(|s| s.to_string()).collect();
        let target = [4.9, 5.1];
        let (label, rows) = nearest_population(
            &Points::new("t", &target, 2).unwrap(),
            &Points::new("train", &train, 2).unwrap(),
            &labels,
        )
        .unwrap();
        assert_eq!((label.as_str(), rows), ("b", vec![2, 3]));
    }
}
