//! Seeded, splittable randomness.
//!
//! Every random number in conceptlab comes from a [`Rng`] built by
//! [`stream_rng`]: a ChaCha8 generator keyed by the user's seed, on one of
//! 2^64 independent streams. Giving each unit of parallel work (a cell, a
//! batch) its own stream makes results independent of thread count and
//! scheduling, and lets a computation be replayed for one unit alone (the
//! synthetic generator regenerates a cell's exogenous noise that way instead
//! of storing it).

use rand::SeedableRng;
use rand::distr::Distribution;
use rand_distr::{Gamma, StandardNormal};

/// Every stream of the house, in one place. Under one seed, each purpose owns
/// its streams, so that adding a use of randomness never shifts another's
/// draws (and seeded checkpoints stay byte-identical across versions).
///
/// | purpose | stream(s) | seed |
/// |---|---|---|
/// | synthetic parameters | 0 | generator seed |
/// | synthetic cell `n`: assignments, concepts, library | `1 + 2n` | generator seed |
/// | synthetic cell `n`: per-gene noise, exogenous uniforms | `2 + 2n` | generator seed |
/// | zero-shot benchmark split | `u64::MAX − 1` | generator seed |
/// | concept corruption (benchmark) | `u64::MAX − 7` | run seed |
/// | stratified split, stratum of rank `s` | `s` | run seed |
/// | PCA: randomized sketch; completion of rank-deficient components | 0; 1 | run seed |
/// | model weights | [`streams::INIT`] | run seed |
/// | training epoch `e`: shuffling, noise, dropout | [`streams::EPOCH_BASE`] `+ e` | run seed |
/// | flow validation noise | [`streams::VALIDATION_NOISE`] | run seed |
/// | flow validation split | [`streams::SHUFFLED_SPLIT`] | run seed ^ [`streams::SHUFFLED_SPLIT_SALT`] |
/// | flow decode noise, chunk `k` | [`streams::DECODE_NOISE_BASE`] `+ k` | sampling seed |
/// | gene-set control genes of set `p` (scanpy's score) | [`streams::GENE_SET_CONTROLS_BASE`] `+ p` | scoring seed |
/// | CINEMA-OT: FastICA's starting matrix (every edit group) | [`streams::CINEMAOT_ICA_INIT`] | run seed |
/// | scGen edit: resampling of one (source, target) population pair | [`streams::SCGEN_BALANCE`] | model seed ^ FNV-1a of the pair |
/// | pbmc suite: stimulation program (genes, fold changes, type magnitudes) | [`streams::PBMC_PROGRAM`] | suite seed |
/// | pbmc suite: which cells are stimulated | [`streams::PBMC_ASSIGNMENT`] | suite seed |
/// | pbmc suite: stochastic rounding of the stimulated twins | [`streams::PBMC_ROUNDING`] | suite seed |
/// | ConceptFlow prior noise of a decode (chunks in order) | [`streams::CONCEPTFLOW_PRIOR_NOISE`] | sampling seed |
pub mod streams {
    /// A model's initial weights.
    pub const INIT: u64 = 0;
    /// Training epoch `e` draws from stream `EPOCH_BASE + e`.
    pub const EPOCH_BASE: u64 = 1 << 20;
    /// The fixed noise a flow's validation loss is scored with (fixed, so
    /// the early-stopping signal is not noisier than it must be).
    pub const VALIDATION_NOISE: u64 = (1 << 20) - 2;
    /// The shuffled (unstratified) validation split: stream 1 of the seed
    /// xored with this salt.
    pub const SHUFFLED_SPLIT_SALT: u64 = 0x5eed;
    pub const SHUFFLED_SPLIT: u64 = 1;
    /// Starting noise of chunk `k` of a decode from fresh noise.
    pub const DECODE_NOISE_BASE: u64 = 1 << 21;
    /// The control genes of gene set `p` (in file order) draw from stream
    /// `GENE_SET_CONTROLS_BASE + p`.
    pub const GENE_SET_CONTROLS_BASE: u64 = 1 << 40;
    /// CINEMA-OT's FastICA start (reserved range `(1 << 42) + 0x400 ..+ 0x100`).
    pub const CINEMAOT_ICA_INIT: u64 = (1 << 42) + 0x400;
    /// The pbmc semi-synthetic suite's stimulation program.
    pub const PBMC_PROGRAM: u64 = (1 << 42) + 0x500;
    /// Which cells of the pbmc suite are stimulated.
    pub const PBMC_ASSIGNMENT: u64 = (1 << 42) + 0x501;
    /// The uniforms that round the pbmc suite's stimulated counts.
    pub const PBMC_ROUNDING: u64 = (1 << 42) + 0x502;
    /// ConceptFlow's draws from its learned prior in a decode (one stream,
    /// chunks in order; range `(1 << 42) + 0x300 ..+ 0x100`).
    pub const CONCEPTFLOW_PRIOR_NOISE: u64 = (1 << 42) + 0x100 * 3;
    /// The benchmark's concept corruption (far from the generator's cell streams).
    pub const CORRUPTION: u64 = u64::MAX - 7;
    /// scGen's edit-time balancing of the training populations (reserved
    /// range `(1 << 42) + 0x600 + k`).
    pub const SCGEN_BALANCE: u64 = (1 << 42) + 0x600;
    /// The synthetic benchmark's zero-shot split.
    pub const BENCHMARK_SPLIT: u64 = u64::MAX - 1;
    /// Synthetic cell `n`'s assignments, concepts and library offset.
    pub fn synth_assignment(n: usize) -> u64 {
        1 + 2 * n as u64
    }
    /// Synthetic cell `n`'s per-gene noise and exogenous uniforms.
    pub fn synth_noise(n: usize) -> u64 {
        2 + 2 * n as u64
    }
}

