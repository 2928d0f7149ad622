//! The two truncated-SVD solvers behind [`super::Pca`], on a centred matrix.
//!
//! - [`exact_svd`]: eigendecomposition of the Gram matrix in the smaller
//!   dimension, in f64 — exact, for matrices whose smaller side is a few
//!   hundred.
//! - [`randomized_svd`]: block subspace iteration from a seeded Gaussian
//!   sketch with a Rayleigh–Ritz step per iteration, for a fixed number of
//!   iterations or until the leading `k` singular triplets stop moving —
//!   the large products in f32 on all cores, everything small in f64.
//!
//! Both return right singular vectors as rows (`k × genes`) and singular
//! values, descending, before any sign convention is applied. Every
//! parallel product splits the output (never a sum), so results do not
//! depend on the number of threads.

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, Axis, LinalgScalar, s};

use super::eigen::symmetric_eigen;
use super::sparse_ops::Csr;
use super::{Result, invalid};
use crate::random::{standard_normal, stream_rng};

/// Rows (or columns) per parallel block of the large products.
const BLOCK: usize = 256;

/// `a · b` for a tall `a`, parallel over row blocks of `a`.
pub(super) fn par_dot<A: LinalgScalar + Send + Sync>(
    a: ArrayView2<'_, A>,
    b: ArrayView2<'_, A>,
) -> Array2<A> {
    let (n, _) = a.dim();
    let mut out = Array2::<A>::zeros((n, b.ncols()));
    out.axis_chunks_iter_mut(Axis(0), BLOCK)
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut chunk)| {
            let rows = a.slice(s![i * BLOCK..i * BLOCK + chunk.nrows(), ..]);
            chunk.assign(&rows.dot(&b));
        });
    out
}

/// `aᵀ · b` for a large f32 `a` (`n × g`) and `b` (`n × l`), parallel over
/// column blocks of `a` (row blocks of the `g × l` result).
fn par_t_dot(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let g = a.ncols();
    let mut out = Array2::<f32>::zeros((g, b.ncols()));
    out.axis_chunks_iter_mut(Axis(0), BLOCK)
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut chunk)| {
            let cols = a.slice(s![.., i * BLOCK..i * BLOCK + chunk.nrows()]);
            chunk.assign(&cols.t().dot(&b));
        });
    out
}

/// `aᵀa` in f64 for a tall `a`: a fixed number of row groups (not one per
/// thread, so the sum is the same on any machine), each summing its blocks
/// in order, then the groups in order.
fn par_gram<A: Copy + Into<f64> + Sync>(a: ArrayView2<'_, A>) -> Array2<f64> {
    let (n, g) = a.dim();
    let groups = n.div_ceil(4 * BLOCK).clamp(1, 16);
    let rows_per_group = n.div_ceil(groups).max(1);
    let partials: Vec<Array2<f64>> = a
        .axis_chunks_iter(Axis(0), rows_per_group)
        .into_par_iter()
        .map(|group| {
            let mut acc = Array2::<f64>::zeros((g, g));
            for block in group.axis_chunks_iter(Axis(0), 4 * BLOCK) {
                let c = block.mapv(Into::into);
                acc += &c.t().dot(&c);
            }
            acc
        })
        .collect();
    let mut gram = Array2::<f64>::zeros((g, g));
    for p in partials {
        gram += &p;
    }
    gram
}

fn to_f64(a: &Array2<f32>) -> Array2<f64> {
    a.mapv(f64::from)
}

/// Orthonormal basis of the column space of `y` (directions below 1e-10 of
/// the largest eigenvalue of the Gram matrix are dropped) by
/// eigen-orthonormalisation `Y W Λ^{-1/2}`. Its loss of orthogonality grows
/// with the Gram matrix's condition number, so an ill-conditioned input (the
/// first sketch) gets a second pass; later iterates are nearly orthogonal
/// already and need one.
fn orthonormalize(mut y: Array2<f64>) -> Result<Array2<f64>> {
    for pass in 0..2 {
        // Unit columns first: the Gram matrix then has a unit diagonal and
        // its conditioning reflects angles, not scales.
        for mut col in y.columns_mut() {
            let norm = col.dot(&col).sqrt();
            if norm > 0.0 {
                col /= norm;
            }
        }
        let l = y.ncols();
        let gram = par_gram(y.view());
        let flat: Vec<f64> = gram.iter().copied().collect();
        let (values, vectors) = symmetric_eigen(&flat, l)?;
        let top = values.first().copied().unwrap_or(0.0);
        let floor = if pass == 0 { 1e-10 } else { 1e-6 } * top;
        let keep: Vec<usize> = (0..l)
            .filter(|&i| values[i] > floor && values[i] > 0.0)
            .collect();
        let mut w = Array2::<f64>::zeros((l, keep.len()));
        for (c, &i) in keep.iter().enumerate() {
            let scale = 1.0 / values[i].sqrt();
            for r in 0..l {
                w[(r, c)] = vectors[i * l + r] * scale;
            }
        }
        y = par_dot(y.view(), w.view());
        let smallest = keep.last().map_or(top, |&i| values[i]);
        if top <= 1e6 * smallest {
            break;
        }
    }
    Ok(y)
}

