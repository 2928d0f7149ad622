//! The per-cell generative process and exact
//! counterfactuals.
//!
//! Cell `n` draws its batch, tissue, cell type, concepts and library offset
//! from stream `1 + 2n` of the seed, and its per-gene Gaussian noise `ε` and
//! exogenous uniforms `e` from stream `2 + 2n`. Counts are Poisson quantiles
//! of `e`: `x = F⁻¹_{Poisson(exp η)}(e)`. Because the noise stream can be
//! replayed for any cell, counterfactuals reuse exactly the same `ε` and `e`
//! without storing them (they would take twice the memory of the counts),
//! and generation is independent of how cells are spread over threads.

use conceptlab_core::linalg::cholesky;
use conceptlab_core::random::{self, Rng};
use rayon::prelude::*;

use crate::{SynthConfig, SynthError, SynthParams};

/// Logits of concept probabilities are clipped to this range, as in the reference.
const LOGIT_CLIP: f64 = 8.0;

/// A generated data set: the latent variables of every cell, its counts, and
/// the parameters that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthDataset {
    pub config: SynthConfig,
    pub seed: u64,
    pub params: SynthParams,
    pub batch: Vec<u32>,
    pub tissue: Vec<u32>,
    pub celltype: Vec<u32>,
    /// Binary concepts, `n_obs x n_concepts`, row-major.
    pub concepts: Vec<u8>,
    /// The Bernoulli probability each concept was drawn with, `n_obs x n_concepts`.
    pub concept_prob: Vec<f64>,
    /// Library-size offset `l` of each cell (log scale).
    pub libsize: Vec<f64>,
    /// Counts, `n_obs x n_vars`, row-major.
    pub counts: Vec<u32>,
    /// The perturbation and pathway activities of every cell, with
    /// [`SynthConfig::mediation`].
    pub mediation: Option<MediatedCells>,
}

/// Per-cell latent and observed variables of the mediation option.
#[derive(Debug, Clone, PartialEq)]
pub struct MediatedCells {
    /// 1 where the cell is perturbed (`n_obs`).
    pub perturbed: Vec<u8>,
    /// True pathway activities `a` (`n_obs x n_pathways`, row-major).
    pub activity: Vec<f64>,
    /// What the cells' annotations show: `a` plus observation noise.
    pub observed: Vec<f64>,
}

impl SynthDataset {
    pub fn n_obs(&self) -> usize {
        self.config.n_obs
    }

    pub fn n_vars(&self) -> usize {
        self.config.n_vars
    }

    pub fn n_concepts(&self) -> usize {
        self.config.n_concepts
    }

    /// The concepts of cell `n`.
    pub fn cell_concepts(&self, n: usize) -> &[u8] {
        let c = self.n_concepts();
        &self.concepts[n * c..(n + 1) * c]
    }

    /// The counts of cell `n`.
    pub fn cell_counts(&self, n: usize) -> &[u32] {
        let f = self.n_vars();
        &self.counts[n * f..(n + 1) * f]
    }
}

/// The latent state of one cell that counterfactuals hold fixed.
struct CellState {
    batch: usize,
    tissue: usize,
    celltype: usize,
    libsize: f64,
    /// Mediation option: whether the cell is perturbed, its pathway
    /// activities and their observed values (empty without the option).
    perturbed: bool,
    activity: Vec<f64>,
    observed: Vec<f64>,
}

use conceptlab_core::random::streams::{
    synth_assignment as assignment_stream, synth_noise as noise_stream,
};

fn logit(p: f64) -> f64 {
    ((p + 1e-8) / (1.0 - p + 1e-8)).ln()
}

/// Generates a data set (parallel over cells; the result does not depend on
/// the number of threads).
pub fn generate(config: &SynthConfig, seed: u64) -> Result<SynthDataset, SynthError> {
    config.validate()?;
    conceptlab_fs::memory::check(
        config.estimated_bytes(),
        &format!("{} cells x {} genes", config.n_obs, config.n_vars),
    )?;
    let params = SynthParams::sample(config, seed);
    let (n, f, c) = (config.n_obs, config.n_vars, config.n_concepts);
    let covariance_factor = if config.concept_dependency {
        Some(cholesky(&params.concept_covariance, c).ok_or_else(|| {
            SynthError::InvalidConfig(
                "the sampled concept covariance is not positive definite".into(),
            )
        })?)
    } else {
        None
    };
    let mut counts = vec![0u32; n * f];
    let mut concepts = vec![0u8; n * c];
    let mut concept_prob = vec![0.0; n * c];
    let states: Vec<CellState> = counts
        .par_chunks_mut(f)
        .zip(concepts.par_chunks_mut(c))
        .zip(concept_prob.par_chunks_mut(c))
        .enumerate()
        .map(|(cell, ((row, v), prob))| {
            let state = draw_cell(
                config,
                &params,
                covariance_factor.as_deref(),
                seed,
                cell,
                v,
                prob,
            );
            fill_counts(config, &params, seed, cell, &state, v, row);
            state
        })
        .collect();
    let mediation = config.mediation.is_some().then(|| MediatedCells {
        perturbed: states.iter().map(|s| u8::from(s.perturbed)).collect(),
        activity: states.iter().flat_map(|s| s.activity.clone()).collect(),
        observed: states.iter().flat_map(|s| s.observed.clone()).collect(),
    });
    Ok(SynthDataset {
        mediation,
        config: config.clone(),
        seed,
        batch: states.iter().map(|s| s.batch as u32).collect(),
        tissue: states.iter().map(|s| s.tissue as u32).collect(),
        celltype: states.iter().map(|s| s.celltype as u32).collect(),
        libsize: states.iter().map(|s| s.libsize).collect(),
        params,
        concepts,
        concept_prob,
        counts,
    })
}