/// The generator type used throughout the workspace.
pub type Rng = rand_chacha::ChaCha8Rng;

/// The generator for `stream` under `seed`. Distinct streams are
/// statistically independent; the same `(seed, stream)` always yields the
/// same sequence, on every platform.
pub fn stream_rng(seed: u64, stream: u64) -> Rng {
    let mut rng = Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A standard normal draw.
pub fn standard_normal(rng: &mut Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A uniform draw in the open interval (0, 1): never exactly 0, so inverse
/// CDFs never see their degenerate end point.
pub fn open_uniform(rng: &mut Rng) -> f64 {
    // 53 random bits, offset by half a step: (k + 0.5) / 2^53.
    ((rand::Rng::random::<u64>(rng) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A draw from Gamma(shape, 1). Shapes must be positive; a non-positive
/// shape (which no caller in this workspace produces) yields 0.
pub fn gamma(rng: &mut Rng, shape: f64) -> f64 {
    Gamma::new(shape, 1.0).map_or(0.0, |g| g.sample(rng))
}

/// A draw from Beta(a, b), via two gamma variates.
pub fn beta(rng: &mut Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

/// A draw from Dirichlet(alpha), via normalised gamma variates.
pub fn dirichlet(rng: &mut Rng, alpha: &[f64]) -> Vec<f64> {
    let draws: Vec<f64> = alpha.iter().map(|&a| gamma(rng, a)).collect();
    let total: f64 = draws.iter().sum();
    if total > 0.0 {
        draws.iter().map(|d| d / total).collect()
    } else {
        // All draws underflowed (tiny concentrations): put the mass on one entry.
        let mut out = vec![0.0; alpha.len()];
        if !out.is_empty() {
            let pick = (open_uniform(rng) * out.len() as f64) as usize;
            out[pick.min(alpha.len() - 1)] = 1.0;
        }
        out
    }
}

/// An index drawn with probabilities proportional to `weights`.
pub fn categorical(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut target = open_uniform(rng) * total;
    for (i, &w) in weights.iter().enumerate() {
        if target < w {
            return i;
        }
        target -= w;
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

/// The `u`-quantile of Poisson(`lambda`): the smallest `k` with
/// `P(X <= k) >= u`, by summing the pmf with the recurrence
/// `p(k+1) = p(k) * lambda / (k+1)`. `u` outside (0, 1) is clamped, so the
/// result is never negative (scipy's `poisson.ppf(0)` returns -1).
pub fn poisson_quantile(lambda: f64, u: f64) -> u32 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    let u = u.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
    if lambda > 500.0 {
        // exp(-lambda) underflows: use the normal approximation with continuity correction.
        let z = normal_quantile(u);
        return (lambda + z * lambda.sqrt() - 0.5).ceil().max(0.0) as u32;
    }
    let mut k = 0u32;
    let mut p = (-lambda).exp();
    let mut cdf = p;
    while cdf < u {
        k += 1;
        p *= lambda / f64::from(k);
        cdf += p;
        if p == 0.0 && cdf < u {
            // Rounding left the cdf just short of u far in the tail.
            break;
        }
    }
    k
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9), used only for very large Poisson means.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| rand::Rng::random(&mut stream_rng(7, 1)))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| rand::Rng::random(&mut stream_rng(7, 1)))
            .collect();
        assert_eq!(a, b);
        let mut s1 = stream_rng(7, 1);
        let mut s2 = stream_rng(7, 2);
        let x: Vec<u64> = (0..4).map(|_| rand::Rng::random(&mut s1)).collect();
        let y: Vec<u64> = (0..4).map(|_| rand::Rng::random(&mut s2)).collect();
        assert_ne!(x, y);
    }

    /// Golden values from scipy.stats.poisson.ppf (scipy 1.17).
    #[test]
    fn poisson_quantile_matches_scipy() {
        let cases = [
            (1.0, 0.5, 1),
            (1.0, 0.367_879_441_171_442_3, 0),
            (1.0, 0.367_879_441_171_443, 1),
            (4.2, 0.01, 0),
            (4.2, 0.99, 10),
            (4.2, 0.5, 4),
            (0.3, 0.9, 1),
            (12.0, 0.05, 7),
            (12.0, 0.999, 24),
        ];
        for (lambda, u, expected) in cases {
            assert_eq!(
                poisson_quantile(lambda, u),
                expected,
                "lambda {lambda}, u {u}"
            );
        }
        assert_eq!(poisson_quantile(3.0, 0.0), 0);
        assert_eq!(poisson_quantile(0.0, 0.7), 0);
    }

    #[test]
    fn poisson_quantile_of_uniforms_is_poisson() {
        let mut rng = stream_rng(3, 0);
        let lambda = 2.5;
        let n = 200_000;
        let draws: Vec<f64> = (0..n)
            .map(|_| f64::from(poisson_quantile(lambda, open_uniform(&mut rng))))
            .collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // Standard errors: sqrt(lambda / n) ~ 0.0035 for the mean.
        assert!((mean - lambda).abs() < 0.02, "mean {mean}");
        assert!((var - lambda).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn dirichlet_and_beta_moments() {
        let mut rng = stream_rng(11, 0);
        let n = 50_000;
        let alpha = [1.0, 2.0, 7.0];
        let mut mean = [0.0; 3];
        for _ in 0..n {
            let d = dirichlet(&mut rng, &alpha);
            assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (m, x) in mean.iter_mut().zip(d) {
                *m += x / n as f64;
            }
        }
        for (m, a) in mean.iter().zip(alpha) {
            assert!((m - a / 10.0).abs() < 0.005, "{mean:?}");
        }
        let b: f64 = (0..n).map(|_| beta(&mut rng, 1.0, 0.5)).sum::<f64>() / n as f64;
        assert!((b - 2.0 / 3.0).abs() < 0.01, "beta mean {b}");
    }

    #[test]
    fn categorical_frequencies() {
        let mut rng = stream_rng(5, 9);
        let w = [0.2, 0.0, 0.8];
        let mut counts = [0usize; 3];
        for _ in 0..100_000 {
            counts[categorical(&mut rng, &w)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[0] as f64 / 1e5 - 0.2).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn normal_quantile_accuracy() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813_5).abs() < 1e-8);
        assert!(normal_quantile(0.5).abs() < 1e-12);
    }
}