/// Right singular vectors (rows) and singular values of the centred `xc`.
pub(super) struct Svd {
    pub vt: Array2<f64>,
    pub sigma: Vec<f64>,
    pub iterations: usize,
    /// Largest relative residual of the leading triplets at the last check
    /// (the iteration before the last); `None` if never checked.
    pub residual: Option<f64>,
}

/// Exact top-`k` SVD through the Gram matrix of the smaller side.
pub(super) fn exact_svd(xc: &Array2<f32>, k: usize) -> Result<Svd> {
    let (n, g) = xc.dim();
    if g <= n {
        let gram = par_gram(xc.view());
        let flat: Vec<f64> = gram.iter().copied().collect();
        let (values, vectors) = symmetric_eigen(&flat, g)?;
        let vt = Array2::from_shape_fn((k, g), |(i, j)| vectors[i * g + j]);
        let sigma = values[..k].iter().map(|v| v.max(0.0).sqrt()).collect();
        Ok(Svd {
            vt,
            sigma,
            iterations: 0,
            residual: None,
        })
    } else {
        // XXᵀ (n × n): left vectors u, then v = Xᵀu / σ.
        let x = to_f64(xc);
        let gram = x.dot(&x.t());
        let flat: Vec<f64> = gram.iter().copied().collect();
        let (values, vectors) = symmetric_eigen(&flat, n)?;
        let top = values.first().copied().unwrap_or(0.0).max(0.0).sqrt();
        let mut vt = Array2::<f64>::zeros((k, g));
        let mut sigma = Vec::with_capacity(k);
        for i in 0..k {
            let s = values[i].max(0.0).sqrt();
            // A direction with no variance has no defined v: left zero here
            // and completed to an orthonormal set by the caller.
            if s > 1e-9 * top && s > 0.0 {
                let u = ndarray::ArrayView1::from(&vectors[i * n..(i + 1) * n]);
                let v = x.t().dot(&u) / s;
                vt.row_mut(i).assign(&v);
                sigma.push(s);
            } else {
                sigma.push(0.0);
            }
        }
        Ok(Svd {
            vt,
            sigma,
            iterations: 0,
            residual: None,
        })
    }
}

/// A centred `n × g` matrix as the randomized solver uses it: its two
/// products with tall `f32` blocks. Dense data are centred in memory; sparse
/// data centre implicitly ([`super::sparse_ops`]).
pub(super) trait Centred: Sync {
    /// `(n, g)`.
    fn dim(&self) -> (usize, usize);
    /// `Xc · b` for `b` of `g × l`.
    fn dot(&self, b: ArrayView2<'_, f32>) -> Array2<f32>;
    /// `Xcᵀ · q` for `q` of `n × l`.
    fn t_dot(&self, q: ArrayView2<'_, f32>) -> Array2<f32>;
}

impl Centred for Array2<f32> {
    fn dim(&self) -> (usize, usize) {
        Array2::dim(self)
    }
    fn dot(&self, b: ArrayView2<'_, f32>) -> Array2<f32> {
        par_dot(self.view(), b)
    }
    fn t_dot(&self, q: ArrayView2<'_, f32>) -> Array2<f32> {
        par_t_dot(self.view(), q)
    }
}

/// A CSR matrix minus its column means, never formed.
pub(super) struct SparseCentred<'a> {
    pub x: Csr<'a>,
    pub mean: &'a [f32],
}

impl Centred for SparseCentred<'_> {
    fn dim(&self) -> (usize, usize) {
        (self.x.rows, self.x.cols)
    }
    fn dot(&self, b: ArrayView2<'_, f32>) -> Array2<f32> {
        self.x.centred_dot(self.mean, b)
    }
    fn t_dot(&self, q: ArrayView2<'_, f32>) -> Array2<f32> {
        self.x.centred_t_dot(self.mean, q)
    }
}

