//! Dense symmetric eigendecomposition for the PCA solvers: Householder
//! reduction to tridiagonal form, then implicit QR steps with Wilkinson
//! shifts. O(n³) with small constants, for matrices of a few hundred rows
//! (the Jacobi sweeps in [`crate::linalg`] are too slow at that size).

use super::{Result, invalid};

/// Eigenvalues (descending) and eigenvectors of the symmetric `n × n`
/// row-major matrix `a`; eigenvector `i` is row `i` of the returned
/// row-major matrix. Only the lower triangle's symmetry is assumed, not
/// checked.
pub(super) fn symmetric_eigen(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    if a.len() != n * n {
        return Err(invalid(
            "symmetric eigensolver",
            format!("{} entries for a {n} x {n} matrix", a.len()),
        ));
    }
    if n == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut work = a.to_vec();
    let (mut d, mut e, mut z) = tridiagonalize(&mut work, n);
    implicit_qr(&mut d, &mut e, &mut z, n)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]).then(i.cmp(&j)));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &i in &order {
        vectors.extend_from_slice(&z[i * n..(i + 1) * n]);
    }
    Ok((values, vectors))
}

/// Reduces `a` (overwritten) to tridiagonal `T = Qᵀ A Q`; returns the
/// diagonal, the off-diagonal (`e[k] = T[k, k+1]`, length `n`, last unused)
/// and `Qᵀ` row-major, so that row `i` of `Qᵀ` maps `T`'s coordinates back.
fn tridiagonalize(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    // Householder vectors (acting on coordinates k+1..n) and their β.
    let mut reflectors: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n.saturating_sub(2));
    for k in 0..n.saturating_sub(1) {
        let m = n - k - 1;
        // Row k right of the diagonal equals column k below it.
        let x: Vec<f64> = a[k * n + k + 1..(k + 1) * n].to_vec();
        let tail: f64 = x[1..].iter().map(|v| v * v).sum();
        d[k] = a[k * n + k];
        if tail == 0.0 {
            e[k] = x[0];
            reflectors.push((Vec::new(), 0.0));
            continue;
        }
        let norm = (x[0] * x[0] + tail).sqrt();
        let alpha = if x[0] > 0.0 { -norm } else { norm };
        let mut v = x;
        v[0] -= alpha;
        let beta = 2.0 / v.iter().map(|t| t * t).sum::<f64>();
        // p = β B v on the trailing block B = A[k+1.., k+1..].
        let off = k + 1;
        let mut p = vec![0.0; m];
        for (i, pi) in p.iter_mut().enumerate() {
            let row = &a[(off + i) * n + off..(off + i + 1) * n];
            *pi = beta * row.iter().zip(&v).map(|(r, t)| r * t).sum::<f64>();
        }
        let kk = 0.5 * beta * p.iter().zip(&v).map(|(s, t)| s * t).sum::<f64>();
        let w: Vec<f64> = p.iter().zip(&v).map(|(s, t)| s - kk * t).collect();
        for i in 0..m {
            let row = &mut a[(off + i) * n + off..(off + i + 1) * n];
            let (vi, wi) = (v[i], w[i]);
            for j in 0..m {
                row[j] -= vi * w[j] + wi * v[j];
            }
        }
        e[k] = alpha;
        reflectors.push((v, beta));
    }
    d[n - 1] = a[(n - 1) * n + n - 1];
    // Q = H_0 H_1 ⋯, accumulated from the right end so that each reflector
    // only touches the trailing block; then transposed.
    let mut q = vec![0.0; n * n];
    for i in 0..n {
        q[i * n + i] = 1.0;
    }
    for (k, (v, beta)) in reflectors.iter().enumerate().rev() {
        if v.is_empty() {
            continue;
        }
        let off = k + 1;
        let m = n - off;
        // H M = M − β v (vᵀ M) on rows/columns off.., row-wise.
        let mut w = vec![0.0; m];
        for (i, &vi) in v.iter().enumerate() {
            let row = &q[(off + i) * n + off..(off + i + 1) * n];
            for (wj, r) in w.iter_mut().zip(row) {
                *wj += vi * r;
            }
        }
        for (i, &vi) in v.iter().enumerate() {
            let row = &mut q[(off + i) * n + off..(off + i + 1) * n];
            let f = beta * vi;
            for (r, wj) in row.iter_mut().zip(&w) {
                *r -= f * wj;
            }
        }
    }
    let mut qt = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            qt[j * n + i] = q[i * n + j];
        }
    }
    (d, e, qt)
}

