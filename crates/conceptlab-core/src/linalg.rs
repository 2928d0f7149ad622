//! Small dense linear algebra on row-major `f64` slices (covariances of a few
//! dozen dimensions; nothing here is meant for large matrices).

/// The lower-triangular Cholesky factor `L` of a symmetric positive-definite
/// `n x n` matrix (`a = L Lᵀ`), or `None` when `a` is not positive definite.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    if a.len() != n * n {
        return None;
    }
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - dot;
                if d.is_nan() || d <= 0.0 {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - dot) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// `a · b` for row-major `a` (`n x k`) and `b` (`k x m`).
pub fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for p in 0..k {
            let x = a[i * k + p];
            if x != 0.0 {
                for j in 0..m {
                    out[i * m + j] += x * b[p * m + j];
                }
            }
        }
    }
    out
}

/// The transpose of a row-major `n x m` matrix.
pub fn transpose(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[j * n + i] = a[i * m + j];
        }
    }
    out
}

/// Eigenvalues and eigenvectors of a symmetric `n x n` matrix by cyclic
/// Jacobi rotations: `(values, vectors)` with eigenvector `i` in column `i`
/// of the row-major `vectors`. Accurate to a few ulps for the covariance
/// sizes used here (up to a few hundred dimensions).
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = m
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

/// The symmetric positive semi-definite square root `V diag(sqrt(max(λ, 0))) Vᵀ`.
pub fn psd_sqrt(a: &[f64], n: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(a, n);
    let mut scaled = vectors.clone();
    for i in 0..n {
        for j in 0..n {
            scaled[i * n + j] *= values[j].max(0.0).sqrt();
        }
    }
    matmul(&scaled, &transpose(&vectors, n, n), n, n, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let back = matmul(&l, &transpose(&l, 3, 3), 3, 3, 3);
        for (x, y) in back.iter().zip(a) {
            assert!((x - y).abs() < 1e-12);
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn eigen_reconstructs_and_sqrt_squares_back() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, -0.2, 0.5, -0.2, 2.0];
        let (values, vectors) = symmetric_eigen(&a, 3);
        // A v = λ v for every pair.
        for i in 0..3 {
            let v: Vec<f64> = (0..3).map(|k| vectors[k * 3 + i]).collect();
            let av = matmul(&a, &v, 3, 3, 1);
            for k in 0..3 {
                assert!((av[k] - values[i] * v[k]).abs() < 1e-12);
            }
        }
        assert!((values.iter().sum::<f64>() - 9.0).abs() < 1e-12);
        let r = psd_sqrt(&a, 3);
        let back = matmul(&r, &r, 3, 3, 3);
        for (x, y) in back.iter().zip(a) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}
