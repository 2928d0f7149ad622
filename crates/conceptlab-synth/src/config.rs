//! Generator settings and the named presets under `configs/synth/`.

use serde::{Deserialize, Serialize};

use crate::SynthError;

/// Everything that shapes a synthetic data set.
/// Defaults are the reference benchmark builder's, with 8 concepts
/// (`synthetic_1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    pub n_obs: usize,
    pub n_vars: usize,
    pub n_batches: usize,
    pub n_tissues: usize,
    pub n_celltypes: usize,
    pub n_concepts: usize,
    /// Range of baseline rates on the linear scale (log-uniform baselines).
    pub baseline_lower: f64,
    pub baseline_upper: f64,
    /// Standard deviations of the log-scale effect coefficients.
    pub std_batch: f64,
    pub std_celltype: f64,
    pub std_tissue: f64,
    pub std_concept: f64,
    /// Range of the per-batch standard deviation of the library-size offset.
    pub std_libsize_lower: f64,
    pub std_libsize_upper: f64,
    /// Standard deviation of the per-gene Gaussian noise on the log rate.
    pub std_noise: f64,
    /// Each concept affects only a random subset of genes (share drawn as
    /// `1 - Beta(beta_a, beta_b)`). The reference calls this `zero_inflate`,
    /// although it sparsifies effects, not counts.
    pub sparse_concept_effects: bool,
    pub beta_a: f64,
    pub beta_b: f64,
    /// Correlated concept logits (Wishart covariance); off in every
    /// configuration the paper used.
    pub concept_dependency: bool,
    pub cov_prior_range: f64,
    /// Dirichlet concentrations of the batch, tissue, cell-type-in-tissue and
    /// concept-in-cell-type probabilities.
    pub alpha_batch: f64,
    pub alpha_tissue: f64,
    pub alpha_celltype: f64,
    pub alpha_concept: f64,
    pub benchmark: BenchmarkConfig,
    /// Ground truth for mechanism-of-action analysis: a perturbation acting
    /// on genes directly and through pathway programs. Off (None) by
    /// default, and then nothing of it is drawn or written, so every other
    /// data set stays byte-identical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mediation: Option<MediationConfig>,
}

/// A perturbation `s` (obs `stim`: ctrl / stim) that changes gene `g`'s log
/// rate by `s·δ_g` directly and through pathway activities
/// `a_j = s·shift_j + std_activity·ξ_j`, which add `a_j·w_jg` (pathway
/// `j`'s gene program). Cells carry `a_j` observed with noise,
/// `o_j = a_j + std_observation·ζ_j`, as the soft concept `pathway_<j>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediationConfig {
    /// Probability that a cell is perturbed.
    pub p_perturbed: f64,
    /// Activity shift of each pathway under the perturbation (one entry per
    /// pathway; 0 makes a pathway the perturbation does not touch).
    pub shifts: Vec<f64>,
    /// Standard deviation of the direct effects `δ_g`.
    pub std_direct: f64,
    /// Standard deviation of the program loadings `w_jg` (on the genes of
    /// the program).
    pub std_program: f64,
    /// Share of genes in each pathway program (the others have `w_jg = 0`).
    pub program_share: f64,
    /// Per-cell spread of the activities around their mean (what lets a
    /// model tell a pathway's effect from the perturbation's).
    pub std_activity: f64,
    /// Noise of the observed activity.
    pub std_observation: f64,
}

impl Default for MediationConfig {
    fn default() -> Self {
        Self {
            p_perturbed: 0.5,
            shifts: vec![1.0, 0.6, 0.0],
            std_direct: 0.15,
            std_program: 0.25,
            program_share: 0.3,
            std_activity: 0.5,
            std_observation: 0.1,
        }
    }
}

