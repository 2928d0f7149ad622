//! Training cells kept whole by the matching predictors (`cinemaot`,
//! `nearest`), and the grouping of an edit's cells by what the edit asks.
//!
//! Both predictors answer an edit by pointing at observed training cells, so
//! a checkpoint stores the training features and annotations
//! ([`TrainingCells`]), and an edit is split into [`EditGroup`]s: cells that
//! share the edited columns, their current values on them and the targets.

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayView2};

use crate::ModelError;
use crate::data::ConceptData;
use crate::model::EditRequest;
use crate::sccbgm::Dims;

/// Training features (cells × features) and concept annotations (cells ×
/// concept columns, `observed` 1 where known).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingCells {
    pub x: Array2<f32>,
    pub values: Array2<f32>,
    pub observed: Array2<f32>,
}

impl TrainingCells {
    /// The cells of `data`.
    pub fn of(data: &ConceptData) -> Self {
        TrainingCells {
            x: data.x.clone(),
            values: data.concepts.clone(),
            observed: data.observed.clone(),
        }
    }

    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.x.nrows()
    }

    /// Training cells whose annotations are observed and equal `values` on
    /// every column of `columns`.
    pub fn matching(&self, columns: &[usize], values: &[f32]) -> Vec<usize> {
        (0..self.n_cells())
            .filter(|&i| {
                columns
                    .iter()
                    .zip(values)
                    .all(|(&j, &v)| self.observed[[i, j]] > 0.0 && self.values[[i, j]] == v)
            })
            .collect()
    }

    /// The arrays as named tensors (`{prefix}.x`, `.values`, `.observed`).
    pub fn tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>, ModelError> {
        let cpu = Device::Cpu;
        let tensor = |a: &Array2<f32>| {
            Tensor::from_vec(a.iter().copied().collect::<Vec<f32>>(), a.dim(), &cpu)
        };
        Ok(vec![
            (format!("{prefix}.x"), tensor(&self.x)?),
            (format!("{prefix}.values"), tensor(&self.values)?),
            (format!("{prefix}.observed"), tensor(&self.observed)?),
        ])
    }

    /// Reads what [`TrainingCells::tensors`] wrote, checking it against `dims`.
    pub fn from_safetensors(bytes: &[u8], prefix: &str, dims: Dims) -> Result<Self, ModelError> {
        let mut tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
        let mut take = |name: &str, cols: usize| -> Result<Array2<f32>, ModelError> {
            let key = format!("{prefix}.{name}");
            let t = tensors
                .remove(&key)
                .ok_or_else(|| ModelError::Input(format!("the weights lack `{key}`")))?;
            let shape = t.dims().to_vec();
            let [rows, c] = shape[..] else {
                return Err(ModelError::Input(format!(
                    "`{key}` has shape {shape:?}, expected cells × {cols}"
                )));
            };
            if c != cols {
                return Err(ModelError::Input(format!(
                    "`{key}` has {c} columns, the model has {cols}"
                )));
            }
            Array2::from_shape_vec((rows, c), t.flatten_all()?.to_vec1::<f32>()?)
                .map_err(|e| ModelError::Input(format!("`{key}`: {e}")))
        };
        let k = dims.n_concepts();
        let cells = TrainingCells {
            x: take("x", dims.input_dim)?,
            values: take("values", k)?,
            observed: take("observed", k)?,
        };
        let n = cells.n_cells();
        if cells.values.nrows() != n || cells.observed.nrows() != n || n == 0 {
            return Err(ModelError::Input(format!(
                "`{prefix}`: {n} cells of features but {} of annotations and {} of observed masks",
                cells.values.nrows(),
                cells.observed.nrows()
            )));
        }
        if let Some((i, j)) = crate::first_non_finite(cells.x.view()) {
            return Err(ModelError::Input(format!(
                "`{prefix}.x` is not finite at cell {i}, feature {j}"
            )));
        }
        Ok(cells)
    }
}

