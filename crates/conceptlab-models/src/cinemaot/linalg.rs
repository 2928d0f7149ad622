//! The small dense symmetric eigenproblems FastICA needs (whitening and
//! symmetric decorrelation of `k × k` matrices, `k` at most a few hundred).

pub(super) use conceptlab_core::linalg::{matmul, transpose};

/// Eigenvalues (descending) and eigenvectors (columns of the row-major
/// `k × k` result, in the same order) of the symmetric row-major matrix `a`:
/// core's Jacobi solver, sorted, since whitening keeps the leading
/// components.
pub(super) fn symmetric_eigen(a: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let (m, v) = conceptlab_core::linalg::symmetric_eigen(a, k);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| m[j].total_cmp(&m[i]));
    let values = order.iter().map(|&i| m[i]).collect();
    let mut vectors = vec![0.0; k * k];
    for (c, &i) in order.iter().enumerate() {
        for r in 0..k {
            vectors[r * k + c] = v[r * k + i];
        }
    }
    (values, vectors)
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
