//! The in-memory training set: features, concept targets and which concept
//! annotations are observed.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, Axis};

use crate::ModelError;

/// Cells × features with their concepts (hard columns first, then soft).
#[derive(Debug, Clone)]
pub struct ConceptData {
    pub x: Array2<f32>,
    pub concepts: Array2<f32>,
    /// 1 where the concept annotation is known, 0 where it is missing (a
    /// missing annotation is left out of the concept loss).
    pub observed: Array2<f32>,
    pub n_hard: usize,
    /// The concept columns of each source annotation: a one-hot categorical
    /// column spans several, a binary or soft one is one column alone.
    pub groups: Vec<Range<usize>>,
}

impl ConceptData {
    /// Checks shapes and values.
    pub fn new(
        x: Array2<f32>,
        concepts: Array2<f32>,
        observed: Array2<f32>,
        n_hard: usize,
    ) -> Result<Self, ModelError> {
        let n = x.nrows();
        if concepts.nrows() != n || observed.dim() != concepts.dim() {
            return Err(ModelError::Input(format!(
                "{n} cells of features but concepts {:?} and observed mask {:?}",
                concepts.dim(),
                observed.dim()
            )));
        }
        if n_hard > concepts.ncols() {
            return Err(ModelError::Input(format!(
                "{n_hard} hard concepts declared but only {} concept columns",
                concepts.ncols()
            )));
        }
        if let Some((i, j)) = first_non_finite(x.view()) {
            return Err(ModelError::Input(format!(
                "feature matrix has a non-finite value at cell {i}, feature {j}"
            )));
        }
        if let Some((i, j)) = first_non_finite(concepts.view()) {
            return Err(ModelError::Input(format!(
                "concept matrix has a non-finite value at cell {i}, concept {j}"
            )));
        }
        for ((i, j), &v) in concepts.indexed_iter() {
            if j < n_hard && observed[[i, j]] > 0.0 && v != 0.0 && v != 1.0 {
                return Err(ModelError::Input(format!(
                    "hard concept {j} of cell {i} is {v}; hard concepts must be 0 or 1"
                )));
            }
        }
        let groups = (0..concepts.ncols()).map(|j| j..j + 1).collect();
        Ok(ConceptData {
            x,
            concepts,
            observed,
            n_hard,
            groups,
        })
    }

    /// Features with the concepts curated from obs
    /// ([`curate_concepts`](conceptlab_core::preprocess::curate_concepts)),
    /// grouped by their source columns.
    pub fn from_concepts(
        x: Array2<f32>,
        concepts: &conceptlab_core::preprocess::Concepts,
    ) -> Result<Self, ModelError> {
        ConceptData::new(
            x,
            concepts.values.clone(),
            concepts.observed.clone(),
            concepts.n_hard(),
        )?
        .with_groups(concepts.groups.iter().map(|g| g.columns.clone()).collect())
    }

    /// The same data with concept columns grouped by source annotation
    /// (`fit` passes each obs column's range): the groups must tile the
    /// concept columns in order.
    pub fn with_groups(mut self, groups: Vec<Range<usize>>) -> Result<Self, ModelError> {
        let mut next = 0;
        for g in &groups {
            if g.start != next || g.end <= g.start {
                return Err(ModelError::Input(format!(
                    "concept groups {groups:?} do not tile the {} concept columns in order",
                    self.concepts.ncols()
                )));
            }
            next = g.end;
        }
        if next != self.concepts.ncols() {
            return Err(ModelError::Input(format!(
                "concept groups {groups:?} do not cover the {} concept columns",
                self.concepts.ncols()
            )));
        }
        self.groups = groups;
        Ok(self)
    }

    /// The sizes of a model for these data.
    pub fn dims(&self) -> crate::sccbgm::Dims {
        crate::sccbgm::Dims {
            input_dim: self.x.ncols(),
            n_hard: self.n_hard,
            n_soft: self.concepts.ncols() - self.n_hard,
        }
    }

    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.x.nrows()
    }

    /// The cells at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> ConceptData {
        ConceptData {
            x: self.x.select(Axis(0), rows),
            concepts: self.concepts.select(Axis(0), rows),
            observed: self.observed.select(Axis(0), rows),
            n_hard: self.n_hard,
            groups: self.groups.clone(),
        }
    }

    /// A key per cell naming its hard-concept pattern (missing as `?`),
    /// used to stratify the validation split.
    pub fn strata(&self) -> Vec<String> {
        (0..self.n_cells())
            .map(|i| {
                (0..self.n_hard)
                    .map(|j| {
                        if self.observed[[i, j]] == 0.0 {
                            '?'
                        } else if self.concepts[[i, j]] > 0.5 {
                            '1'
                        } else {
                            '0'
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

impl crate::train::Rows for ConceptData {
    fn n_rows(&self) -> usize {
        self.n_cells()
    }
    fn select(&self, rows: &[usize]) -> Self {
        ConceptData::select(self, rows)
    }
}

/// The first (row, column) holding NaN or ±∞.
pub fn first_non_finite(x: ArrayView2<f32>) -> Option<(usize, usize)> {
    x.indexed_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|(ij, _)| ij)
}