/// Cells of one edit that ask the same thing: the same edited columns, the
/// same current values on them and the same targets.
#[derive(Debug, Clone, PartialEq)]
pub struct EditGroup {
    /// Rows of the request.
    pub rows: Vec<usize>,
    /// The edited concept columns.
    pub columns: Vec<usize>,
    /// The cells' annotated values on `columns`.
    pub source: Vec<f32>,
    /// The target values on `columns`.
    pub target: Vec<f32>,
}

impl EditGroup {
    /// Whether the edit changes nothing (no column, or every target equals
    /// the current value): such cells are returned as they are.
    pub fn is_identity(&self) -> bool {
        self.source == self.target
    }
}

/// Splits `request` into groups, in order of first appearance. Every edited
/// column must be annotated in every cell that edits it: the predictors
/// compare the cells with training cells of the same current values.
pub fn edit_groups(request: &EditRequest, model: &str) -> Result<Vec<EditGroup>, ModelError> {
    let k = request.mask.ncols();
    let annotations = request.annotations.as_ref();
    let mut groups: Vec<EditGroup> = Vec::new();
    for i in 0..request.x.nrows() {
        let columns: Vec<usize> = (0..k).filter(|&j| request.mask[[i, j]] != 0.0).collect();
        let mut source = Vec::with_capacity(columns.len());
        for &j in &columns {
            match annotations {
                Some(a) if a.observed[[i, j]] > 0.0 => source.push(a.values[[i, j]]),
                Some(_) => {
                    return Err(ModelError::Input(format!(
                        "{model}: cell {i} has no annotation for edited concept column {j}; \
                         {model} matches cells by their current values of the edited concepts"
                    )));
                }
                None => {
                    return Err(ModelError::Input(format!(
                        "{model} needs the cells' concept annotations (their current values of \
                         the edited concepts), and the edit has none"
                    )));
                }
            }
        }
        let target: Vec<f32> = columns.iter().map(|&j| request.values[[i, j]]).collect();
        if let Some(bad) = target.iter().chain(&source).find(|v| !v.is_finite()) {
            return Err(ModelError::Input(format!(
                "{model}: cell {i} has a non-finite concept value {bad}"
            )));
        }
        match groups
            .iter_mut()
            .find(|g| g.columns == columns && g.source == source && g.target == target)
        {
            Some(g) => g.rows.push(i),
            None => groups.push(EditGroup {
                rows: vec![i],
                columns,
                source,
                target,
            }),
        }
    }
    Ok(groups)
}

/// Checks that `x` has the model's feature width.
pub fn check_features(x: ArrayView2<f32>, dims: Dims) -> Result<(), ModelError> {
    if x.ncols() != dims.input_dim {
        return Err(ModelError::Input(format!(
            "the model takes {} features, the cells have {}",
            dims.input_dim,
            x.ncols()
        )));
    }
    if let Some((i, j)) = crate::first_non_finite(x) {
        return Err(ModelError::Input(format!(
            "cell {i} has a non-finite feature {j}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Annotations, Residual};
    use ndarray::array;

    #[test]
    fn groups_split_by_columns_source_and_target_and_refuse_missing_annotations() {
        let x = Array2::<f32>::zeros((4, 2));
        let own = array![[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]];
        let mut observed = Array2::<f32>::ones((4, 2));
        let values = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        let mask = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]];
        let request = |observed: &Array2<f32>| {
            edit_groups(
                &EditRequest {
                    x: x.view(),
                    annotations: Some(Annotations {
                        values: own.view(),
                        observed: observed.view(),
                    }),
                    values: values.view(),
                    mask: mask.view(),
                    residual: Residual::Discard,
                    sampling: None,
                },
                "test",
            )
        };
        let groups = request(&observed).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].rows, vec![0, 1]);
        assert_eq!(
            (groups[0].source.clone(), groups[0].target.clone()),
            (vec![0.0], vec![1.0])
        );
        assert!(groups[1].is_identity() && groups[1].rows == vec![2]);
        assert!(groups[2].columns.is_empty() && groups[2].is_identity());
        // An unedited column may be missing; an edited one may not.
        observed[[3, 0]] = 0.0;
        assert!(request(&observed).is_ok());
        observed[[1, 0]] = 0.0;
        let err = request(&observed).unwrap_err().to_string();
        assert!(err.contains("cell 1") && err.contains("column 0"), "{err}");
    }
}
