//! The small dense symmetric eigenproblems FastICA needs (whitening and
//! symmetric decorrelation of `k × k` matrices, `k` at most a few hundred).

/// Eigenvalues (descending) and eigenvectors (columns of the row-major
/// `k × k` result) of the symmetric row-major matrix `a`, by cyclic Jacobi
/// rotations: accurate to machine precision on small matrices and the same
/// arithmetic in the same order on every run.
pub(super) fn symmetric_eigen(a: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; k * k];
    for i in 0..k {
        v[i * k + i] = 1.0;
    }
    let scale: f64 = m
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * k + j] * m[i * k + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = m[p * k + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * k + q] - m[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let (mrp, mrq) = (m[r * k + p], m[r * k + q]);
                    m[r * k + p] = c * mrp - s * mrq;
                    m[r * k + q] = s * mrp + c * mrq;
                }
                for r in 0..k {
                    let (mpr, mqr) = (m[p * k + r], m[q * k + r]);
                    m[p * k + r] = c * mpr - s * mqr;
                    m[q * k + r] = s * mpr + c * mqr;
                }
                for r in 0..k {
                    let (vrp, vrq) = (v[r * k + p], v[r * k + q]);
                    v[r * k + p] = c * vrp - s * vrq;
                    v[r * k + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| m[j * k + j].total_cmp(&m[i * k + i]));
    let values = order.iter().map(|&i| m[i * k + i]).collect();
    let mut vectors = vec![0.0; k * k];
    for (c, &i) in order.iter().enumerate() {
        for r in 0..k {
            vectors[r * k + c] = v[r * k + i];
        }
    }
    (values, vectors)
}

/// `a · b` for row-major `a` (`n × m`) and `b` (`m × p`).
pub(super) fn matmul(a: &[f64], b: &[f64], n: usize, m: usize, p: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * p];
    for i in 0..n {
        for l in 0..m {
            let x = a[i * m + l];
            if x == 0.0 {
                continue;
            }
            for j in 0..p {
                out[i * p + j] += x * b[l * p + j];
            }
        }
    }
    out
}

/// The transpose of the row-major `n × m` matrix `a`.
pub(super) fn transpose(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[j * n + i] = a[i * m + j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvectors_diagonalise() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (values, v) = symmetric_eigen(&a, 3);
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
        // A v_c = λ_c v_c for every column.
        let av = matmul(&a, &v, 3, 3, 3);
        for c in 0..3 {
            for r in 0..3 {
                assert!((av[r * 3 + c] - values[c] * v[r * 3 + c]).abs() < 1e-12);
            }
        }
        let vtv = matmul(&transpose(&v, 3, 3), &v, 3, 3, 3);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((vtv[i * 3 + j] - want).abs() < 1e-12);
            }
        }
        // The trace is kept.
        assert!((values.iter().sum::<f64>() - 8.0).abs() < 1e-12);
    }
}
