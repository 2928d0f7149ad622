//! Principal component analysis as scikit-learn's `PCA` (no whitening)
//! computes it, as a fitted, serialisable transform.
//!
//! Solver choice: when the smaller side of the data is at most
//! [`EXACT_LIMIT`] (or the sketch would cover it), the SVD is exact (Gram
//! matrix eigendecomposition in f64). Otherwise it is randomized: a seeded
//! Gaussian sketch of `k + oversamples` columns, 7 power iterations (the
//! spec's floor, what scikit-learn's `auto` solver runs for this shape) with
//! a Rayleigh–Ritz step each, the large products in f32 on all cores. An
//! exact dense SVD of 10,000 × 5,000 without LAPACK would take minutes; the
//! randomized solver takes seconds, and [`PcaOptions`] can ask it to keep
//! iterating until the leading components converge. Components carry
//! scikit-learn's sign convention (`svd_flip(u_based_decision=False)`: each
//! component's largest-magnitude loading is positive, the first one on
//! ties), so scores compare directly with scikit-learn's.

use ndarray::{Array1, Array2, ArrayBase, Axis, Data, Ix2};
use serde::{Deserialize, Serialize};

use super::dense::to_csr_f32;
use super::sparse_ops::Csr;
use super::subspace::{
    Centred, Iterations, SparseCentred, Svd, exact_from_gram, exact_svd, par_dot, randomized_svd,
};
use super::{Result, invalid};
use crate::random::{standard_normal, stream_rng};
use crate::{DType, SparseFormat, SparseMatrix};

/// Largest smaller-side dimension solved exactly.
pub const EXACT_LIMIT: usize = 512;

/// How the decomposition was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PcaSolver {
    /// Exact eigendecomposition of the Gram matrix.
    Exact,
    /// Randomized subspace iteration: iterations run, and the largest
    /// relative residual `‖(I − QQᵀ) X v_j‖ / σ_j` of the leading components
    /// at the last check (one iteration before the end).
    Randomized {
        iterations: usize,
        residual: Option<f64>,
    },
}

/// Settings of the randomized solver (the exact one has none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PcaOptions {
    /// Sketch columns beyond `n_components`: at least this many (scikit-learn:
    /// 10) and at least `n_components / 2`. The power iteration converges at
    /// the rate of σ_{k+p}/σ_k, and with 10 extra columns and 7 iterations
    /// the trailing components of a 128-component fit are still visibly off.
    pub oversamples: usize,
    /// Power iterations always run (the spec asks for at least 7).
    pub iterations: usize,
    /// Upper bound on iterations: above `iterations`, the solver continues
    /// until every leading component's relative residual is below
    /// `tolerance`. Equal to `iterations` by default (a fixed budget).
    pub max_iterations: usize,
    pub tolerance: f64,
}

impl Default for PcaOptions {
    fn default() -> Self {
        PcaOptions {
            oversamples: 10,
            iterations: 7,
            max_iterations: 7,
            tolerance: 1e-4,
        }
    }
}

/// A fitted PCA: `Z = (X − mean) Wᵀ`, `X̂ = Z W + mean`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Number of components kept: the request clamped to
    /// `min(k, genes − 1, cells − 1)`.
    pub n_components: usize,
    /// The number asked for, before clamping.
    pub requested_components: usize,
    /// Per-feature mean of the fitted data (length `genes`).
    pub mean: Array1<f32>,
    /// `W`, `n_components × genes`, rows orthonormal.
    pub components: Array2<f32>,
    /// Variance of the data along each component (`σ² / (cells − 1)`).
    pub explained_variance: Array1<f64>,
    /// `explained_variance` over the total variance of the fitted data.
    pub explained_variance_ratio: Array1<f64>,
    pub solver: PcaSolver,
}

impl Pca {
    /// Fits `n_components` principal components of `x` (cells × features)
    /// with the default [`PcaOptions`]. `seed` drives the randomized
    /// solver's sketch (and the completion of components for data of lower
    /// rank than `n_components`).
    pub fn fit<S: Data<Elem = f32>>(
        x: &ArrayBase<S, Ix2>,
        n_components: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::fit_with(x, n_components, seed, &PcaOptions::default())
    }

