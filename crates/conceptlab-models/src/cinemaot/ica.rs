//! FastICA as scikit-learn runs it by default (parallel algorithm, logcosh
//! contrast with α = 1, SVD whitening, symmetric decorrelation, at most
//! [`MAX_ITER`] iterations, tolerance [`TOL`]), with the sources CINEMA-OT
//! takes (`whiten="arbitrary-variance"`: `S = W K (X − mean)ᵀ`, whose
//! components have variance `1 / n`, not 1).
//!
//! The starting matrix is drawn from our seeded generator instead of
//! NumPy's, so components agree with scikit-learn's up to sign and order
//! where the problem has a unique solution (the golden test checks that).

use conceptlab_core::random::{Rng, standard_normal};

use super::linalg::{matmul, symmetric_eigen, transpose};
use crate::ModelError;

/// scikit-learn's default iteration cap.
pub const MAX_ITER: usize = 200;
/// scikit-learn's default tolerance on `max |⟨w_new, w_old⟩| − 1`.
pub const TOL: f64 = 1e-4;

/// A fitted unmixing: `sources = (x − mean) · unmixingᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ica {
    /// Feature means (length `d`).
    pub mean: Vec<f64>,
    /// `W K`, `k × d` row-major.
    pub unmixing: Vec<f64>,
    pub k: usize,
    pub d: usize,
    /// Iterations run, and whether the tolerance was reached.
    pub iterations: usize,
    pub converged: bool,
}

/// `W ← (W Wᵀ)^{-1/2} W`.
fn sym_decorrelation(w: &[f64], k: usize) -> Vec<f64> {
    let wwt = matmul(w, &transpose(w, k, k), k, k, k);
    let (s, u) = symmetric_eigen(&wwt, k);
    // u diag(1/√s) uᵀ
    let mut scaled = u.clone();
    for r in 0..k {
        for c in 0..k {
            scaled[r * k + c] /= s[c].max(f64::MIN_POSITIVE).sqrt();
        }
    }
    let inv_sqrt = matmul(&scaled, &transpose(&u, k, k), k, k, k);
    matmul(&inv_sqrt, w, k, k, k)
}

impl Ica {
    /// Fits `k` components to `x` (`n × d` row-major, `k ≤ d`, `k < n`).
    pub fn fit(x: &[f64], n: usize, d: usize, k: usize, rng: &mut Rng) -> Result<Self, ModelError> {
        if k == 0 || k > d || n < 2 || x.len() != n * d {
            return Err(ModelError::Input(format!(
                "FastICA: {k} components of {n} cells × {d} features cannot be fitted"
            )));
        }
        let mut mean = vec![0.0; d];
        for i in 0..n {
            for j in 0..d {
                mean[j] += x[i * d + j] / n as f64;
            }
        }
        // xt: d × n centred.
        let mut xt = vec![0.0; d * n];
        for i in 0..n {
            for j in 0..d {
                xt[j * n + i] = x[i * d + j] - mean[j];
            }
        }
        // SVD of xt through its d × d Gram matrix: u and d = √λ.
        let gram = matmul(&xt, &transpose(&xt, d, n), d, n, d);
        let (lambda, mut u) = symmetric_eigen(&gram, d);
        // scikit-learn: u *= sign(u[0]) per column.
        for c in 0..d {
            if u[c] < 0.0 {
                for r in 0..d {
                    u[r * d + c] = -u[r * d + c];
                }
            }
        }
        let mut kw = vec![0.0; k * d];
        for c in 0..k {
            let sv = lambda[c].max(0.0).sqrt();
            if sv <= 1e-12 * lambda[0].max(f64::MIN_POSITIVE).sqrt() {
                return Err(ModelError::Input(format!(
                    "FastICA: the data have rank {c} < {k} components"
                )));
            }
            for r in 0..d {
                kw[c * d + r] = u[r * d + c] / sv;
            }
        }
        let mut x1 = matmul(&kw, &xt, k, d, n);
        let root_n = (n as f64).sqrt();
        x1.iter_mut().for_each(|v| *v *= root_n);
        let init: Vec<f64> = (0..k * k).map(|_| standard_normal(rng)).collect();
        let mut w = sym_decorrelation(&init, k);
        let x1t = transpose(&x1, k, n);
        let (mut iterations, mut converged) = (0, false);
        for _ in 0..MAX_ITER {
            iterations += 1;
            let wx = matmul(&w, &x1, k, k, n);
            let gx: Vec<f64> = wx.iter().map(|v| v.tanh()).collect();
            let g_mean: Vec<f64> = (0..k)
                .map(|c| {
                    gx[c * n..(c + 1) * n]
                        .iter()
                        .map(|g| 1.0 - g * g)
                        .sum::<f64>()
                        / n as f64
                })
                .collect();
            let mut next = matmul(&gx, &x1t, k, n, k);
            for c in 0..k {
                for j in 0..k {
                    next[c * k + j] = next[c * k + j] / n as f64 - g_mean[c] * w[c * k + j];
                }
            }
            let next = sym_decorrelation(&next, k);
            let lim = (0..k)
                .map(|c| {
                    let dot: f64 = (0..k).map(|j| next[c * k + j] * w[c * k + j]).sum();
                    (dot.abs() - 1.0).abs()
                })
                .fold(0.0, f64::max);
            w = next;
            if lim < TOL {
                converged = true;
                break;
            }
        }
        Ok(Ica {
            mean,
            unmixing: matmul(&w, &kw, k, k, d),
            k,
            d,
            iterations,
            converged,
        })
    }

    /// The sources of `x` (`n × d` row-major), `n × k` row-major.
    pub fn transform(&self, x: &[f64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n * self.k];
        for i in 0..n {
            for c in 0..self.k {
                out[i * self.k + c] = (0..self.d)
                    .map(|j| (x[i * self.d + j] - self.mean[j]) * self.unmixing[c * self.d + j])
                    .sum();
            }
        }
        out
    }
}