/// Draws a cell's categorical assignments, concepts and library offset.
fn draw_cell(
    config: &SynthConfig,
    params: &SynthParams,
    covariance_factor: Option<&[f64]>,
    seed: u64,
    cell: usize,
    concepts: &mut [u8],
    prob: &mut [f64],
) -> CellState {
    let mut rng = random::stream_rng(seed, assignment_stream(cell));
    let (u, c) = (config.n_celltypes, config.n_concepts);
    let batch = random::categorical(&mut rng, &params.p_batch);
    let tissue = random::categorical(&mut rng, &params.p_tissue);
    let celltype = random::categorical(
        &mut rng,
        &params.p_celltype_in_tissue[tissue * u..(tissue + 1) * u],
    );
    let mut logits: Vec<f64> = params.p_concept_in_celltype[celltype * c..(celltype + 1) * c]
        .iter()
        .map(|&p| logit(p))
        .collect();
    if let Some(l) = covariance_factor {
        let z: Vec<f64> = (0..c).map(|_| random::standard_normal(&mut rng)).collect();
        for (i, logit) in logits.iter_mut().enumerate() {
            *logit += (0..=i).map(|j| l[i * c + j] * z[j]).sum::<f64>();
        }
    }
    for k in 0..c {
        let p = 1.0 / (1.0 + (-logits[k].clamp(-LOGIT_CLIP, LOGIT_CLIP)).exp());
        prob[k] = p;
        concepts[k] = u8::from(random::open_uniform(&mut rng) < p);
    }
    let libsize = params.std_libsize[batch] * random::standard_normal(&mut rng);
    // Drawn after everything else on the cell's stream, so that data sets
    // without the option are unchanged.
    let (mut perturbed, mut activity, mut observed) = (false, Vec::new(), Vec::new());
    if let Some(m) = &config.mediation {
        perturbed = random::open_uniform(&mut rng) < m.p_perturbed;
        for &shift in &m.shifts {
            let a = f64::from(u8::from(perturbed)) * shift
                + m.std_activity * random::standard_normal(&mut rng);
            activity.push(a);
            observed.push(a + m.std_observation * random::standard_normal(&mut rng));
        }
    }
    CellState {
        batch,
        tissue,
        celltype,
        libsize,
        perturbed,
        activity,
        observed,
    }
}

/// Computes a cell's counts under `concepts`, replaying its noise stream.
/// Generation and counterfactuals both go through here, so an unchanged
/// concept vector reproduces the counts bit for bit.
fn fill_counts(
    config: &SynthConfig,
    params: &SynthParams,
    seed: u64,
    cell: usize,
    state: &CellState,
    concepts: &[u8],
    out: &mut [u32],
) {
    let f = config.n_vars;
    let mut rng: Rng = random::stream_rng(seed, noise_stream(cell));
    let active: Vec<&[f64]> = concepts
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0)
        .map(|(k, _)| &params.concept_coef[k * f..(k + 1) * f])
        .collect();
    let celltype = &params.celltype_coef[state.celltype * f..(state.celltype + 1) * f];
    let batch = &params.batch_coef[state.batch * f..(state.batch + 1) * f];
    let tissue = &params.tissue_coef[state.tissue * f..(state.tissue + 1) * f];
    let mediated = params.mediation.as_ref();
    for g in 0..f {
        let noise = config.std_noise * random::standard_normal(&mut rng);
        let uniform = random::open_uniform(&mut rng);
        let mut eta = params.baseline[g];
        for coef in &active {
            eta += coef[g];
        }
        eta += celltype[g] + batch[g] + tissue[g] + state.libsize + noise;
        if let Some(m) = mediated {
            if state.perturbed {
                eta += m.direct[g];
            }
            for (j, a) in state.activity.iter().enumerate() {
                eta += a * m.programs[j * f + g];
            }
        }
        out[g] = random::poisson_quantile(eta.exp(), uniform);
    }
}

