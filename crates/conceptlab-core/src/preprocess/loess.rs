//! One-predictor loess (Cleveland, Grosse & Shyu), as scikit-misc's
//! `loess(x, y, span, degree)` with the gaussian family fits it.
//!
//! A local polynomial of degree 1 or 2 is fitted at a point `q` by weighted
//! least squares over the `floor(n·span)` observations nearest to `q`, with
//! tricube weights `(1 − (d/ρ)³)³` where `ρ` is the distance of the farthest
//! of them. `Direct` does that at every observation. `Interpolate` (the
//! library's default, and what scanpy's `seurat_v3` gets) fits only at the
//! vertices of a k-d tree and interpolates each observation from the two
//! vertices around it by cubic Hermite interpolation of the local fits'
//! values and slopes; the tree is built exactly as the library builds it
//! (bounding interval widened by 0.5 % on each side, cells split at the
//! median observation until they hold at most `floor(n·span·0.2)`), so the
//! fitted values agree with scikit-misc to rounding.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Result, invalid};

/// How fitted values are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoessSurface {
    /// k-d tree vertices + cubic Hermite interpolation (scikit-misc's default).
    Interpolate,
    /// A local fit at every observation (exact, O(n · n·span)).
    Direct,
}

/// The library's `cell` parameter: a k-d tree cell is split while it holds
/// more than `floor(n · span · CELL)` observations.
const CELL: f64 = 0.2;