    /// [`Pca::fit`] with explicit solver settings.
    pub fn fit_with<S: Data<Elem = f32>>(
        x: &ArrayBase<S, Ix2>,
        n_components: usize,
        seed: u64,
        options: &PcaOptions,
    ) -> Result<Self> {
        let (n, g) = x.dim();
        if n < 2 || g < 2 {
            return Err(invalid(
                "PCA",
                format!("needs at least 2 cells and 2 features, got {n} x {g}"),
            ));
        }
        if n_components == 0 {
            return Err(invalid("PCA", "n_components must be at least 1"));
        }
        if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(crate::CoreError::NonFinite {
                what: "PCA input".into(),
                row: r,
                col: c,
                value: f64::from(*v),
            });
        }
        let k = n_components.min(g - 1).min(n - 1);
        let mut sums = vec![0.0f64; g];
        for row in x.rows() {
            for (s, &v) in sums.iter_mut().zip(row.iter()) {
                *s += f64::from(v);
            }
        }
        let mean: Array1<f32> = sums.iter().map(|s| (s / n as f64) as f32).collect();
        let mut xc = x.to_owned();
        xc -= &mean;
        let total_variance =
            xc.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / (n - 1) as f64;

        let smaller = n.min(g);
        let sketch = (k + options.oversamples.max(k / 2)).min(smaller);
        let (svd, solver) = if smaller <= EXACT_LIMIT || sketch >= smaller {
            (exact_svd(&xc, k)?, PcaSolver::Exact)
        } else {
            randomized(&xc, k, sketch, seed, options)?
        };
        Ok(Self::assemble(
            svd,
            solver,
            mean,
            total_variance,
            n,
            n_components,
            seed,
        ))
    }

    /// [`Pca::fit_with`] on a sparse matrix (CSR or CSC, any numeric type;
    /// converted to CSR `f32` first unless it is already), without ever
    /// forming the centred (dense) matrix: the randomized solver multiplies
    /// with `X − 1μᵀ` implicitly. The exact solver runs on the `g × g`
    /// centred Gram matrix when there are at most [`EXACT_LIMIT`] features,
    /// and densifies only when there are at most that many cells. Agrees
    /// with [`Pca::fit_with`] on the densified matrix to float rounding (the
    /// same sketch, the same iterations, sums in another order).
    pub fn fit_sparse(
        x: &SparseMatrix,
        n_components: usize,
        seed: u64,
        options: &PcaOptions,
    ) -> Result<Self> {
        let converted;
        let x = if x.format == SparseFormat::Csr && x.data.dtype() == DType::F32 {
            x
        } else {
            converted = to_csr_f32(x)?;
            &converted
        };
        let csr = Csr::new(x)?;
        let (n, g) = (csr.rows, csr.cols);
        if n < 2 || g < 2 {
            return Err(invalid(
                "PCA",
                format!("needs at least 2 cells and 2 features, got {n} x {g}"),
            ));
        }
        if n_components == 0 {
            return Err(invalid("PCA", "n_components must be at least 1"));
        }
        if csr.data.iter().any(|v| !v.is_finite()) {
            return Err(first_non_finite_sparse(&csr));
        }
        let k = n_components.min(g - 1).min(n - 1);
        let sums = csr.column_sums();
        let mean: Vec<f32> = sums.iter().map(|s| (s / n as f64) as f32).collect();
        // Σ(x − m)² = Σx² − 2 Σ m s + n Σ m², with m the f32 mean used for
        // centring, so the ratio matches the dense path's.
        let cross: f64 = sums.iter().zip(&mean).map(|(s, &m)| s * f64::from(m)).sum();
        let msq: f64 = mean.iter().map(|&m| f64::from(m) * f64::from(m)).sum();
        let total_variance =
            (csr.sum_of_squares() - 2.0 * cross + n as f64 * msq).max(0.0) / (n - 1) as f64;
        let smaller = n.min(g);
        let sketch = (k + options.oversamples.max(k / 2)).min(smaller);
        let (svd, solver) = if smaller <= EXACT_LIMIT || sketch >= smaller {
            let svd = if g <= n {
                exact_from_gram(&csr.centred_gram(&mean), k)?
            } else {
                exact_svd(&csr.centred_dense(&mean), k)?
            };
            (svd, PcaSolver::Exact)
        } else {
            let centred = SparseCentred {
                x: csr,
                mean: &mean,
            };
            randomized(&centred, k, sketch, seed, options)?
        };
        Ok(Self::assemble(
            svd,
            solver,
            Array1::from(mean),
            total_variance,
            n,
            n_components,
            seed,
        ))
    }

    /// Sign convention, completion and variances of a solved SVD.
    fn assemble(
        svd: Svd,
        solver: PcaSolver,
        mean: Array1<f32>,
        total_variance: f64,
        n: usize,
        n_components: usize,
        seed: u64,
    ) -> Self {
        let k = svd.sigma.len();
        let mut vt = svd.vt;
        complete_orthonormal(&mut vt, &svd.sigma, seed);
        flip_signs(&mut vt);
        let explained_variance: Array1<f64> =
            svd.sigma.iter().map(|s| s * s / (n - 1) as f64).collect();
        let explained_variance_ratio = if total_variance > 0.0 {
            &explained_variance / total_variance
        } else {
            Array1::zeros(k)
        };
        Pca {
            n_components: k,
            requested_components: n_components,
            mean,
            components: vt.mapv(|v| v as f32),
            explained_variance,
            explained_variance_ratio,
            solver,
        }
    }

    /// Number of features the PCA was fitted on.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Scores `(x − mean) Wᵀ`, `cells × n_components`.
    pub fn transform<S: Data<Elem = f32>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f32>> {
        if x.ncols() != self.n_features() {
            return Err(invalid(
                "PCA transform",
                format!(
                    "input has {} features, the PCA was fitted on {}",
                    x.ncols(),
                    self.n_features()
                ),
            ));
        }
        let mut xc = x.to_owned();
        xc -= &self.mean;
        Ok(par_dot(xc.view(), self.components.t()))
    }

    /// Scores of sparse cells (CSR or CSC, any numeric type), computed as
    /// `X Wᵀ − μᵀWᵀ` without densifying `X`; equal to [`Pca::transform`] of
    /// the densified matrix up to float rounding.
    pub fn transform_sparse(&self, x: &SparseMatrix) -> Result<Array2<f32>> {
        if x.shape.1 != self.n_features() {
            return Err(invalid(
                "PCA transform",
                format!(
                    "input has {} features, the PCA was fitted on {}",
                    x.shape.1,
                    self.n_features()
                ),
            ));
        }
        let converted;
        let x = if x.format == SparseFormat::Csr && x.data.dtype() == DType::F32 {
            x
        } else {
            converted = to_csr_f32(x)?;
            &converted
        };
        let csr = Csr::new(x)?;
        let wt = self.components.t().as_standard_layout().into_owned();
        let mean = self
            .mean
            .as_slice()
            .map_or_else(|| self.mean.to_vec(), <[f32]>::to_vec);
        Ok(csr.centred_dot(&mean, wt.view()))
    }

    /// Reconstruction `z W + mean`, `cells × features`.
    pub fn inverse_transform<S: Data<Elem = f32>>(
        &self,
        z: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f32>> {
        if z.ncols() != self.n_components {
            return Err(invalid(
                "PCA inverse_transform",
                format!(
                    "input has {} columns, the PCA has {} components",
                    z.ncols(),
                    self.n_components
                ),
            ));
        }
        let mut out = par_dot(z.view(), self.components.view());
        out += &self.mean.view().insert_axis(Axis(0));
        Ok(out)
    }
}