/// Counts of `cells` had their concepts been `concepts` (`cells.len() x
/// n_concepts`, row-major), holding every other latent variable and all
/// exogenous noise fixed: the abduction-action-prediction counterfactual.
/// With the mediation option the perturbation and pathway activities are
/// held at the cell's own too.
/// Returns `cells.len() x n_vars` counts, row-major.
pub fn counterfactual(
    data: &SynthDataset,
    cells: &[usize],
    concepts: &[u8],
) -> Result<Vec<u32>, SynthError> {
    let (f, c) = (data.n_vars(), data.n_concepts());
    if concepts.len() != cells.len() * c {
        return Err(SynthError::InvalidRequest(format!(
            "expected {} concept values ({} cells x {c} concepts), found {}",
            cells.len() * c,
            cells.len(),
            concepts.len()
        )));
    }
    if let Some(&bad) = cells.iter().find(|&&n| n >= data.n_obs()) {
        return Err(SynthError::InvalidRequest(format!(
            "cell {bad} does not exist (the data set has {} cells)",
            data.n_obs()
        )));
    }
    if let Some(&bad) = concepts.iter().find(|&&v| v > 1) {
        return Err(SynthError::InvalidRequest(format!(
            "concept values must be 0 or 1, found {bad}"
        )));
    }
    let mut out = vec![0u32; cells.len() * f];
    out.par_chunks_mut(f)
        .zip(concepts.par_chunks(c))
        .zip(cells.par_iter())
        .for_each(|((row, v), &n)| {
            let (perturbed, activity) = match &data.mediation {
                Some(m) => {
                    let p = data.params.mediation.as_ref().map_or(0, |p| p.n_pathways());
                    (m.perturbed[n] == 1, m.activity[n * p..(n + 1) * p].to_vec())
                }
                None => (false, Vec::new()),
            };
            let state = CellState {
                batch: data.batch[n] as usize,
                tissue: data.tissue[n] as usize,
                celltype: data.celltype[n] as usize,
                libsize: data.libsize[n],
                perturbed,
                activity,
                observed: Vec::new(),
            };
            fill_counts(&data.config, &data.params, data.seed, n, &state, v, row);
        });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            n_obs: 300,
            n_vars: 200,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(&small(), 5).unwrap();
        assert_eq!(a, generate(&small(), 5).unwrap());
        assert_ne!(a.counts, generate(&small(), 6).unwrap().counts);
    }

    #[test]
    fn unchanged_concepts_reproduce_counts_exactly() {
        let data = generate(&small(), 9).unwrap();
        let cells: Vec<usize> = (0..data.n_obs()).step_by(7).collect();
        let concepts: Vec<u8> = cells
            .iter()
            .flat_map(|&n| data.cell_concepts(n).to_vec())
            .collect();
        let cf = counterfactual(&data, &cells, &concepts).unwrap();
        for (i, &n) in cells.iter().enumerate() {
            assert_eq!(&cf[i * 200..(i + 1) * 200], data.cell_counts(n));
        }
    }

    #[test]
    fn mediation_is_off_by_default_and_leaves_other_draws_alone() {
        let plain = generate(&small(), 3).unwrap();
        assert!(plain.mediation.is_none() && plain.params.mediation.is_none());
        let config = SynthConfig {
            mediation: Some(crate::MediationConfig::default()),
            ..small()
        };
        let med = generate(&config, 3).unwrap();
        // Everything drawn before the option's draws is the same.
        assert_eq!(med.concepts, plain.concepts);
        assert_eq!(med.libsize, plain.libsize);
        assert_eq!(med.params.concept_coef, plain.params.concept_coef);
        let m = med.mediation.as_ref().unwrap();
        let on = m.perturbed.iter().filter(|&&v| v == 1).count();
        assert!(on > 100 && on < 200, "{on}");
        let (direct, pathways) = med.params.mediation.as_ref().unwrap().shares();
        assert_eq!(pathways[2], 0.0);
        assert!((direct + pathways.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Counterfactuals with the cell's own concepts still replay it.
        let cf = counterfactual(&med, &[4], med.cell_concepts(4)).unwrap();
        assert_eq!(cf, med.cell_counts(4));
    }

    #[test]
    fn bad_requests_are_errors() {
        let data = generate(&small(), 1).unwrap();
        assert!(counterfactual(&data, &[0], &[0; 3]).is_err());
        assert!(counterfactual(&data, &[300], &[0; 8]).is_err());
        assert!(counterfactual(&data, &[0], &[2; 8]).is_err());
    }
}