/// Fitted values of a loess regression of `y` on `x` at each `x`.
pub fn loess_fit(
    x: &[f64],
    y: &[f64],
    span: f64,
    degree: usize,
    surface: LoessSurface,
) -> Result<Vec<f64>> {
    let n = x.len();
    if y.len() != n {
        return Err(invalid(
            "loess",
            format!("{n} x values but {} y values", y.len()),
        ));
    }
    if !(1..=2).contains(&degree) {
        return Err(invalid(
            "loess",
            format!("degree must be 1 or 2, got {degree}"),
        ));
    }
    if !(span.is_finite() && span > 0.0 && span <= 1.0) {
        return Err(invalid(
            "loess",
            format!("span must be in (0, 1], got {span}"),
        ));
    }
    if let Some(i) = (0..n).find(|&i| !x[i].is_finite() || !y[i].is_finite()) {
        return Err(invalid(
            "loess",
            format!("observation {i} is not finite (x = {}, y = {})", x[i], y[i]),
        ));
    }
    let nf = ((n as f64 * span).floor() as usize).min(n);
    if nf < degree + 2 {
        return Err(invalid(
            "loess",
            format!(
                "span {span} of {n} observations gives {nf} neighbours; a degree-{degree} \
                 local fit needs at least {}",
                degree + 2
            ),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();
    let local = LocalFit {
        xs: &xs,
        ys: &ys,
        nf,
        degree,
    };
    let sorted_fit = match surface {
        LoessSurface::Direct => xs
            .par_iter()
            .map(|&q| local.at(q).map(|(v, _)| v))
            .collect::<Result<Vec<f64>>>()?,
        LoessSurface::Interpolate => {
            let fc = (n as f64 * (span * CELL)).floor() as usize;
            let tree = KdTree::build(&xs, fc);
            let fits = tree
                .vertices
                .par_iter()
                .map(|&v| local.at(v))
                .collect::<Result<Vec<(f64, f64)>>>()?;
            xs.iter().map(|&z| tree.interpolate(z, &fits)).collect()
        }
    };
    let mut out = vec![0.0; n];
    for (k, &i) in order.iter().enumerate() {
        out[i] = sorted_fit[k];
    }
    Ok(out)
}

/// Local polynomial fits over observations sorted by `x`.
struct LocalFit<'a> {
    xs: &'a [f64],
    ys: &'a [f64],
    nf: usize,
    degree: usize,
}

impl LocalFit<'_> {
    /// Value and slope at `q` of the local polynomial fitted around `q`.
    fn at(&self, q: f64) -> Result<(f64, f64)> {
        let (xs, n, nf) = (self.xs, self.xs.len(), self.nf);
        // The nf nearest neighbours of q are a contiguous run of the sorted
        // observations: grow it from the insertion point toward the nearer
        // side (which of two equidistant candidates is taken cannot matter:
        // if either is the last one taken, its weight is zero).
        let start = xs.partition_point(|&v| v < q);
        let (mut lo, mut hi) = (start, start);
        while hi - lo < nf {
            let take_left = if lo == 0 {
                false
            } else if hi == n {
                true
            } else {
                (q - xs[lo - 1]) <= (xs[hi] - q)
            };
            if take_left {
                lo -= 1;
            } else {
                hi += 1;
            }
        }
        let dist = |v: f64| (v - q) * (v - q);
        let rho = dist(xs[lo]).max(dist(xs[hi - 1]));
        if rho <= 0.0 {
            return Err(invalid(
                "loess",
                format!("span too small: the {nf} nearest neighbours of {q} all lie at {q}"),
            ));
        }
        let k = self.degree + 1;
        let mut cols = vec![vec![0.0; nf]; k];
        let mut rhs = vec![0.0; nf];
        for (r, i) in (lo..hi).enumerate() {
            let u = (dist(xs[i]) / rho).sqrt();
            let w = (1.0 - u * u * u).powi(3).sqrt();
            let dx = xs[i] - q;
            cols[0][r] = w;
            cols[1][r] = w * dx;
            if k > 2 {
                cols[2][r] = w * dx * dx;
            }
            rhs[r] = w * self.ys[i];
        }
        let coef = least_squares(cols, &rhs);
        Ok((coef[0], coef[1]))
    }
}

/// Minimum-norm least-squares solution of `A c = b` for a tall matrix given
/// by its columns, as the library solves it: columns scaled to unit norm,
/// singular values below `100 ε σ_max` treated as zero. The SVD is one-sided
/// Jacobi, which is accurate for the three columns used here.
fn least_squares(mut cols: Vec<Vec<f64>>, b: &[f64]) -> Vec<f64> {
    let k = cols.len();
    let dot = |a: &[f64], c: &[f64]| a.iter().zip(c).map(|(x, y)| x * y).sum::<f64>();
    let mut scale = vec![1.0; k];
    for (j, c) in cols.iter_mut().enumerate() {
        let norm = dot(c, c).sqrt();
        if norm > 0.0 {
            c.iter_mut().for_each(|v| *v /= norm);
            scale[j] = norm;
        }
    }
    let mut v = vec![vec![0.0; k]; k];
    for (j, row) in v.iter_mut().enumerate() {
        row[j] = 1.0;
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..k {
            for q in p + 1..k {
                let alpha = dot(&cols[p], &cols[p]);
                let beta = dot(&cols[q], &cols[q]);
                let gamma = dot(&cols[p], &cols[q]);
                if gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() || gamma == 0.0 {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (left, right) = cols.split_at_mut(q);
                for (a, bq) in left[p].iter_mut().zip(right[0].iter_mut()) {
                    let (ap, aq) = (*a, *bq);
                    *a = c * ap - s * aq;
                    *bq = s * ap + c * aq;
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let sigma: Vec<f64> = cols.iter().map(|c| dot(c, c).sqrt()).collect();
    let smax = sigma.iter().copied().fold(0.0, f64::max);
    let tol = smax * 100.0 * f64::EPSILON;
    let mut coef = vec![0.0; k];
    for j in 0..k {
        if sigma[j] > tol {
            // With a_j = σ_j u_j: (u_jᵀ b) / σ_j = (a_jᵀ b) / σ_j².
            let g = dot(&cols[j], b) / (sigma[j] * sigma[j]);
            for (i, c) in coef.iter_mut().enumerate() {
                *c += v[i][j] * g;
            }
        }
    }
    for (c, s) in coef.iter_mut().zip(&scale) {
        *c /= s;
    }
    coef
}

/// The library's k-d tree over one predictor: cells in breadth-first order,
/// each either a leaf or split at an observation's value.
struct KdTree {
    /// Vertex coordinates: the widened bounds, then one per split.
    vertices: Vec<f64>,
    /// Per cell: lower and upper vertex index.
    bounds: Vec<(usize, usize)>,
    /// Per cell: `Some((split value, lower child, upper child))` unless a leaf.
    children: Vec<Option<(f64, usize, usize)>>,
}

impl KdTree {
    fn build(xs: &[f64], fc: usize) -> Self {
        let n = xs.len();
        let (mn, mx) = (xs[0], xs[n - 1]);
        let margin = 0.005 * (mx - mn).max(1e-10 * mn.abs().max(mx.abs()) + 1e-30);
        let capacity = n.max(200);
        let mut tree = KdTree {
            vertices: vec![mn - margin, mx + margin],
            bounds: vec![(0, 1)],
            children: Vec::new(),
        };
        // Observation ranges (inclusive) of each cell, parallel to `bounds`.
        let mut ranges = vec![(0usize, n - 1)];
        let mut p = 0;
        while p < ranges.len() {
            let (l, u) = ranges[p];
            let (vl, vh) = tree.bounds[p];
            let (lo_v, hi_v) = (tree.vertices[vl], tree.vertices[vh]);
            let mut split = None;
            let full = capacity < ranges.len() + 2 || capacity < tree.vertices.len() + 1;
            if u - l + 1 > fc && hi_v - lo_v > 0.0 && !full {
                let m = median_split(xs, l, u);
                let t = xs[m];
                if lo_v != t && hi_v != t {
                    split = Some((m, t));
                }
            }
            match split {
                None => tree.children.push(None),
                Some((m, t)) => {
                    let vt = tree.vertices.len();
                    tree.vertices.push(t);
                    let child = ranges.len();
                    ranges.push((l, m));
                    ranges.push((m + 1, u));
                    tree.bounds.push((vl, vt));
                    tree.bounds.push((vt, vh));
                    tree.children.push(Some((t, child, child + 1)));
                }
            }
            p += 1;
        }
        tree
    }

    fn interpolate(&self, z: f64, fits: &[(f64, f64)]) -> f64 {
        let mut c = 0;
        while let Some(Some((t, lo, hi))) = self.children.get(c) {
            c = if z <= *t { *lo } else { *hi };
        }
        let (a, b) = self.bounds[c];
        let (v0, v1) = (self.vertices[a], self.vertices[b]);
        let ((g0, d0), (g1, d1)) = (fits[a], fits[b]);
        let h = (z - v0) / (v1 - v0);
        let phi0 = (1.0 - h).powi(2) * (1.0 + 2.0 * h);
        let phi1 = h * h * (3.0 - 2.0 * h);
        let psi0 = h * (1.0 - h).powi(2);
        let psi1 = h * h * (h - 1.0);
        phi0 * g0 + phi1 * g1 + (psi0 * d0 + psi1 * d1) * (v1 - v0)
    }
}

/// The split position of the sorted observations `l..=u`: the lower median,
/// moved to the nearest position (trying +1, −1, +2, −2, ...) whose value
/// differs from the next one so that ties all go to the upper cell; if the
/// search leaves the range first, the lower median itself.
fn median_split(xs: &[f64], l: usize, u: usize) -> usize {
    let m = (l + u) / 2;
    let mut offset: isize = 0;
    loop {
        let pos = m as isize + offset;
        if pos >= u as isize || pos < l as isize {
            return m;
        }
        let pos = pos as usize;
        if xs[pos] != xs[pos + 1] {
            return pos;
        }
        offset = -offset;
        if offset >= 0 {
            offset += 1;
        }
    }
}