impl MediationConfig {
    fn validate(&self) -> Result<(), SynthError> {
        let bad = |msg: String| Err(SynthError::InvalidConfig(format!("mediation: {msg}")));
        if !(self.p_perturbed > 0.0 && self.p_perturbed < 1.0) {
            return bad(format!(
                "p_perturbed must be in (0, 1), found {}",
                self.p_perturbed
            ));
        }
        if !(1..=MAX_LEVELS).contains(&self.shifts.len()) {
            return bad(format!(
                "shifts must list between 1 and {MAX_LEVELS} pathways, found {}",
                self.shifts.len()
            ));
        }
        if let Some(s) = self.shifts.iter().find(|s| !s.is_finite()) {
            return bad(format!("shifts must be finite, found {s}"));
        }
        for (name, value) in [
            ("std_direct", self.std_direct),
            ("std_program", self.std_program),
            ("std_activity", self.std_activity),
            ("std_observation", self.std_observation),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return bad(format!(
                    "{name} must be a finite non-negative number, found {value}"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.program_share) {
            return bad(format!(
                "program_share must be in [0, 1], found {}",
                self.program_share
            ));
        }
        Ok(())
    }
}

/// How the held-out benchmark split is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchmarkConfig {
    /// Number of held-out (cell type, concept) combinations.
    pub n_hold_out: usize,
    /// A combination is eligible only when the cell type has at least this
    /// many cells with the concept on, and twice as many with it off (half of
    /// those are edited). The reference drew among all combinations, some of
    /// which have no cell to edit or nothing held out.
    pub min_cells: usize,
}

impl Default for BenchmarkConfig {
    fn default() -> Self {
        Self {
            n_hold_out: 5,
            min_cells: 10,
        }
    }
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            n_obs: 10_000,
            n_vars: 5_000,
            n_batches: 2,
            n_tissues: 3,
            n_celltypes: 4,
            n_concepts: 8,
            baseline_lower: 1.0,
            baseline_upper: 5.0,
            std_batch: 0.06,
            std_celltype: 0.04,
            std_tissue: 0.05,
            std_concept: 0.08,
            std_libsize_lower: 0.01,
            std_libsize_upper: 0.03,
            std_noise: 0.01,
            sparse_concept_effects: true,
            beta_a: 1.0,
            beta_b: 0.8,
            concept_dependency: false,
            cov_prior_range: 5.0,
            alpha_batch: 10.0,
            alpha_tissue: 10.0,
            alpha_celltype: 1.0,
            alpha_concept: 0.2,
            benchmark: BenchmarkConfig::default(),
            mediation: None,
        }
    }
}

/// The built-in presets, compiled into the binary from `configs/synth/`.
const PRESETS: &[(&str, &str)] = &[
    (
        "synthetic_1",
        include_str!("../../../configs/synth/synthetic_1.toml"),
    ),
    (
        "synthetic_2",
        include_str!("../../../configs/synth/synthetic_2.toml"),
    ),
    (
        "synthetic_3",
        include_str!("../../../configs/synth/synthetic_3.toml"),
    ),
    (
        "concept_size_8",
        include_str!("../../../configs/synth/concept_size_8.toml"),
    ),
    (
        "concept_size_20",
        include_str!("../../../configs/synth/concept_size_20.toml"),
    ),
    (
        "concept_size_50",
        include_str!("../../../configs/synth/concept_size_50.toml"),
    ),
    (
        "concept_size_100",
        include_str!("../../../configs/synth/concept_size_100.toml"),
    ),
    (
        "concept_size_250",
        include_str!("../../../configs/synth/concept_size_250.toml"),
    ),
];

/// Most cells a synthetic data set may have (an atlas is a few million).
pub const MAX_CELLS: usize = 100_000_000;
/// Most genes (a genome has about 60,000, with non-coding ones).
pub const MAX_GENES: usize = 1_000_000;
/// Most batches, tissues, cell types or concepts.
pub const MAX_LEVELS: usize = 10_000;

