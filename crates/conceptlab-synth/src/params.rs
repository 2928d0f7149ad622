//! The generator's global parameters, drawn once per
//! data set from stream 0 of the seed.

use conceptlab_core::linalg::{cholesky, matmul, transpose};
use conceptlab_core::random::{self, Rng};
use rand::Rng as _;

use crate::SynthConfig;

/// Ground-truth parameters of a synthetic data set. Matrices are row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Batch probabilities (`n_batches`).
    pub p_batch: Vec<f64>,
    /// Tissue probabilities (`n_tissues`).
    pub p_tissue: Vec<f64>,
    /// Cell-type probabilities given tissue (`n_tissues x n_celltypes`).
    pub p_celltype_in_tissue: Vec<f64>,
    /// Concept probabilities per cell type (`n_celltypes x n_concepts`).
    ///
    /// Each row is a Dirichlet draw, so it sums to one across concepts, yet
    /// each entry is used as an independent Bernoulli probability; with the
    /// default concentration 0.2 most entries are tiny (their logit is clipped
    /// at -8) and a cell type carries one or two common concepts. Kept for
    /// fidelity with the reference.
    pub p_concept_in_celltype: Vec<f64>,
    /// Standard deviation of the library-size offset per batch.
    pub std_libsize: Vec<f64>,
    /// Log-scale effects, one row per level, one column per gene.
    pub batch_coef: Vec<f64>,
    pub celltype_coef: Vec<f64>,
    pub tissue_coef: Vec<f64>,
    /// Concept effects (`n_concepts x n_vars`), zero on a concept's neutral genes.
    pub concept_coef: Vec<f64>,
    /// Covariance of the concept logits (`n_concepts x n_concepts`); zero
    /// unless `concept_dependency`.
    pub concept_covariance: Vec<f64>,
    /// Baseline log rate per gene.
    pub baseline: Vec<f64>,
    /// The perturbation's direct effects and the pathway programs, with
    /// [`SynthConfig::mediation`].
    pub mediation: Option<MediationParams>,
}

/// Ground truth of the mediation option (see [`crate::MediationConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MediationParams {
    /// Direct log-rate effect of the perturbation per gene (`δ`, `n_vars`).
    pub direct: Vec<f64>,
    /// Pathway programs (`w`, `n_pathways x n_vars`), zero off a program.
    pub programs: Vec<f64>,
    /// Activity shift of each pathway under the perturbation.
    pub shifts: Vec<f64>,
}

impl MediationParams {
    pub fn n_pathways(&self) -> usize {
        self.shifts.len()
    }

    /// The perturbation's total log-rate effect on each gene:
    /// `δ_g + Σ_j shift_j·w_jg` (activities are linear in the perturbation).
    pub fn total(&self) -> Vec<f64> {
        let f = self.direct.len();
        (0..f)
            .map(|g| {
                self.direct[g]
                    + (0..self.n_pathways())
                        .map(|j| self.shifts[j] * self.programs[j * f + g])
                        .sum::<f64>()
            })
            .collect()
    }

    /// The shares of the total effect, `(direct, per pathway)`, as the
    /// least-squares projection of each part onto the total over genes:
    /// `share(part) = Σ_g part_g·T_g / Σ_g T_g²`. The parts add up to the
    /// total, so the shares sum to exactly 1 (the estimand `moa` reports).
    pub fn shares(&self) -> (f64, Vec<f64>) {
        let f = self.direct.len();
        let total = self.total();
        let norm: f64 = total.iter().map(|t| t * t).sum();
        let project = |part: &dyn Fn(usize) -> f64| -> f64 {
            if norm > 0.0 {
                (0..f).map(|g| part(g) * total[g]).sum::<f64>() / norm
            } else {
                0.0
            }
        };
        let direct = project(&|g| self.direct[g]);
        let pathways = (0..self.n_pathways())
            .map(|j| project(&|g| self.shifts[j] * self.programs[j * f + g]))
            .collect();
        (direct, pathways)
    }
}

/// The stream parameters are drawn from; cells use streams from 1 upwards.
pub(crate) const PARAMS_STREAM: u64 = 0;

fn normals(rng: &mut Rng, n: usize, sd: f64) -> Vec<f64> {
    (0..n).map(|_| sd * random::standard_normal(rng)).collect()
}