/// The randomized solver under `options`.
fn randomized(
    xc: &impl Centred,
    k: usize,
    sketch: usize,
    seed: u64,
    options: &PcaOptions,
) -> Result<(Svd, PcaSolver)> {
    let stop = Iterations {
        min: options.iterations,
        max: options.max_iterations,
        tolerance: options.tolerance,
    };
    let svd = randomized_svd(xc, k, sketch, seed, stop)?;
    let solver = PcaSolver::Randomized {
        iterations: svd.iterations,
        residual: svd.residual,
    };
    Ok((svd, solver))
}

/// The first non-finite stored value of a CSR matrix as an error.
fn first_non_finite_sparse(x: &Csr<'_>) -> crate::CoreError {
    for r in 0..x.rows {
        let (a, b) = (x.indptr[r] as usize, x.indptr[r + 1] as usize);
        for k in a..b {
            if !x.data[k].is_finite() {
                return crate::CoreError::NonFinite {
                    what: "PCA input".into(),
                    row: r,
                    col: x.indices[k] as usize,
                    value: f64::from(x.data[k]),
                };
            }
        }
    }
    invalid("PCA", "internal: no non-finite value found")
}

/// Replaces the rows of `vt` whose singular value is 0 (data of lower rank
/// than `k`: no direction is defined) by seeded random unit vectors
/// orthogonal to every other row, so the components stay orthonormal.
fn complete_orthonormal(vt: &mut Array2<f64>, sigma: &[f64], seed: u64) {
    let (k, g) = vt.dim();
    let mut rng = stream_rng(seed, 1);
    for i in 0..k {
        if sigma[i] > 0.0 && vt.row(i).dot(&vt.row(i)) > 0.5 {
            continue;
        }
        let mut v: Array1<f64> = (0..g).map(|_| standard_normal(&mut rng)).collect();
        for _ in 0..2 {
            for (j, &sj) in sigma.iter().enumerate() {
                let done = j < i || sj > 0.0;
                if j != i && done {
                    let proj = v.dot(&vt.row(j));
                    v.scaled_add(-proj, &vt.row(j));
                }
            }
        }
        let norm = v.dot(&v).sqrt();
        vt.row_mut(i).assign(&(v / norm));
    }
}