/// Diagonalises the symmetric tridiagonal `(d, e)` in place by implicit
/// shifted QR steps, applying every rotation to the rows of `z`.
fn implicit_qr(d: &mut [f64], e: &mut [f64], z: &mut [f64], n: usize) -> Result<()> {
    let mut budget = 60 * n.max(1);
    let mut hi = n - 1;
    while hi > 0 {
        for i in 0..hi {
            if e[i].abs() <= f64::EPSILON * (d[i].abs() + d[i + 1].abs()) {
                e[i] = 0.0;
            }
        }
        if e[hi - 1] == 0.0 {
            hi -= 1;
            continue;
        }
        let mut lo = hi - 1;
        while lo > 0 && e[lo - 1] != 0.0 {
            lo -= 1;
        }
        if budget == 0 {
            return Err(invalid(
                "symmetric eigensolver",
                "implicit QR iteration did not converge",
            ));
        }
        budget -= 1;
        qr_step(d, e, z, n, lo, hi);
    }
    Ok(())
}

/// One implicit QR step with Wilkinson shift on the unreduced block
/// `lo..=hi`, chasing the bulge down with Givens rotations.
fn qr_step(d: &mut [f64], e: &mut [f64], z: &mut [f64], n: usize, lo: usize, hi: usize) {
    let delta = (d[hi - 1] - d[hi]) / 2.0;
    let eh = e[hi - 1];
    let sign = if delta >= 0.0 { 1.0 } else { -1.0 };
    let mu = d[hi] - eh * eh / (delta + sign * delta.hypot(eh));
    let mut x = d[lo] - mu;
    let mut bulge = e[lo];
    for k in lo..hi {
        let r = x.hypot(bulge);
        let (c, s) = if r == 0.0 {
            (1.0, 0.0)
        } else {
            (x / r, bulge / r)
        };
        if k > lo {
            e[k - 1] = r;
        }
        let (a, b, cc) = (d[k], e[k], d[k + 1]);
        d[k] = c * c * a + 2.0 * c * s * b + s * s * cc;
        d[k + 1] = s * s * a - 2.0 * c * s * b + c * c * cc;
        e[k] = c * s * (cc - a) + (c * c - s * s) * b;
        if k + 1 < hi {
            bulge = s * e[k + 1];
            e[k + 1] *= c;
        }
        x = e[k];
        let (head, tail) = z.split_at_mut((k + 1) * n);
        let rk = &mut head[k * n..];
        let rk1 = &mut tail[..n];
        for (p, q) in rk.iter_mut().zip(rk1.iter_mut()) {
            let (zp, zq) = (*p, *q);
            *p = c * zp + s * zq;
            *q = -s * zp + c * zq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &[f64], n: usize) {
        let (values, vectors) = symmetric_eigen(a, n).unwrap();
        let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for i in 0..n {
            let v = &vectors[i * n..(i + 1) * n];
            // A v = λ v and unit norm.
            for r in 0..n {
                let av: f64 = (0..n).map(|c| a[r * n + c] * v[c]).sum();
                assert!((av - values[i] * v[r]).abs() < 1e-10 * scale * n as f64);
            }
            for j in 0..n {
                let dot: f64 = (0..n).map(|c| v[c] * vectors[j * n + c]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-10, "orthonormality {i} {j}: {dot}");
            }
        }
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn random_symmetric_matrices() {
        let mut rng = crate::random::stream_rng(3, 0);
        for n in [1usize, 2, 3, 7, 40] {
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let v = crate::random::standard_normal(&mut rng);
                    a[i * n + j] = v;
                    a[j * n + i] = v;
                }
            }
            check(&a, n);
            let (jv, _) = crate::linalg::symmetric_eigen(&a, n);
            let mut jv = jv;
            jv.sort_by(|x, y| y.total_cmp(x));
            let (ours, _) = symmetric_eigen(&a, n).unwrap();
            for (x, y) in ours.iter().zip(&jv) {
                assert!((x - y).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn degenerate_and_diagonal() {
        // Repeated eigenvalues, an already-diagonal matrix, zeros.
        check(&[2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 5.0], 3);
        check(&[0.0; 16], 4);
        let mut a = vec![1.0; 25];
        for i in 0..5 {
            a[i * 5 + i] = 1.0;
        }
        check(&a, 5);
    }
}
