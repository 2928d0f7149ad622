//! The trivial predictors of the paper's tables, as registry models: every
//! benchmark row needs them, and a user asking "is scCBGM better than doing
//! nothing on my data?" fits them like any model.
//!
//! - [`CopySource`] (`copy`): the edited cells are the source cells. Its
//!   error is what an edit must beat to have done anything.
//! - [`MeanShift`] (`mean-shift`): every cell moves by the training data's
//!   mean difference between the target and its current concept values.

use candle_core::{Device, Tensor};
use conceptlab_nn::serialize_tensors;
use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::ModelError;
use crate::data::ConceptData;
use crate::model::{Counterfactual, Counterfactuals, EditRequest, Model, Residual};
use crate::registry::{ModelConfig, ModelKind};
use crate::sccbgm::Dims;

/// Returns the source cells unchanged.
#[derive(Debug, Clone)]
pub struct CopySource {
    dims: Dims,
}

impl CopySource {
    pub fn new(dims: Dims) -> Self {
        CopySource { dims }
    }
}

impl Counterfactual for CopySource {
    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        check_features(request.x, self.dims)?;
        request.check(self.dims.n_concepts())?;
        Ok(Counterfactuals {
            x: request.x.to_owned(),
            carry: Residual::Keep,
            evaluations: None,
        })
    }
}

impl Model for CopySource {
    fn kind(&self) -> ModelKind {
        ModelKind::Copy
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::Copy
    }
    fn dims(&self) -> Dims {
        self.dims
    }
    fn n_parameters(&self) -> usize {
        0
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        Ok(serialize_tensors(Vec::new())?)
    }
}

fn check_features(x: ArrayView2<f32>, dims: Dims) -> Result<(), ModelError> {
    if x.ncols() != dims.input_dim {
        return Err(ModelError::Input(format!(
            "the model takes {} features, the cells have {}",
            dims.input_dim,
            x.ncols()
        )));
    }
    Ok(())
}

const EFFECTS: &str = "mean_shift.effects";
const BASELINE: &str = "mean_shift.baseline";

/// Moves each cell by `Σ_j (v_j − c_j) · effect_j` over the concept columns
/// the edit sets, where `v` is the target and `c` the cell's current value
/// (its annotation; where it has none, the training mean of the column).
///
/// The effects are fitted per source annotation, so that one formula serves
/// every kind of concept:
/// - a binary hard column: the difference of the feature means of the
///   cells with it on and off (`c` moves 0 → 1 by exactly that);
/// - a soft column: the least-squares slope of each feature on it;
/// - a one-hot categorical group: each category's feature mean, so that
///   moving a cell from category A to B adds `mean(B) − mean(A)`, and a cell
///   of unknown category (its `c` the category frequencies) moves from the
///   group's overall mean.
///
/// Only observed annotations enter a mean. A column that is never observed,
/// or never both on and off, has no effect (0), and editing it moves nothing.
#[derive(Debug, Clone)]
pub struct MeanShift {
    dims: Dims,
    /// concept columns × features.
    effects: Array2<f32>,
    /// The training value of each concept column used when a cell's own is unknown.
    baseline: Array1<f32>,
}

impl MeanShift {
    /// Fits the effects on training cells.
    pub fn fit(data: &ConceptData) -> Result<Self, ModelError> {
        let dims = data.dims();
        let (k, d) = (data.concepts.ncols(), data.x.ncols());
        let mut effects = Array2::<f32>::zeros((k, d));
        let mut baseline = Array1::<f32>::zeros(k);
        let observed_rows = |j: usize| -> Vec<usize> {
            (0..data.n_cells())
                .filter(|&i| data.observed[[i, j]] > 0.0)
                .collect()
        };
        let mean_of = |rows: &[usize]| data.x.select(Axis(0), rows).mean_axis(Axis(0));
        for group in &data.groups {
            if group.len() > 1 {
                // One-hot categories: each one's mean; baseline = frequency.
                let rows = observed_rows(group.start);
                for j in group.clone() {
                    let members: Vec<usize> = rows
                        .iter()
                        .copied()
                        .filter(|&i| data.concepts[[i, j]] > 0.5)
                        .collect();
                    if let Some(m) = mean_of(&members) {
                        effects.row_mut(j).assign(&m);
                    }
                    baseline[j] = members.len() as f32 / rows.len().max(1) as f32;
                }
                continue;
            }
            let j = group.start;
            let rows = observed_rows(j);
            let c: Vec<f32> = rows.iter().map(|&i| data.concepts[[i, j]]).collect();
            baseline[j] = c.iter().sum::<f32>() / c.len().max(1) as f32;
            if j < data.n_hard {
                let (on, off): (Vec<usize>, Vec<usize>) =
                    rows.iter().partition(|&&i| data.concepts[[i, j]] > 0.5);
                if let (Some(m_on), Some(m_off)) = (mean_of(&on), mean_of(&off)) {
                    effects.row_mut(j).assign(&(m_on - m_off));
                }
            } else if let Some(slope) = slope(&data.x, &rows, &c) {
                effects.row_mut(j).assign(&slope);
            }
        }
        MeanShift::new(dims, effects, baseline)
    }