/// Exact top-`k` right singular vectors of a centred matrix from its
/// `g × g` Gram matrix (`g` at most a few hundred).
pub(super) fn exact_from_gram(gram: &Array2<f64>, k: usize) -> Result<Svd> {
    let g = gram.nrows();
    let flat: Vec<f64> = gram.iter().copied().collect();
    let (values, vectors) = symmetric_eigen(&flat, g)?;
    let vt = Array2::from_shape_fn((k, g), |(i, j)| vectors[i * g + j]);
    let sigma = values[..k].iter().map(|v| v.max(0.0).sqrt()).collect();
    Ok(Svd {
        vt,
        sigma,
        iterations: 0,
        residual: None,
    })
}

/// When the randomized solver stops.
#[derive(Debug, Clone, Copy)]
pub(super) struct Iterations {
    /// Power iterations always run (at least 1).
    pub min: usize,
    /// Cap; iterations beyond `min` continue only while the residual of the
    /// leading `k` triplets is above `tolerance`.
    pub max: usize,
    /// Relative residual `‖(I − QQᵀ) X v_j‖ / σ_j` counted as converged.
    pub tolerance: f64,
}

/// Top-`k` SVD by randomized block subspace iteration with `l` sketch
/// columns (`k < l ≤ min(n, g)`), sketch drawn from `stream_rng(seed, 0)`.
/// Each iteration is one product with `Xᵀ` and one with `X` (the last one
/// skips the second), like scikit-learn's `randomized_svd` with `n_iter`
/// iterations, plus a Rayleigh–Ritz step that measures convergence.
pub(super) fn randomized_svd(
    xc: &impl Centred,
    k: usize,
    l: usize,
    seed: u64,
    stop: Iterations,
) -> Result<Svd> {
    let (n, g) = xc.dim();
    if !(k < l && l <= n.min(g)) {
        return Err(invalid(
            "randomized SVD",
            format!("needs k < l <= min(n, g), got k = {k}, l = {l}, shape {n} x {g}"),
        ));
    }
    let mut rng = stream_rng(seed, 0);
    let omega = Array2::from_shape_simple_fn((g, l), || standard_normal(&mut rng) as f32);
    let mut q = orthonormalize(to_f64(&xc.dot(omega.view())))?;
    let max = stop.max.max(stop.min).max(1);
    let mut residual: Option<f64> = None;
    let mut iterations = 0;
    loop {
        iterations += 1;
        // Z = Xᵀ Q spans the row-space estimate; B = Zᵀ = Qᵀ X.
        let z = to_f64(&xc.t_dot(q.mapv(|v| v as f32).view()));
        let bbt = z.t().dot(&z);
        let m = bbt.nrows();
        let flat: Vec<f64> = bbt.iter().copied().collect();
        let (values, vectors) = symmetric_eigen(&flat, m)?;
        let top = values.first().copied().unwrap_or(0.0).max(0.0).sqrt();
        if top == 0.0 {
            return Err(invalid("PCA", "the centred matrix is zero (no variance)"));
        }
        // Ritz triplets: u = Q w, σ = sqrt(λ), v = Z w / σ; directions with
        // no variance (data of lower rank than l) are dropped.
        let keep: Vec<usize> = (0..m)
            .filter(|&i| values[i].max(0.0).sqrt() > 1e-7 * top)
            .collect();
        let mut w = Array2::<f64>::zeros((m, keep.len()));
        let mut sigma = Vec::with_capacity(keep.len());
        for (c, &i) in keep.iter().enumerate() {
            sigma.push(values[i].sqrt());
            for r in 0..m {
                w[(r, c)] = vectors[i * m + r];
            }
        }
        let mut v = z.dot(&w);
        for (mut col, s) in v.columns_mut().into_iter().zip(&sigma) {
            col /= *s;
        }
        let found = k.min(sigma.len());
        let converged = iterations >= stop.min && residual.is_some_and(|r| r <= stop.tolerance);
        if iterations >= max || converged || found < k {
            let mut vt = Array2::<f64>::zeros((k, g));
            for j in 0..found {
                vt.row_mut(j).assign(&v.column(j));
            }
            let mut s = sigma[..found].to_vec();
            s.resize(k, 0.0);
            return Ok(Svd {
                vt,
                sigma: s,
                iterations,
                residual,
            });
        }
        let y = to_f64(&xc.dot(v.mapv(|t| t as f32).view()));
        // How far X v_j leaves the current range, X v_j − σ_j Q w_j: needed
        // from the iteration before the first that may stop on it.
        if iterations + 1 >= stop.min {
            let qw = par_dot(q.view(), w.view());
            residual = Some(
                (0..found)
                    .map(|j| {
                        let r = &y.column(j) - &(&qw.column(j) * sigma[j]);
                        r.dot(&r).sqrt() / sigma[j]
                    })
                    .fold(0.0f64, f64::max),
            );
        }
        q = orthonormalize(y)?;
    }
}
