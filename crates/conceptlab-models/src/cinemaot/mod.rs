//! `cinemaot`: CINEMA-OT (causal independent effect module attribution +
//! optimal transport) as a registry model, written from its description.
//!
//! Nothing is trained: the model keeps the training cells (features and
//! annotations) and answers each edit from them. For the cells that share
//! an edit (the same edited concepts, current values and targets):
//!
//! 1. *control* = training cells annotated with the current values on the
//!    edited concepts, *treated* = those annotated with the targets;
//! 2. PCA (`n_components`) of control ∪ treated, then FastICA of the scores
//!    ([`ica`]: scikit-learn's defaults, seeded start);
//! 3. confounders = the independent components whose Chatterjee ξ with the
//!    treatment indicator is below `thres` ([`xi`]);
//! 4. entropic OT ([`sinkhorn`], `ε = smoothness × #confounders`, stopping
//!    at an L1 marginal error of `eps` or after `max_iter` iterations) from
//!    the training controls and the edited cells (appended, as the
//!    reference concatenates train and the cells to edit) to the treated
//!    cells, in confounder coordinates; edited cells are projected with the
//!    fitted PCA and ICA, so cells never seen in training are matched too;
//! 5. each edited cell becomes the plan-weighted average of the treated
//!    cells, its plan row normalised to sum to 1.
//!
//! Step 5 deviates from the reference, which divides every row by the
//! *mean* row sum: with Sinkhorn stopped at a finite tolerance the row
//! sums differ, and the mean-sum rule then scales a cell's prediction
//! towards the origin of the feature space by its row's deficit. The
//! per-row rule is CINEMA-OT's own and always gives a convex combination
//! of treated cells (docs/baselines.md has the measurement).
//!
//! The predictor can only return (mixtures of) *observed* treated cells.
//! For a held-out combination — no training cell of the edited cells' type
//! has the target values — the edited cells are mapped onto treated cells
//! of other types, those nearest in confounder space; it cannot predict how
//! the unseen type itself responds.

pub mod config;
pub mod ica;
mod linalg;
pub mod sinkhorn;
pub mod xi;

#[cfg(test)]
mod golden_tests;

use conceptlab_core::preprocess::Pca;
use conceptlab_core::random::{stream_rng, streams};
use conceptlab_nn::serialize_tensors;
use ndarray::{Array2, ArrayView2, Axis};

pub use config::CinemaOtConfig;

use crate::ModelError;
use crate::data::ConceptData;
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual};
use crate::populations::{EditGroup, TrainingCells, check_features, edit_groups};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;

const PREFIX: &str = "cinemaot.train";

/// Most entries of one transport plan (rows × columns); each takes 16 bytes
/// (cost and plan), so this is 4 GiB.
pub const MAX_PLAN_ENTRIES: usize = 1 << 28;

/// How the plan rows of the edited cells become weights (step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowWeights {
    /// Each row divided by its own sum (CINEMA-OT; ours).
    PerRow,
    /// Every row divided by the mean row sum (the reference's rule; only
    /// the tests measure it).
    #[cfg_attr(not(test), allow(dead_code))]
    MeanRowSum,
}

/// CINEMA-OT over the stored training cells.
#[derive(Debug, Clone)]
pub struct CinemaOt {
    dims: Dims,
    config: CinemaOtConfig,
    seed: u64,
    cells: TrainingCells,
}

/// What one group's matching found (for logs and tests).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matching {
    /// ξ of every independent component with the treatment.
    pub xi: Vec<f64>,
    pub n_confounders: usize,
    pub sinkhorn_iterations: usize,
    pub sinkhorn_error: f64,
    /// `edited cells × treated cells`: the weights of the prediction.
    pub weights: Array2<f64>,
    /// Training rows of the treated cells.
    pub treated: Vec<usize>,
}

impl CinemaOt {
    /// Keeps the training cells of `data` (nothing is fitted before an edit).
    pub fn fit(config: &CinemaOtConfig, data: &ConceptData, seed: u64) -> Result<Self, ModelError> {
        CinemaOt::new(config.clone(), data.dims(), seed, TrainingCells::of(data))
    }

