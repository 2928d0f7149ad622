//! Ratio metrics: a distance to the target divided by the smallest distance
//! between the target and any training population (scCBGM's rMMD and kin).

use crate::EvalError;
use crate::points::Points;

/// Smallest group scCBGM lets into the denominator. The reference applied it
/// to MMD only; here it applies to every ratio metric.
pub const MIN_GROUP_SIZE: usize = 10;

/// The result of a ratio metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    /// `distance(target, prediction) / (min_s distance(target, group_s) + 1e-8)`.
    pub ratio: f64,
    /// The numerator.
    pub distance: f64,
    /// The denominator before the `1e-8`: the nearest training group's distance.
    pub nearest_group_distance: f64,
    /// The label of that group.
    pub nearest_group: String,
}

/// Computes `metric(target, prediction)` relative to the nearest training
/// group. `train` rows carry `labels`; groups with fewer than
/// `min_group_size` cells are skipped. No usable group is an error.
pub fn nearest_group_ratio(
    metric: impl Fn(&Points, &Points) -> Result<f64, EvalError>,
    target: &Points,
    prediction: &Points,
    train: &Points,
    labels: &[String],
    min_group_size: usize,
) -> Result<Ratio, EvalError> {
    if labels.len() != train.rows() {
        return Err(EvalError::Invalid(format!(
            "{} group labels for {} training cells",
            labels.len(),
            train.rows()
        )));
    }
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, rows)) => rows.push(i),
            None => groups.push((label, vec![i])),
        }
    }
    let distance = metric(target, prediction)?;
    let mut best: Option<(f64, &str)> = None;
    for (label, rows) in groups
        .iter()
        .filter(|(_, rows)| rows.len() >= min_group_size)
    {
        let data = train.select(rows);
        let group = Points::new(label, &data, train.cols())?;
        let d = metric(target, &group)?;
        if best.is_none_or(|(b, _)| d < b) {
            best = Some((d, label));
        }
    }
    let (nearest, label) = best.ok_or_else(|| {
        EvalError::Invalid(format!(
            "no training group has at least {min_group_size} cells"
        ))
    })?;
    Ok(Ratio {
        ratio: distance / (nearest + 1e-8),
        distance,
        nearest_group_distance: nearest,
        nearest_group: label.to_owned(),
    })
}
