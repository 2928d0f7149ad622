//! `nearest`: the nearest-population predictor, a trivial reference for the
//! ratio metrics.
//!
//! rMMD and its kin divide a prediction's distance to the truth by the
//! distance from the truth to the *nearest training population*, a set of
//! observed cells. This predictor answers an edit with such a population:
//! among the training populations (cells grouped by their full annotation
//! pattern) that carry the target values on the edited concepts, the one
//! whose mean is nearest to the edited cells' mean
//! ([`conceptlab_eval::nearest_population`]). Each edited cell
//! becomes its nearest cell of that population, not the population mean:
//! the metrics' reference is the population as cells, and a mean would
//! collapse its spread (and any distribution metric with it); pairing each
//! cell with its nearest member also keeps cell-level errors meaningful.
//!
//! Unlike the metrics, which pick the population nearest to the *truth*,
//! the predictor only sees the source cells. It can only return observed
//! cells, so a held-out combination (no training cell of that type has the
//! target values) is answered with cells of another population.

use conceptlab_eval::Points;
use conceptlab_nn::serialize_tensors;
use ndarray::{Array2, ArrayView2, Axis};

use crate::ModelError;
use crate::data::ConceptData;
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual};
use crate::populations::{TrainingCells, check_features, edit_groups};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;

const PREFIX: &str = "nearest.train";

/// The training cells and their populations.
#[derive(Debug, Clone)]
pub struct NearestPopulation {
    dims: Dims,
    cells: TrainingCells,
    /// The annotation pattern of each training cell (its population).
    patterns: Vec<String>,
}

impl NearestPopulation {
    /// Keeps the training cells (closed form: nothing is fitted).
    pub fn fit(data: &ConceptData) -> Result<Self, ModelError> {
        if data.n_cells() == 0 {
            return Err(ModelError::Input("nearest: no training cells".into()));
        }
        Ok(NearestPopulation::new(data.dims(), TrainingCells::of(data)))
    }

    fn new(dims: Dims, cells: TrainingCells) -> Self {
        let patterns = patterns(&cells);
        NearestPopulation {
            dims,
            cells,
            patterns,
        }
    }

    /// Reads the state written by [`Model::to_safetensors`].
    pub fn from_safetensors(dims: Dims, bytes: &[u8]) -> Result<Self, ModelError> {
        Ok(NearestPopulation::new(
            dims,
            TrainingCells::from_safetensors(bytes, PREFIX, dims)?,
        ))
    }
}

/// One key per cell: each concept column's value bits, `?` where unknown.
fn patterns(cells: &TrainingCells) -> Vec<String> {
    (0..cells.n_cells())
        .map(|i| {
            (0..cells.values.ncols())
                .map(|j| {
                    if cells.observed[[i, j]] > 0.0 {
                        format!("{:08x}", cells.values[[i, j]].to_bits())
                    } else {
                        "?".to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn as_f64(x: ArrayView2<f32>) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn eval_error(e: conceptlab_eval::EvalError) -> ModelError {
    ModelError::Input(format!("nearest: {e}"))
}

impl Counterfactual for NearestPopulation {
    /// The edited cells are matched to the training cells as a population.
    fn row_local(&self) -> bool {
        false
    }
    /// The cells' current values of the edited concepts: cells already at
    /// their targets are returned unchanged.
    fn reads_annotations(&self) -> bool {
        true
    }

    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        check_features(request.x, self.dims)?;
        request.check(self.dims.n_concepts())?;
        let mut out = request.x.to_owned();
        for group in edit_groups(request, "nearest")? {
            if group.is_identity() {
                continue;
            }
            let candidates = self.cells.matching(&group.columns, &group.target);
            if candidates.is_empty() {
                return Err(ModelError::Input(format!(
                    "nearest: no training cell has the target values {:?} on concept columns {:?}",
                    group.target, group.columns
                )));
            }
            let d = self.dims.input_dim;
            let source = as_f64(request.x.select(Axis(0), &group.rows).view());
            let train = as_f64(self.cells.x.select(Axis(0), &candidates).view());
            let labels: Vec<String> = candidates
                .iter()
                .map(|&i| self.patterns[i].clone())
                .collect();
            let (_, members) = conceptlab_eval::nearest_population(
                &Points::new("edited cells", &source, d).map_err(eval_error)?,
                &Points::new("training cells", &train, d).map_err(eval_error)?,
                &labels,
            )
            .map_err(eval_error)?;
            let members: Vec<usize> = members.iter().map(|&m| candidates[m]).collect();
            for &r in &group.rows {
                let cell = request.x.row(r);
                let nearest = members
                    .iter()
                    .copied()
                    .min_by(|&a, &b| {
                        let da = squared(cell, self.cells.x.row(a));
                        let db = squared(cell, self.cells.x.row(b));
                        da.total_cmp(&db)
                    })
                    .unwrap_or(members[0]);
                out.row_mut(r).assign(&self.cells.x.row(nearest));
            }
        }
        Ok(Counterfactuals {
            x: out,
            carry: Residual::Discard,
            evaluations: None,
        })
    }
}

fn squared(a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum()
}

impl Model for NearestPopulation {
    fn kind(&self) -> ModelKind {
        ModelKind::Nearest
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::Nearest
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

impl NearestPopulation {
    /// The stored training features (the cells an edit can return).
    pub fn training_x(&self) -> &Array2<f32> {
        &self.cells.x
    }
}
