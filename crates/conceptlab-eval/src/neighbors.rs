//! Neighbourhood-based mixing scores on an embedding: LISI and modularity.

use rayon::prelude::*;

use crate::EvalError;
use crate::points::{Points, squared_distance};

/// The `k` nearest neighbours of every point (Euclidean, brute force,
/// parallel), each list sorted by distance with ties broken by index and
/// including the point itself first.
fn knn(points: &Points, k: usize) -> Vec<Vec<(usize, f64)>> {
    (0..points.rows())
        .into_par_iter()
        .map(|i| {
            let mut d: Vec<(usize, f64)> = (0..points.rows())
                .map(|j| (j, squared_distance(points.row(i), points.row(j))))
                .collect();
            let k = k.min(d.len());
            d.select_nth_unstable_by(k.saturating_sub(1), |a, b| {
                a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
            });
            d.truncate(k);
            d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            // Self first even when duplicates sit at distance zero.
            if let Some(pos) = d.iter().position(|&(j, _)| j == i) {
                let me = d.remove(pos);
                d.insert(0, me);
            }
            d.into_iter().map(|(j, sq)| (j, sq.sqrt())).collect()
        })
        .collect()
}

fn codes(labels: &[String]) -> (Vec<usize>, usize) {
    let mut names: Vec<&str> = Vec::new();
    let codes = labels
        .iter()
        .map(|l| match names.iter().position(|n| n == l) {
            Some(c) => c,
            None => {
                names.push(l);
                names.len() - 1
            }
        })
        .collect();
    (codes, names.len())
}

/// Per-cell Local Inverse Simpson Index of `labels` (harmonypy's algorithm):
/// the `3 · perplexity` nearest neighbours other than the cell itself,
/// Gaussian weights on Euclidean distances with a precision found by binary
/// search so the weights' entropy is `ln(perplexity)`, then the inverse
/// Simpson index of the weighted label shares. 1 means a single label around
/// the cell; the number of labels means perfect mixing.
pub fn lisi(embedding: &Points, labels: &[String], perplexity: f64) -> Result<Vec<f64>, EvalError> {
    if labels.len() != embedding.rows() {
        return Err(EvalError::Invalid(format!(
            "{} labels for {} cells",
            labels.len(),
            embedding.rows()
        )));
    }
    let k = (3.0 * perplexity) as usize;
    if embedding.rows() <= k {
        return Err(EvalError::TooFewCells {
            what: "LISI".into(),
            needed: k + 1,
            found: embedding.rows(),
        });
    }
    let (codes, n_labels) = codes(labels);
    let neighbours = knn(embedding, k + 1);
    Ok(neighbours
        .par_iter()
        .map(|nb| {
            let d: Vec<f64> = nb[1..].iter().map(|&(_, dist)| dist).collect();
            let p = perplexity_weights(&d, perplexity);
            let mut shares = vec![0.0; n_labels];
            for (&(j, _), w) in nb[1..].iter().zip(&p) {
                shares[codes[j]] += w;
            }
            let simpson: f64 = shares.iter().map(|s| s * s).sum();
            if simpson > 0.0 {
                1.0 / simpson
            } else {
                f64::NAN
            }
        })
        .collect())
}

/// Weights `exp(-β d) / Σ exp(-β d)` with β chosen so their entropy is
/// `ln(perplexity)` (binary search, tolerance 1e-5, at most 50 steps).
fn perplexity_weights(d: &[f64], perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let (mut beta, mut lo, mut hi) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
    let entropy_and_weights = |beta: f64| {
        let w: Vec<f64> = d.iter().map(|&x| (-x * beta).exp()).collect();
        let total: f64 = w.iter().sum();
        if total == 0.0 {
            return (0.0, vec![0.0; d.len()]);
        }
        let h = total.ln() + beta * d.iter().zip(&w).map(|(x, wi)| x * wi).sum::<f64>() / total;
        (h, w.into_iter().map(|x| x / total).collect())
    };
    let (mut h, mut p) = entropy_and_weights(beta);
    for _ in 0..50 {
        let diff = h - target;
        if diff.abs() < 1e-5 {
            break;
        }
        if diff > 0.0 {
            lo = beta;
            beta = if hi.is_infinite() {
                beta * 2.0
            } else {
                (beta + hi) / 2.0
            };
        } else {
            hi = beta;
            beta = if lo.is_infinite() {
                beta / 2.0
            } else {
                (beta + lo) / 2.0
            };
        }
        (h, p) = entropy_and_weights(beta);
    }
    p
}

/// Newman modularity of the `labels` partition on the unweighted `k`-NN
/// graph (each point's `k` nearest neighbours, itself included, as
/// undirected edges; self-loops count once in the edge total and twice in
/// degrees, as networkx and python-louvain count them). scCBGM reports
/// `1 − Q` as a mixing score.
pub fn knn_modularity(embedding: &Points, labels: &[String], k: usize) -> Result<f64, EvalError> {
    if labels.len() != embedding.rows() {
        return Err(EvalError::Invalid(format!(
            "{} labels for {} cells",
            labels.len(),
            embedding.rows()
        )));
    }
    if embedding.rows() < 2 || k == 0 {
        return Err(EvalError::TooFewCells {
            what: "modularity".into(),
            needed: 2,
            found: embedding.rows(),
        });
    }
    let (codes, n_labels) = codes(labels);
    let mut edges = std::collections::BTreeSet::new();
    for (i, nb) in knn(embedding, k).iter().enumerate() {
        for &(j, _) in nb {
            edges.insert((i.min(j), i.max(j)));
        }
    }
    let mut degree = vec![0.0; embedding.rows()];
    let mut inside = vec![0.0; n_labels];
    for &(i, j) in &edges {
        degree[i] += 1.0;
        degree[j] += 1.0;
        if codes[i] == codes[j] {
            inside[codes[i]] += 1.0;
        }
    }
    let m = edges.len() as f64;
    let mut total = vec![0.0; n_labels];
    for (i, d) in degree.iter().enumerate() {
        total[codes[i]] += d;
    }
    Ok((0..n_labels)
        .map(|c| inside[c] / m - (total[c] / (2.0 * m)).powi(2))
        .sum())
}
