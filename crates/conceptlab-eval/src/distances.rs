//! Distances between two populations of cells.

use conceptlab_core::linalg::{matmul, psd_sqrt, symmetric_eigen};
use rayon::prelude::*;

use crate::EvalError;
use crate::points::{Points, same_dims, squared_distance};

fn require(points: &Points, what: &str, needed: usize) -> Result<(), EvalError> {
    if points.rows() < needed {
        return Err(EvalError::TooFewCells {
            what: what.to_owned(),
            needed,
            found: points.rows(),
        });
    }
    Ok(())
}

/// Rows of `x` handled per block of the pairwise computation.
const BLOCK_ROWS: usize = 256;

/// Sum over ordered pairs `(i, j)` of `f(‖x_i − y_j‖²)`, skipping `i == j`
/// when `skip_diagonal` (a set against itself).
///
/// Squared distances come from the Gram identity `‖x‖² + ‖y‖² − 2 x·y`, a
/// block of rows at a time through a matrix multiply (ndarray's, via
/// matrixmultiply), which is what makes 10,000 x 10,000 cells in 128
/// dimensions take seconds. The identity cancels catastrophically for
/// near-identical points, so values below `1e-12 (‖x‖² + ‖y‖²)` (pure
/// rounding noise) are set to 0. Blocks run in parallel and are summed in
/// a fixed order, so the result does not depend on the thread count.
fn pair_sum(x: &Points, y: &Points, skip_diagonal: bool, f: impl Fn(f64) -> f64 + Sync) -> f64 {
    use ndarray::{ArrayView2, s};
    let d = x.cols();
    let (xs, ys) = (x.as_slice(), y.as_slice());
    let (Ok(xa), Ok(ya)) = (
        ArrayView2::from_shape((x.rows(), d), xs),
        ArrayView2::from_shape((y.rows(), d), ys),
    ) else {
        return f64::NAN; // unreachable: Points guarantees the shape
    };
    let y_norms: Vec<f64> = (0..y.rows())
        .map(|j| y.row(j).iter().map(|v| v * v).sum())
        .collect();
    let starts: Vec<usize> = (0..x.rows()).step_by(BLOCK_ROWS).collect();
    let partial: Vec<f64> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + BLOCK_ROWS).min(x.rows());
            let gram = xa.slice(s![start..end, ..]).dot(&ya.t());
            let mut total = 0.0;
            for (r, row) in gram.outer_iter().enumerate() {
                let i = start + r;
                let xn: f64 = x.row(i).iter().map(|v| v * v).sum();
                for (j, &dot) in row.iter().enumerate() {
                    if skip_diagonal && i == j {
                        continue;
                    }
                    let scale = xn + y_norms[j];
                    let sq = xn + y_norms[j] - 2.0 * dot;
                    total += f(if sq <= 1e-12 * scale { 0.0 } else { sq });
                }
            }
            total
        })
        .collect();
    partial.iter().sum()
}

/// Unbiased squared maximum mean discrepancy with the Gaussian kernel
/// `k(a, b) = exp(-gamma ‖a − b‖²)`:
///
/// `MMD² = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1)) − 2 mean_{i,j} k(x_i, y_j)`,
///
/// clipped below at 0 as in scCBGM (the unbiased estimate can be slightly
/// negative when the populations agree). Needs at least two cells on each
/// side (the reference silently returned 0 instead).
pub fn mmd2_rbf(x: &Points, y: &Points, gamma: f64) -> Result<f64, EvalError> {
    same_dims(x, "first population", y, "second population")?;
    require(x, "MMD (first population)", 2)?;
    require(y, "MMD (second population)", 2)?;
    if !(gamma > 0.0 && gamma.is_finite()) {
        return Err(EvalError::Invalid(format!(
            "MMD kernel gamma must be positive, found {gamma}"
        )));
    }
    let k = |sq: f64| (-gamma * sq).exp();
    let (m, n) = (x.rows() as f64, y.rows() as f64);
    let xx = pair_sum(x, x, true, k) / (m * (m - 1.0));
    let yy = pair_sum(y, y, true, k) / (n * (n - 1.0));
    let xy = pair_sum(x, y, false, k) / (m * n);
    Ok((xx + yy - 2.0 * xy).max(0.0))
}

/// [`mmd2_rbf`] with scCBGM's fixed bandwidth `gamma = 1 / d`.
pub fn mmd2_rbf_default(x: &Points, y: &Points) -> Result<f64, EvalError> {
    mmd2_rbf(x, y, 1.0 / x.cols() as f64)
}

/// The energy distance of scPerturb (E-distance) with Euclidean distances:
/// `2 E‖x − y‖ − E‖x − x'‖ − E‖y − y'‖`, each expectation the mean over all
/// pairs including a point with itself (the V-statistic pertpy computes).
pub fn e_distance(x: &Points, y: &Points) -> Result<f64, EvalError> {
    same_dims(x, "first population", y, "second population")?;
    require(x, "E-distance (first population)", 1)?;
    require(y, "E-distance (second population)", 1)?;
    let d = |sq: f64| sq.sqrt();
    let (m, n) = (x.rows() as f64, y.rows() as f64);
    let xy = pair_sum(x, y, false, d) / (m * n);
    let xx = pair_sum(x, x, true, d) / (m * m);
    let yy = pair_sum(y, y, true, d) / (n * n);
    Ok(2.0 * xy - xx - yy)
}

/// The Fréchet distance between Gaussian fits:
/// `‖μ_x − μ_y‖² + tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^{1/2})`, with unbiased
/// covariances. The trace of the square root is computed as
/// `Σ sqrt(max(λ, 0))` over the eigenvalues of `Σ_x^{1/2} Σ_y Σ_x^{1/2}`
/// (symmetric, so no complex arithmetic). Needs two cells per side.
pub fn frechet_distance(x: &Points, y: &Points) -> Result<f64, EvalError> {
    same_dims(x, "first population", y, "second population")?;
    require(x, "Fréchet distance (first population)", 2)?;
    require(y, "Fréchet distance (second population)", 2)?;
    let d = x.cols();
    let mean_term = squared_distance(&x.mean(), &y.mean());
    let (cx, cy) = (x.covariance(), y.covariance());
    let sx = psd_sqrt(&cx, d);
    let inner = matmul(&matmul(&sx, &cy, d, d, d), &sx, d, d, d);
    let (values, _) = symmetric_eigen(&inner, d);
    let trace_sqrt: f64 = values.iter().map(|&v| v.max(0.0).sqrt()).sum();
    let trace = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    Ok((mean_term + trace(&cx) + trace(&cy) - 2.0 * trace_sqrt).max(0.0))
}
