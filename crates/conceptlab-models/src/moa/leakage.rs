//! How much of a pathway's annotated level the unknown code predicts: the
//! check of assumption (4). Where the unknown code carries a pathway, the
//! decoder can read the pathway from it, moving the pathway concept changes
//! less than it should, and the mediated share comes out too small.

use conceptlab_core::linalg::cholesky;
use ndarray::{ArrayView1, ArrayView2};

/// Above this adjusted R² the caller is warned: the unknown code then
/// explains most of the pathway's variation across cells.
pub const WARN_R2: f64 = 0.5;

/// Adjusted R² of the least-squares fit (with intercept, a tiny ridge for
/// conditioning) of `y` on the rows of `u`, over the rows where `keep` is
/// true; `None` when too few rows or no variation make it meaningless.
pub fn explained(u: ArrayView2<f32>, y: ArrayView1<f32>, keep: &[bool]) -> Option<f64> {
    let rows: Vec<usize> = (0..u.nrows()).filter(|&i| keep[i]).collect();
    let p = u.ncols() + 1;
    let n = rows.len();
    if n < 2 * p + 2 {
        return None;
    }
    let design = |i: usize, a: usize| {
        if a == 0 {
            1.0
        } else {
            f64::from(u[[i, a - 1]])
        }
    };
    let mut gram = vec![0.0; p * p];
    let mut rhs = vec![0.0; p];
    for &i in &rows {
        for a in 0..p {
            let xa = design(i, a);
            rhs[a] += xa * f64::from(y[i]);
            for b in 0..=a {
                gram[a * p + b] += xa * design(i, b);
            }
        }
    }
    for a in 0..p {
        for b in 0..a {
            gram[b * p + a] = gram[a * p + b];
        }
        gram[a * p + a] += 1e-8 * (1.0 + gram[a * p + a]);
    }
    let l = cholesky(&gram, p)?;
    // Solve L Lᵀ β = rhs.
    let mut z = vec![0.0; p];
    for a in 0..p {
        let s: f64 = (0..a).map(|b| l[a * p + b] * z[b]).sum();
        z[a] = (rhs[a] - s) / l[a * p + a];
    }
    let mut beta = vec![0.0; p];
    for a in (0..p).rev() {
        let s: f64 = (a + 1..p).map(|b| l[b * p + a] * beta[b]).sum();
        beta[a] = (z[a] - s) / l[a * p + a];
    }
    let mean = rows.iter().map(|&i| f64::from(y[i])).sum::<f64>() / n as f64;
    let (mut sse, mut sst) = (0.0, 0.0);
    for &i in &rows {
        let fit: f64 = (0..p).map(|a| beta[a] * design(i, a)).sum();
        sse += (f64::from(y[i]) - fit).powi(2);
        sst += (f64::from(y[i]) - mean).powi(2);
    }
    if sst <= f64::EPSILON * n as f64 {
        return None;
    }
    let r2 = 1.0 - sse / sst;
    Some(1.0 - (1.0 - r2) * (n - 1) as f64 / (n - p) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    #[test]
    fn a_code_that_holds_the_pathway_explains_it_and_noise_does_not() {
        let n = 400;
        let mut state = 7u64;
        let mut noise = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let y = Array1::from_iter((0..n).map(|_| noise()));
        let mut leaky = Array2::<f32>::zeros((n, 4));
        let mut clean = Array2::<f32>::zeros((n, 4));
        for i in 0..n {
            for j in 0..4 {
                clean[[i, j]] = noise();
                leaky[[i, j]] = noise() * 0.1;
            }
            leaky[[i, 2]] += 2.0 * y[i];
        }
        let keep = vec![true; n];
        let high = explained(leaky.view(), y.view(), &keep).unwrap();
        let low = explained(clean.view(), y.view(), &keep).unwrap();
        assert!(high > 0.9, "{high}");
        assert!(low.abs() < 0.05, "{low}");
        assert_eq!(explained(clean.view(), y.view(), &vec![false; n]), None);
    }
}
