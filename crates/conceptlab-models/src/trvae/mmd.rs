//! trVAE's multi-scale RBF MMD between the conditions of a batch.

use candle_core::Tensor;

use crate::ModelError;

/// The 19 bandwidths of trVAE's multi-scale kernel
/// `k(a, b) = Σ_s exp(−‖a − b‖² / (2 σ_s))`.
pub const SIGMAS: [f64; 19] = [
    1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 100.0, 1e3,
    1e4, 1e5, 1e6,
];

/// The kernel matrix between the rows of `a` and `b`.
fn kernel(a: &Tensor, b: &Tensor) -> Result<Tensor, ModelError> {
    let sq_a = a.sqr()?.sum_keepdim(1)?;
    let sq_b = b.sqr()?.sum_keepdim(1)?.t()?;
    let cross = a.matmul(&b.t()?)?;
    // Rounding can make a distance slightly negative; it is a distance.
    let d = (sq_a.broadcast_add(&sq_b)? - (cross * 2.0)?)?.relu()?;
    let mut k = d.zeros_like()?;
    for s in SIGMAS {
        k = (k + (&d * (-1.0 / (2.0 * s)))?.exp()?)?;
    }
    Ok(k)
}

/// The (biased, V-statistic) MMD² between two samples, pair by pair: the
/// reference [`between_conditions`] is checked against.
#[cfg(test)]
fn mmd(a: &Tensor, b: &Tensor) -> Result<Tensor, ModelError> {
    let aa = kernel(a, a)?.mean_all()?;
    let bb = kernel(b, b)?.mean_all()?;
    let ab = kernel(a, b)?.mean_all()?;
    Ok(((aa + bb)? - (ab * 2.0)?)?)
}

/// Σ over every pair of conditions present in the batch of MMD² between
/// their rows of `h`; 0 when the batch holds one condition.
///
/// One kernel matrix K over the batch serves every pair: with M the
/// cells × conditions matrix of 1/n_c memberships, G = Mᵀ K M holds each
/// pair's mean kernel, and Σ_{i<j} (G_ii + G_jj − 2 G_ij) = P·tr G − Σ G
/// over the P conditions present (cost independent of the pair count).
pub fn between_conditions(h: &Tensor, labels: &[usize]) -> Result<Tensor, ModelError> {
    let mut present: Vec<usize> = labels.to_vec();
    present.sort_unstable();
    present.dedup();
    let p = present.len();
    if p < 2 {
        return Ok(Tensor::zeros((), h.dtype(), h.device())?);
    }
    let mut m = vec![0f32; labels.len() * p];
    for (col, &c) in present.iter().enumerate() {
        let n = labels.iter().filter(|&&l| l == c).count() as f32;
        for (i, _) in labels.iter().enumerate().filter(|(_, l)| **l == c) {
            m[i * p + col] = 1.0 / n;
        }
    }
    let m = Tensor::from_vec(m, (labels.len(), p), h.device())?;
    let g = m.t()?.matmul(&kernel(h, h)?.matmul(&m)?)?;
    let eye = Tensor::eye(p, h.dtype(), h.device())?;
    let trace = g.mul(&eye)?.sum_all()?;
    Ok(((trace * p as f64)? - g.sum_all()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mmd_matches_a_direct_sum_and_vanishes_for_equal_samples() {
        let a = Tensor::new(&[[0.0f32, 1.0], [2.0, -1.0]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[0.5f32, 0.0], [1.0, 1.0], [3.0, 2.0]], &Device::Cpu).unwrap();
        let rows = |t: &Tensor| t.to_vec2::<f32>().unwrap();
        let k = |x: &[f32], y: &[f32]| -> f64 {
            let d: f64 = x.iter().zip(y).map(|(p, q)| f64::from(p - q).powi(2)).sum();
            SIGMAS.iter().map(|s| (-d / (2.0 * s)).exp()).sum()
        };
        let mean = |x: &[Vec<f32>], y: &[Vec<f32>]| {
            let mut s = 0.0;
            for p in x {
                for q in y {
                    s += k(p, q);
                }
            }
            s / (x.len() * y.len()) as f64
        };
        let (ra, rb) = (rows(&a), rows(&b));
        let want = mean(&ra, &ra) + mean(&rb, &rb) - 2.0 * mean(&ra, &rb);
        let got = mmd(&a, &b).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );
        assert!(mmd(&a, &a).unwrap().to_scalar::<f32>().unwrap().abs() < 1e-4);
        let h = Tensor::cat(&[&a, &b], 0).unwrap();
        let all = between_conditions(&h, &[0, 0, 1, 1, 1]).unwrap();
        assert!((all.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-4 * want.max(1.0));
        // Three conditions: the sum over the three pairs.
        let labels = [2, 0, 1, 0, 2];
        let rows_of = |c: usize| -> Tensor {
            let idx: Vec<u32> = (0..5)
                .filter(|&i| labels[i] == c)
                .map(|i| i as u32)
                .collect();
            let n = idx.len();
            h.index_select(&Tensor::from_vec(idx, n, &Device::Cpu).unwrap(), 0)
                .unwrap()
        };
        let pairs: f32 = [(0, 1), (0, 2), (1, 2)]
            .iter()
            .map(|&(i, j)| {
                mmd(&rows_of(i), &rows_of(j))
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
            .sum();
        let got = between_conditions(&h, &labels)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            (got - pairs).abs() < 1e-4 * pairs.max(1.0),
            "{got} vs {pairs}"
        );
        let one = between_conditions(&h, &[2; 5]).unwrap();
        assert_eq!(one.to_scalar::<f32>().unwrap(), 0.0);
    }
}