impl SynthConfig {
    /// Names of the built-in presets.
    pub fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in preset by name.
    pub fn preset(name: &str) -> Result<Self, SynthError> {
        let (_, text) =
            PRESETS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| SynthError::UnknownPreset {
                    name: name.to_owned(),
                    available: Self::preset_names().join(", "),
                })?;
        Self::from_toml(text)
    }

    /// Parses and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, SynthError> {
        let config: Self = toml::from_str(text).map_err(|e| SynthError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Bytes generating and writing this data set needs at its peak: the
    /// counts, their float copy in X, the counts layer and the encoded
    /// file are each about one cells x genes matrix (None when that
    /// overflows).
    pub fn estimated_bytes(&self) -> Option<u64> {
        const BYTES_PER_ENTRY: u64 = 4 * 4;
        let entries = (self.n_obs as u64).checked_mul(self.n_vars as u64)?;
        let effects = (self.n_concepts as u64 + self.n_celltypes as u64)
            .checked_mul(self.n_vars as u64)?
            .checked_mul(8)?;
        entries.checked_mul(BYTES_PER_ENTRY)?.checked_add(effects)
    }

    /// Checks ranges the generator relies on, including upper bounds (a
    /// typo such as `--cells 18446744073709551615` is refused here, before
    /// anything is allocated).
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |msg: String| Err(SynthError::InvalidConfig(msg));
        for (name, value, max) in [
            ("n_obs", self.n_obs, MAX_CELLS),
            ("n_vars", self.n_vars, MAX_GENES),
            ("n_batches", self.n_batches, MAX_LEVELS),
            ("n_tissues", self.n_tissues, MAX_LEVELS),
            ("n_celltypes", self.n_celltypes, MAX_LEVELS),
            ("n_concepts", self.n_concepts, MAX_LEVELS),
        ] {
            if !(1..=max).contains(&value) {
                return bad(format!("{name} must be between 1 and {max}, got {value}"));
            }
        }
        if !(self.baseline_lower > 0.0 && self.baseline_lower <= self.baseline_upper) {
            return bad(format!(
                "baseline range must satisfy 0 < lower <= upper, found [{}, {}]",
                self.baseline_lower, self.baseline_upper
            ));
        }
        if !(self.std_libsize_lower >= 0.0 && self.std_libsize_lower <= self.std_libsize_upper) {
            return bad("std_libsize range must satisfy 0 <= lower <= upper".into());
        }
        for (name, value) in [
            ("std_batch", self.std_batch),
            ("std_celltype", self.std_celltype),
            ("std_tissue", self.std_tissue),
            ("std_concept", self.std_concept),
            ("std_noise", self.std_noise),
            ("cov_prior_range", self.cov_prior_range),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return bad(format!(
                    "{name} must be a finite non-negative number, found {value}"
                ));
            }
        }
        for (name, value) in [
            ("beta_a", self.beta_a),
            ("beta_b", self.beta_b),
            ("alpha_batch", self.alpha_batch),
            ("alpha_tissue", self.alpha_tissue),
            ("alpha_celltype", self.alpha_celltype),
            ("alpha_concept", self.alpha_concept),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return bad(format!("{name} must be positive, found {value}"));
            }
        }
        if let Some(m) = &self.mediation {
            m.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for name in SynthConfig::preset_names() {
            let c = SynthConfig::preset(name).unwrap();
            assert_eq!(c.n_vars, 5000, "{name}");
        }
        assert_eq!(
            SynthConfig::preset("synthetic_1").unwrap(),
            SynthConfig::default()
        );
        assert_eq!(
            SynthConfig::preset("concept_size_250").unwrap().n_concepts,
            250
        );
        assert!(matches!(
            SynthConfig::preset("nope"),
            Err(SynthError::UnknownPreset { .. })
        ));
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert!(SynthConfig::from_toml("n_obs = 0").is_err());
        assert!(SynthConfig::from_toml("baseline_lower = 0.0").is_err());
        assert!(SynthConfig::from_toml("n_cells = 3").is_err());
        assert!(SynthConfig::from_toml("[mediation]\np_perturbed = 1.0").is_err());
        assert!(SynthConfig::from_toml("[mediation]\nshifts = []").is_err());
        // Off, the option is absent from the configuration uns["synth"]
        // records, so files of existing configurations are unchanged.
        let text = toml::to_string(&SynthConfig::default()).unwrap();
        assert!(!text.contains("mediation"), "{text}");
        let on = SynthConfig::from_toml("[mediation]\nshifts = [1.0, 0.0]").unwrap();
        let round = toml::to_string(&on).unwrap();
        assert_eq!(SynthConfig::from_toml(&round).unwrap(), on);
        assert_eq!(on.mediation.unwrap().shifts, vec![1.0, 0.0]);
    }
}