    fn new(dims: Dims, effects: Array2<f32>, baseline: Array1<f32>) -> Result<Self, ModelError> {
        let k = dims.n_concepts();
        if effects.dim() != (k, dims.input_dim) || baseline.len() != k {
            return Err(ModelError::Input(format!(
                "mean-shift effects {:?} and baseline {} do not fit {k} concepts × {} features",
                effects.dim(),
                baseline.len(),
                dims.input_dim
            )));
        }
        if let Some((i, j)) = crate::first_non_finite(effects.view()) {
            return Err(ModelError::Input(format!(
                "mean-shift effect of concept {i} on feature {j} is not finite"
            )));
        }
        Ok(MeanShift {
            dims,
            effects,
            baseline,
        })
    }

    /// The fitted effect of each concept column (concepts × features).
    pub fn effects(&self) -> &Array2<f32> {
        &self.effects
    }

    /// Reads the state written by [`Model::to_safetensors`].
    pub fn from_safetensors(dims: Dims, bytes: &[u8]) -> Result<Self, ModelError> {
        let mut tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
        let mut take = |name: &str| {
            tensors
                .remove(name)
                .ok_or_else(|| ModelError::Input(format!("the weights lack `{name}`")))
        };
        let (effects, baseline) = (take(EFFECTS)?, take(BASELINE)?);
        let shape = effects.dims().to_vec();
        let [rows, cols] = shape[..] else {
            return Err(ModelError::Input(format!(
                "`{EFFECTS}` has shape {shape:?}, expected concepts × features"
            )));
        };
        let effects =
            Array2::from_shape_vec((rows, cols), effects.flatten_all()?.to_vec1::<f32>()?)
                .map_err(|e| ModelError::Input(format!("`{EFFECTS}`: {e}")))?;
        let baseline = Array1::from(baseline.flatten_all()?.to_vec1::<f32>()?);
        MeanShift::new(dims, effects, baseline)
    }
}

/// Per-feature least-squares slope of `x[rows]` on `c` (None when `c` is constant).
fn slope(x: &Array2<f32>, rows: &[usize], c: &[f32]) -> Option<Array1<f32>> {
    let n = rows.len();
    if n < 2 {
        return None;
    }
    let c_mean = c.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var: f64 = c.iter().map(|&v| (v as f64 - c_mean).powi(2)).sum();
    if var <= 0.0 {
        return None;
    }
    let mut cov = vec![0.0f64; x.ncols()];
    let mut means = vec![0.0f64; x.ncols()];
    for &i in rows {
        for (m, &v) in means.iter_mut().zip(x.row(i)) {
            *m += v as f64 / n as f64;
        }
    }
    for (&i, &ci) in rows.iter().zip(c) {
        let dc = ci as f64 - c_mean;
        for ((s, &v), m) in cov.iter_mut().zip(x.row(i)).zip(&means) {
            *s += dc * (v as f64 - m);
        }
    }
    Some(cov.iter().map(|s| (s / var) as f32).collect())
}

impl Counterfactual for MeanShift {
    /// The cells' current concept values come from their annotations.
    fn reads_annotations(&self) -> bool {
        true
    }

    fn counterfactual(&self, request: &EditRequest) -> Result<Counterfactuals, ModelError> {
        check_features(request.x, self.dims)?;
        request.check(self.dims.n_concepts())?;
        let n = request.x.nrows();
        let k = self.dims.n_concepts();
        // change[i, j] = (v − c) where the edit sets concept j, else 0.
        let mut change = Array2::<f32>::zeros((n, k));
        for i in 0..n {
            for j in 0..k {
                if request.mask[[i, j]] == 0.0 {
                    continue;
                }
                let current = match &request.annotations {
                    Some(a) if a.observed[[i, j]] > 0.0 => a.values[[i, j]],
                    _ => self.baseline[j],
                };
                change[[i, j]] = request.values[[i, j]] - current;
            }
        }
        let x = &request.x + &change.dot(&self.effects);
        Ok(Counterfactuals {
            x,
            carry: Residual::Keep,
            evaluations: None,
        })
    }
}