    fn new(
        config: CinemaOtConfig,
        dims: Dims,
        seed: u64,
        cells: TrainingCells,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if cells.n_cells() == 0 {
            return Err(ModelError::Input("cinemaot: no training cells".into()));
        }
        Ok(CinemaOt {
            dims,
            config,
            seed,
            cells,
        })
    }

    /// Reads the state written by [`Model::to_safetensors`].
    pub fn from_safetensors(
        config: &CinemaOtConfig,
        dims: Dims,
        seed: u64,
        bytes: &[u8],
    ) -> Result<Self, ModelError> {
        let cells = TrainingCells::from_safetensors(bytes, PREFIX, dims)?;
        CinemaOt::new(config.clone(), dims, seed, cells)
    }

    /// Steps 1–5 for one group of edited cells `x` (`rows` of them).
    pub(crate) fn match_group(
        &self,
        group: &EditGroup,
        x: ArrayView2<f32>,
        rule: RowWeights,
    ) -> Result<Matching, ModelError> {
        let control = self.cells.matching(&group.columns, &group.source);
        let treated = self.cells.matching(&group.columns, &group.target);
        let describe = |v: &[f32]| format!("values {v:?} on concept columns {:?}", group.columns);
        if control.is_empty() || treated.is_empty() {
            let (what, v) = if control.is_empty() {
                ("control", &group.source)
            } else {
                ("treated", &group.target)
            };
            return Err(ModelError::Input(format!(
                "cinemaot: no {what} training cell has the {}",
                describe(v)
            )));
        }
        let (nc, nt, ns) = (control.len(), treated.len(), x.nrows());
        if (nc + ns).saturating_mul(nt) > MAX_PLAN_ENTRIES {
            return Err(ModelError::Input(format!(
                "cinemaot: a transport plan of {} × {nt} cells exceeds {MAX_PLAN_ENTRIES} entries; \
                 edit fewer cells at once or subsample the training cells",
                nc + ns
            )));
        }
        let both: Vec<usize> = control.iter().chain(&treated).copied().collect();
        let train_x = self.cells.x.select(Axis(0), &both);
        let pca = Pca::fit(&train_x, self.config.n_components, self.seed)?;
        let k = pca.n_components;
        let to_f64 = |a: &Array2<f32>| a.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let scores = to_f64(&pca.transform(&train_x)?);
        let mut rng = stream_rng(self.seed, streams::CINEMAOT_ICA_INIT);
        let ica = ica::Ica::fit(&scores, both.len(), k, k, &mut rng)?;
        if !ica.converged {
            tracing::warn!(
                iterations = ica.iterations,
                "cinemaot: FastICA stopped before its tolerance"
            );
        }
        let sources = ica.transform(&scores, both.len());
        let treatment: Vec<f64> = (0..both.len())
            .map(|i| f64::from(u8::from(i >= nc)))
            .collect();
        let xi: Vec<f64> = (0..k)
            .map(|c| {
                let column: Vec<f64> = (0..both.len()).map(|i| sources[i * k + c]).collect();
                xi::chatterjee_xi(&column, &treatment)
            })
            .collect();
        let confounders: Vec<usize> = (0..k).filter(|&c| xi[c] < self.config.thres).collect();
        if confounders.is_empty() {
            return Err(ModelError::Input(format!(
                "cinemaot: every independent component is associated with the treatment \
                 (Chatterjee ξ {xi:.3?} ≥ thres {}); raise model.cinemaot.thres",
                self.config.thres
            )));
        }
        let edited = ica.transform(&to_f64(&pca.transform(&x.to_owned())?), ns);
        let coords = |s: &[f64], i: usize| -> Vec<f64> {
            confounders.iter().map(|&c| s[i * k + c]).collect()
        };
        // Rows: training controls, then the edited cells.
        let rows: Vec<Vec<f64>> = (0..nc)
            .map(|i| coords(&sources, i))
            .chain((0..ns).map(|i| coords(&edited, i)))
            .collect();
        let cols: Vec<Vec<f64>> = (nc..nc + nt).map(|i| coords(&sources, i)).collect();
        let mut cost = Vec::with_capacity(rows.len() * nt);
        for r in &rows {
            for c in &cols {
                cost.push(r.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f64>());
            }
        }
        let eps = self.config.smoothness * confounders.len() as f64;
        let plan = sinkhorn::sinkhorn(
            &cost,
            rows.len(),
            nt,
            eps,
            self.config.eps,
            self.config.max_iter,
        );
        if plan.error.partial_cmp(&self.config.eps) != Some(std::cmp::Ordering::Less) {
            tracing::warn!(
                iterations = plan.iterations,
                error = plan.error,
                "cinemaot: Sinkhorn stopped at max_iter before reaching eps"
            );
        }
        let edited_rows = Array2::from_shape_vec((ns, nt), plan.plan[nc * nt..].to_vec())
            .map_err(|e| ModelError::Input(format!("cinemaot: {e}")))?;
        let sums = edited_rows.sum_axis(Axis(1));
        let mean_sum = sums.mean().unwrap_or(0.0);
        let mut weights = edited_rows;
        for (mut row, &s) in weights.rows_mut().into_iter().zip(&sums) {
            let divisor = match rule {
                RowWeights::PerRow => s,
                RowWeights::MeanRowSum => mean_sum,
            };
            if divisor.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Err(ModelError::Input(
                    "cinemaot: an edited cell received no transport mass (every treated cell \
                     is too far for the regularisation); raise model.cinemaot.smoothness"
                        .into(),
                ));
            }
            row /= divisor;
        }
        tracing::debug!(
            confounders = confounders.len(),
            components = k,
            iterations = plan.iterations,
            error = plan.error,
            "cinemaot: matched {ns} cells to {nt} treated cells"
        );
        Ok(Matching {
            xi,
            n_confounders: confounders.len(),
            sinkhorn_iterations: plan.iterations,
            sinkhorn_error: plan.error,
            weights,
            treated,
        })
    }

    /// The counterfactuals under a given row rule (tests compare the rules).
    pub(crate) fn counterfactual_with(
        &self,
        request: &EditRequest,
        rule: RowWeights,
    ) -> Result<Array2<f32>, ModelError> {
        check_features(request.x, self.dims)?;
        request.check(self.dims.n_concepts())?;
        let mut out = request.x.to_owned();
        for group in edit_groups(request, "cinemaot")? {
            if group.is_identity() {
                continue;
            }
            let x = request.x.select(Axis(0), &group.rows);
            let m = self.match_group(&group, x.view(), rule)?;
            let treated_x = self.cells.x.select(Axis(0), &m.treated).mapv(f64::from);
            let predicted = m.weights.dot(&treated_x);
            for (k, &r) in group.rows.iter().enumerate() {
                out.row_mut(r).assign(&predicted.row(k).mapv(|v| v as f32));
            }
        }
        if let Some((i, j)) = crate::first_non_finite(out.view()) {
            return Err(ModelError::Input(format!(
                "cinemaot: the prediction of cell {i} is not finite at feature {j}"
            )));
        }
        Ok(out)
    }
}

impl Counterfactual for CinemaOt {
    /// The edited cells are matched to the training cells as a population.
    fn row_local(&self) -> bool {
        false
    }
    /// The cells' current values of the edited concepts pick the controls.
    fn reads_annotations(&self) -> bool {
        true
    }

    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        Ok(Counterfactuals {
            x: self.counterfactual_with(request, RowWeights::PerRow)?,
            carry: Residual::Discard,
            evaluations: None,
        })
    }
}

impl Model for CinemaOt {
    fn kind(&self) -> ModelKind {
        ModelKind::CinemaOt
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::CinemaOt(self.config.clone())
    }
    fn dims(&self) -> Dims {
        self.dims
    }
    fn n_parameters(&self) -> usize {
        0
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        Ok(serialize_tensors(self.cells.tensors(PREFIX)?)?)
    }
}