impl SynthParams {
    pub(crate) fn sample(config: &SynthConfig, seed: u64) -> Self {
        let mut rng = random::stream_rng(seed, PARAMS_STREAM);
        let (b, t, u, c, f) = (
            config.n_batches,
            config.n_tissues,
            config.n_celltypes,
            config.n_concepts,
            config.n_vars,
        );
        let p_batch = random::dirichlet(&mut rng, &vec![config.alpha_batch; b]);
        let p_tissue = random::dirichlet(&mut rng, &vec![config.alpha_tissue; t]);
        let p_celltype_in_tissue = (0..t)
            .flat_map(|_| random::dirichlet(&mut rng, &vec![config.alpha_celltype; u]))
            .collect();
        let p_concept_in_celltype = (0..u)
            .flat_map(|_| random::dirichlet(&mut rng, &vec![config.alpha_concept; c]))
            .collect();
        let std_libsize = (0..b)
            .map(|_| rng.random_range(config.std_libsize_lower..=config.std_libsize_upper))
            .collect();
        let batch_coef = normals(&mut rng, b * f, config.std_batch);
        let celltype_coef = normals(&mut rng, u * f, config.std_celltype);
        let tissue_coef = normals(&mut rng, t * f, config.std_tissue);
        let mut concept_coef = normals(&mut rng, c * f, config.std_concept);
        let concept_covariance = if config.concept_dependency {
            wishart_covariance(&mut rng, c, config.cov_prior_range)
        } else {
            vec![0.0; c * c]
        };
        let (lo, hi) = (config.baseline_lower.ln(), config.baseline_upper.ln());
        let baseline = (0..f)
            .map(|_| {
                if hi > lo {
                    rng.random_range(lo..hi)
                } else {
                    lo
                }
            })
            .collect();
        if config.sparse_concept_effects {
            for k in 0..c {
                let share = 1.0 - random::beta(&mut rng, config.beta_a, config.beta_b);
                for coef in &mut concept_coef[k * f..(k + 1) * f] {
                    if random::open_uniform(&mut rng) >= share {
                        *coef = 0.0;
                    }
                }
            }
        }
        // Drawn last from the parameter stream, so that data sets without
        // the option draw exactly what they always did.
        let mediation = config.mediation.as_ref().map(|m| {
            let direct = normals(&mut rng, f, m.std_direct);
            let mut programs = normals(&mut rng, m.shifts.len() * f, m.std_program);
            for w in &mut programs {
                if random::open_uniform(&mut rng) >= m.program_share {
                    *w = 0.0;
                }
            }
            MediationParams {
                direct,
                programs,
                shifts: m.shifts.clone(),
            }
        });
        Self {
            mediation,
            p_batch,
            p_tissue,
            p_celltype_in_tissue,
            p_concept_in_celltype,
            std_libsize,
            batch_coef,
            celltype_coef,
            tissue_coef,
            concept_coef,
            concept_covariance,
            baseline,
        }
    }
}

/// Σ ~ Wishart(df = c, scale = S) with `S = L Lᵀ + 1e-6 I` and the lower
/// triangle of `L` uniform in `(-range, range)`, by Bartlett's decomposition.
/// (The reference drew `L` from numpy's unseeded global generator.)
fn wishart_covariance(rng: &mut Rng, c: usize, range: f64) -> Vec<f64> {
    let mut l = vec![0.0; c * c];
    for i in 0..c {
        for j in 0..=i {
            l[i * c + j] = if range > 0.0 {
                rng.random_range(-range..range)
            } else {
                0.0
            };
        }
    }
    let mut scale = matmul(&l, &transpose(&l, c, c), c, c, c);
    for i in 0..c {
        scale[i * c + i] += 1e-6;
    }
    let Some(chol) = cholesky(&scale, c) else {
        return vec![0.0; c * c];
    };
    // Bartlett: A lower triangular, A_ii = sqrt(chi2(df - i)), A_ij ~ N(0, 1).
    let df = c as f64;
    let mut a = vec![0.0; c * c];
    for i in 0..c {
        a[i * c + i] = (2.0 * random::gamma(rng, (df - i as f64) / 2.0)).sqrt();
        for j in 0..i {
            a[i * c + j] = random::standard_normal(rng);
        }
    }
    let la = matmul(&chol, &a, c, c, c);
    matmul(&la, &transpose(&la, c, c), c, c, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_sparsity() {
        let config = SynthConfig {
            n_vars: 2000,
            n_concepts: 6,
            ..SynthConfig::default()
        };
        let p = SynthParams::sample(&config, 1);
        assert_eq!(p.concept_coef.len(), 6 * 2000);
        assert_eq!(p.p_celltype_in_tissue.len(), 3 * 4);
        for row in p.p_concept_in_celltype.chunks(6) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        // E[share of affected genes] = 1 - E[Beta(1, 0.8)] = 0.444; every concept
        // keeps some genes neutral and the overall share is plausible.
        let zeros = p.concept_coef.iter().filter(|&&x| x == 0.0).count() as f64
            / p.concept_coef.len() as f64;
        assert!(zeros > 0.05 && zeros < 0.999, "{zeros}");
        assert!(p.baseline.iter().all(|&w| (0.0..5f64.ln()).contains(&w)));
        assert!(p.concept_covariance.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn wishart_is_symmetric_positive_definite() {
        let mut rng = random::stream_rng(4, 0);
        let s = wishart_covariance(&mut rng, 5, 5.0);
        for i in 0..5 {
            for j in 0..5 {
                assert!((s[i * 5 + j] - s[j * 5 + i]).abs() < 1e-9 * s[i * 5 + i].abs().max(1.0));
            }
        }
        assert!(cholesky(&s, 5).is_some());
    }
}
