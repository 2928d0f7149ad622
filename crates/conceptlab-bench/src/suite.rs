//! The synthetic suite: cells from the generator with exact counterfactual
//! twins, the paper's zero-shot split (held-out (cell type, concept)
//! combinations), and one preprocessing shared by every combination.

use conceptlab_core::{DenseArray, Matrix, NumVec};
use conceptlab_models::{PreprocessConfig, Preprocessor};
use conceptlab_synth::{Intervention, Role, SynthConfig, SynthDataset, benchmark_split, generate};
use ndarray::Array2;

use crate::BenchError;

/// Kang's median library size: the paper's synthetic benchmark scales every
/// cell to it.
pub const SYNTHETIC_TARGET_SUM: f64 = 1214.0;

/// The preprocessing of the synthetic benchmark: `base`, normalising to
/// [`SYNTHETIC_TARGET_SUM`] unless it names a target of its own.
pub fn synthetic_preprocessing(base: &PreprocessConfig) -> PreprocessConfig {
    let mut config = base.clone();
    config.target_sum = config.target_sum.or(Some(SYNTHETIC_TARGET_SUM));
    config
}

/// Generated cells, their held-out combinations and shared features.
pub struct SyntheticSuite {
    pub data: SynthDataset,
    pub interventions: Vec<Intervention>,
    pub pre: Preprocessor,
    /// One row per generated cell (`data.n_obs()` rows).
    pub features: Array2<f32>,
    /// Cells the preprocessing was fitted on.
    pub n_fitted: usize,
}

impl SyntheticSuite {
    /// Generates `config`'s cells under `seed`, splits them and fits the
    /// preprocessing.
    pub fn generate(
        config: &SynthConfig,
        seed: u64,
        preprocess: &PreprocessConfig,
    ) -> Result<Self, BenchError> {
        config.validate()?;
        let data = generate(config, seed)?;
        let interventions = benchmark_split(&data)?;
        Self::prepare(data, interventions, preprocess, seed)
    }

    /// The suite of a preset (`synthetic_1`, ...), optionally resized.
    pub fn preset(
        name: &str,
        cells: Option<usize>,
        genes: Option<usize>,
        seed: u64,
        preprocess: &PreprocessConfig,
    ) -> Result<Self, BenchError> {
        let mut config = SynthConfig::preset(name)?;
        if let Some(n) = cells {
            config.n_obs = n;
        }
        if let Some(g) = genes {
            config.n_vars = g;
        }
        Self::generate(&config, seed, preprocess)
    }

    /// Fits the preprocessing (normalisation, PCA) once, on the cells that
    /// no combination of the split holds out, so that it has seen none of
    /// any combination's dropped cells: every run stays zero-shot, all of
    /// them share one PC space (their errors are in the same units), and a
    /// suite pays for one PCA instead of one per combination.
    pub fn prepare(
        data: SynthDataset,
        interventions: Vec<Intervention>,
        config: &PreprocessConfig,
        seed: u64,
    ) -> Result<Self, BenchError> {
        let fit_rows: Vec<usize> = (0..data.n_obs())
            .filter(|&n| interventions.iter().all(|iv| iv.roles[n] != Role::Drop))
            .collect();
        let counts = counts_matrix(&data.counts, data.n_obs(), data.n_vars())?;
        let (pre, features) = Preprocessor::fit(&counts, config, Some(&fit_rows), seed)?;
        Ok(SyntheticSuite {
            data,
            interventions,
            pre,
            features,
            n_fitted: fit_rows.len(),
        })
    }
}

/// Counts as a dense f32 matrix.
pub(crate) fn counts_matrix(
    counts: &[u32],
    rows: usize,
    cols: usize,
) -> Result<Matrix, BenchError> {
    let data: Vec<f32> = counts.iter().map(|&c| c as f32).collect();
    Ok(Matrix::Dense(DenseArray::new(
        vec![rows, cols],
        NumVec::F32(data),
    )?))
}