impl Model for MeanShift {
    fn kind(&self) -> ModelKind {
        ModelKind::MeanShift
    }
    fn config(&self) -> ModelConfig {
        ModelConfig::MeanShift
    }
    fn dims(&self) -> Dims {
        self.dims
    }
    fn n_parameters(&self) -> usize {
        self.effects.len()
    }
    fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let cpu = Device::Cpu;
        let effects = Tensor::from_vec(
            self.effects.iter().copied().collect::<Vec<f32>>(),
            self.effects.dim(),
            &cpu,
        )?;
        let baseline = Tensor::from_vec(self.baseline.to_vec(), self.baseline.len(), &cpu)?;
        Ok(serialize_tensors(vec![
            (EFFECTS.to_string(), effects),
            (BASELINE.to_string(), baseline),
        ])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Annotations;
    use ndarray::array;

    /// Four cells, 2 features; concept 0 binary hard, concepts 1..4 a
    /// one-hot group of three categories, concept 4 soft.
    fn data() -> ConceptData {
        let x = array![
            [0.0, 0.0],
            [2.0, 1.0],
            [4.0, 0.0],
            [6.0, 3.0],
            [1.0, 1.0],
            [3.0, 2.0]
        ];
        let c = array![
            [0.0, 1.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 1.0, 0.0, 0.5],
            [0.0, 0.0, 0.0, 1.0, 1.0],
            [1.0, 0.0, 0.0, 1.0, 1.0],
            [0.0, 1.0, 0.0, 0.0, 0.25],
            [1.0, 0.0, 1.0, 0.0, 0.0]
        ];
        let mut observed = Array2::ones(c.dim());
        // Cell 5's soft value is unknown: it must not enter the slope.
        observed[[5, 4]] = 0.0;
        ConceptData::new(x, c, observed, 4)
            .unwrap()
            .with_groups(vec![0..1, 1..4, 4..5])
            .unwrap()
    }

    #[test]
    fn effects_are_mean_differences_category_means_and_slopes() {
        let m = MeanShift::fit(&data()).unwrap();
        let e = m.effects();
        // Binary: mean(on: cells 1, 3, 5) − mean(off: cells 0, 2, 4).
        assert_eq!(
            e.row(0).to_vec(),
            vec![11.0 / 3.0 - 5.0 / 3.0, 2.0 - 1.0 / 3.0]
        );
        // Categories: means of {0, 4}, {1, 5}, {2, 3}.
        assert_eq!(e.row(1).to_vec(), vec![0.5, 0.5]);
        assert_eq!(e.row(2).to_vec(), vec![2.5, 1.5]);
        assert_eq!(e.row(3).to_vec(), vec![5.0, 1.5]);
        // Soft: least squares on the five observed cells, computed by hand:
        // c = [0, .5, 1, 1, .25], x0 = [0, 2, 4, 6, 1].
        let (c, x0) = ([0.0, 0.5, 1.0, 1.0, 0.25], [0.0, 2.0, 4.0, 6.0, 1.0]);
        let (cm, xm) = (2.75 / 5.0, 13.0 / 5.0);
        let cov: f64 = c.iter().zip(x0).map(|(c, x)| (c - cm) * (x - xm)).sum();
        let var: f64 = c.iter().map(|c| (c - cm) * (c - cm)).sum();
        assert!((e[[4, 0]] as f64 - cov / var).abs() < 1e-6);
    }

    #[test]
    fn edits_move_by_target_minus_current() {
        let m = MeanShift::fit(&data()).unwrap();
        let x = array![[10.0, 10.0], [10.0, 10.0]];
        // Cell 0 is category 0, cell 1's category is unknown; set category 2.
        let own = array![[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]];
        let mut observed = Array2::ones(own.dim());
        for j in 1..4 {
            observed[[1, j]] = 0.0;
        }
        let values = array![[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]];
        let mut mask = Array2::zeros(values.dim());
        for i in 0..2 {
            for j in 1..4 {
                mask[[i, j]] = 1.0;
            }
        }
        let request = EditRequest {
            x: x.view(),
            annotations: Some(Annotations {
                values: own.view(),
                observed: observed.view(),
            }),
            values: values.view(),
            mask: mask.view(),
            residual: Residual::Keep,
            sampling: None,
        };
        let out = m.counterfactual(&request).unwrap().x;
        // Known category: + mean(cat 2) − mean(cat 0).
        assert_eq!(out.row(0).to_vec(), vec![14.5, 11.0]);
        // Unknown: + mean(cat 2) − overall mean of the group's cells.
        let overall = data().x.mean_axis(Axis(0)).unwrap();
        let expected = array![15.0, 11.5] - &overall;
        for (a, b) in out.row(1).iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Unset concepts move nothing.
        let none = Array2::zeros(values.dim());
        let same = m
            .counterfactual(&EditRequest {
                mask: none.view(),
                ..request
            })
            .unwrap()
            .x;
        assert_eq!(same, x);
    }

    #[test]
    fn state_round_trips_and_bad_files_are_refused() {
        let m = MeanShift::fit(&data()).unwrap();
        let bytes = m.to_safetensors().unwrap();
        let back = MeanShift::from_safetensors(m.dims(), &bytes).unwrap();
        assert_eq!(back.effects(), m.effects());
        assert_eq!(back.to_safetensors().unwrap(), bytes);
        let other = Dims {
            input_dim: 3,
            ..m.dims()
        };
        assert!(MeanShift::from_safetensors(other, &bytes).is_err());
        assert!(MeanShift::from_safetensors(m.dims(), b"not a safetensors file").is_err());
    }
}