/// scikit-learn's `svd_flip(u_based_decision=False)`: each row's entry of
/// largest magnitude (the first, on ties) made positive.
fn flip_signs(vt: &mut Array2<f64>) {
    for mut row in vt.rows_mut() {
        let mut best = 0;
        for (j, v) in row.iter().enumerate() {
            if v.abs() > row[best].abs() {
                best = j;
            }
        }
        if row[best] < 0.0 {
            row.mapv_inplace(|v| -v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NumVec;

    /// A 10 %-dense count-like matrix of rank-ish structure, large enough
    /// for the randomized solver, as CSR and densified.
    fn sparse_fixture(rows: usize, cols: usize) -> (SparseMatrix, Array2<f32>) {
        let mut rng = stream_rng(11, 0);
        let mut dense = Array2::<f32>::zeros((rows, cols));
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for r in 0..rows {
            let group = r % 3;
            for c in 0..cols {
                let u = standard_normal(&mut rng);
                if u > 1.28 {
                    let v = (1.0 + u * (1 + (c + group) % 4) as f64).round() as f32;
                    dense[(r, c)] = v;
                    indices.push(c as u32);
                    data.push(v);
                }
            }
            indptr.push(indices.len() as u64);
        }
        let sp = SparseMatrix::new(
            SparseFormat::Csr,
            (rows, cols),
            indptr,
            indices,
            NumVec::F32(data),
        )
        .unwrap();
        (sp, dense)
    }

    #[test]
    fn sparse_randomized_pca_is_the_dense_one_on_any_thread_count() {
        let (sp, dense) = sparse_fixture(700, 600);
        let options = PcaOptions::default();
        let fit_on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| Pca::fit_sparse(&sp, 8, 3, &options).unwrap())
        };
        let one = fit_on(1);
        assert!(matches!(one.solver, PcaSolver::Randomized { .. }));
        assert_eq!(one, fit_on(3), "bits differ between 1 and 3 threads");
        let reference = Pca::fit_with(&dense, 8, 3, &options).unwrap();
        assert_eq!(one.mean, reference.mean, "means are summed identically");
        for (a, b) in one
            .explained_variance
            .iter()
            .zip(&reference.explained_variance)
        {
            assert!((a - b).abs() <= 1e-4 * b, "variance {a} vs {b}");
        }
        let r1 = one.explained_variance_ratio.sum();
        let r2 = reference.explained_variance_ratio.sum();
        assert!((r1 - r2).abs() < 1e-5, "ratio {r1} vs {r2}");
        // Leading components (well separated) agree to float tolerance.
        for i in 0..3 {
            let d = (&one.components.row(i) - &reference.components.row(i))
                .mapv(f32::abs)
                .fold(0.0f32, |a, &b| a.max(b));
            assert!(d < 1e-3, "component {i} differs by {d}");
        }
        let scores = one.transform_sparse(&sp).unwrap();
        let want = one.transform(&dense).unwrap();
        let worst = (&scores - &want)
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(worst < 1e-3, "sparse scores differ by {worst}");
    }
}
