//! From a stored expression matrix to model features and back: library-size
//! normalisation and log1p (when the data are counts), highly-variable-gene
//! selection, PCA and optional z-scoring — fitted once on training cells and
//! stored in the checkpoint so new cells are projected the same way and
//! edited features map back to genes.
//!
//! The reference computes HVGs on every cell, held-out ground truth included
//! (mild leakage); here everything is fitted on the
//! cells the caller designates as training cells.

use conceptlab_core::preprocess::{
    self, HvgFlavor, Pca, Standardizer, TargetSum, highly_variable_genes, log1p, log1p_csr,
    normalize_total_matrix,
};
use conceptlab_core::{Matrix, SparseFormat};
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::stages::{StageObserver, observed};

/// Whether to normalise library sizes and log-transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// Only when the matrix holds counts (non-negative integers).
    Auto,
    Always,
    Never,
}

/// Preprocessing choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreprocessConfig {
    pub normalize: Normalize,
    /// Library size every cell is scaled to; `None` takes the median of the
    /// training cells (scanpy's default).
    pub target_sum: Option<f64>,
    /// Keep this many highly variable genes (scanpy's `seurat` flavour);
    /// `None` keeps every gene.
    pub n_top_genes: Option<usize>,
    /// Train on this many principal components; `None` trains on genes.
    pub n_pcs: Option<usize>,
    /// z-score the features (after PCA) with training means and SDs.
    pub standardize: bool,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        PreprocessConfig {
            normalize: Normalize::Auto,
            target_sum: None,
            n_top_genes: None,
            n_pcs: Some(128),
            standardize: false,
        }
    }
}

impl PreprocessConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_FEATURES, count, real};
        if let Some(t) = self.target_sum {
            real("target_sum", t, f64::MIN_POSITIVE..=1e12, false)?;
        }
        if let Some(n) = self.n_top_genes {
            count("n_top_genes", n, 1..=MAX_FEATURES)?;
        }
        if let Some(n) = self.n_pcs {
            count("n_pcs", n, 1..=MAX_FEATURES)?;
        }
        Ok(())
    }
}

/// A fitted preprocessing pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub config: PreprocessConfig,
    /// The library size cells were scaled to, when normalising.
    pub target_sum: Option<f64>,
    /// Genes of the input kept, as column indices (ascending).
    pub genes: Vec<usize>,
    /// Genes in the input the pipeline was fitted on.
    pub n_input_genes: usize,
    pub pca: Option<Pca>,
    pub standardizer: Option<Standardizer>,
}

fn core(err: conceptlab_core::CoreError) -> ModelError {
    ModelError::Core(err)
}

impl Preprocessor {
    /// Fits on the rows `fit_rows` of `x` (all rows when `None`) and returns
    /// the pipeline with the features of *every* row.
    pub fn fit(
        x: &Matrix,
        config: &PreprocessConfig,
        fit_rows: Option<&[usize]>,
        seed: u64,
    ) -> Result<(Self, Array2<f32>), ModelError> {
        Self::fit_observed(x, config, fit_rows, seed, &mut |_| {})
    }

    /// [`Preprocessor::fit`], reporting each long step (normalisation, gene
    /// selection, PCA, features) to `stages`.
    pub fn fit_observed(
        x: &Matrix,
        config: &PreprocessConfig,
        fit_rows: Option<&[usize]>,
        seed: u64,
        stages: &mut StageObserver,
    ) -> Result<(Self, Array2<f32>), ModelError> {
        config.validate()?;
        preprocess::check_finite(x, "expression matrix").map_err(core)?;
        let (_, n_genes) = x.shape();
        let normalize = match config.normalize {
            Normalize::Auto => preprocess::looks_like_counts(x),
            Normalize::Always => true,
            Normalize::Never => false,
        };
        let (prepared, target_sum) = if normalize {
            let target = match config.target_sum {
                Some(t) => t,
                None => {
                    let fit_matrix = match fit_rows {
                        Some(rows) => select_rows(x, rows)?,
                        None => x.clone(),
                    };
                    normalize_total_matrix(&fit_matrix, TargetSum::Median)
                        .map_err(core)?
                        .1
                }
            };
            let prepared = observed(stages, "normalize_total + log1p", x.shape().0, || {
                log_normalize(x, target)
            })?;
            (prepared, Some(target))
        } else {
            (x.clone(), None)
        };
        let fit_matrix = match fit_rows {
            Some(rows) => select_rows(&prepared, rows)?,
            None => prepared.clone(),
        };
        let genes = match config.n_top_genes {
            Some(n) if n < n_genes => {
                observed(
                    stages,
                    "highly variable genes",
                    fit_matrix.shape().0,
                    || highly_variable_genes(&fit_matrix, HvgFlavor::Seurat, n).map_err(core),
                )?
                .selected
            }
            _ => (0..n_genes).collect(),
        };
        let fit_expr = dense_columns(&fit_matrix, &genes)?;
        let mut me = Preprocessor {
            config: config.clone(),
            target_sum,
            genes,
            n_input_genes: n_genes,
            pca: None,
            standardizer: None,
        };
        if let Some(k) = config.n_pcs {
            me.pca = Some(observed(stages, "PCA", fit_expr.nrows(), || {
                Pca::fit(&fit_expr, k, seed).map_err(core)
            })?);
        }
        if config.standardize {
            let fit_features = me.features_from_expression(fit_expr.view())?;
            me.standardizer = Some(Standardizer::fit(&fit_features).map_err(core)?);
        }
        let features = observed(stages, "features of every cell", prepared.shape().0, || {
            let expr = dense_columns(&prepared, &me.genes)?;
            me.features_from_expression(expr.view())
        })?;
        Ok((me, features))
    }

    /// Number of model features (PCs or genes).
    pub fn n_features(&self) -> usize {
        self.pca
            .as_ref()
            .map_or(self.genes.len(), |p| p.n_components)
    }

    /// Whether the model works on principal components.
    pub fn uses_pca(&self) -> bool {
        self.pca.is_some()
    }

    /// Normalised, log-transformed expression of the kept genes (the space
    /// edited cells are reported in).
    pub fn expression(&self, x: &Matrix) -> Result<Array2<f32>, ModelError> {
        let (_, genes) = x.shape();
        if genes != self.n_input_genes {
            return Err(ModelError::Input(format!(
                "the pipeline was fitted on {} genes, the data have {genes}",
                self.n_input_genes
            )));
        }
        preprocess::check_finite(x, "expression matrix").map_err(core)?;
        let prepared = match self.target_sum {
            Some(t) => log_normalize(x, t)?,
            None => x.clone(),
        };
        dense_columns(&prepared, &self.genes)
    }

    /// Model features of a stored matrix.
    pub fn transform(&self, x: &Matrix) -> Result<Array2<f32>, ModelError> {
        let expr = self.expression(x)?;
        self.features_from_expression(expr.view())
    }

    /// Model features from expression of the kept genes.
    pub fn features_from_expression(
        &self,
        expr: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        let mut f = match &self.pca {
            Some(pca) => pca.transform(&expr).map_err(core)?,
            None => expr.to_owned(),
        };
        if let Some(s) = &self.standardizer {
            f = s.transform(&f).map_err(core)?;
        }
        Ok(f)
    }

    /// Expression of the kept genes from model features (inverse PCA).
    pub fn to_expression(&self, features: ArrayView2<f32>) -> Result<Array2<f32>, ModelError> {
        let mut f = features.to_owned();
        if let Some(s) = &self.standardizer {
            f = s.inverse_transform(&f).map_err(core)?;
        }
        match &self.pca {
            Some(pca) => pca.inverse_transform(&f).map_err(core),
            None => Ok(f),
        }
    }

    /// Features with the standardisation undone (PC scores or genes): the
    /// space reported in `obsm` and used for cell-level errors.
    pub fn unstandardized(&self, features: ArrayView2<f32>) -> Result<Array2<f32>, ModelError> {
        match &self.standardizer {
            Some(s) => s.inverse_transform(&features).map_err(core),
            None => Ok(features.to_owned()),
        }
    }
}

/// Library-size normalisation to `target` then log1p, keeping sparsity.
fn log_normalize(x: &Matrix, target: f64) -> Result<Matrix, ModelError> {
    let (m, _) = normalize_total_matrix(x, TargetSum::Value(target)).map_err(core)?;
    Ok(match m {
        Matrix::Sparse(mut sp) => {
            log1p_csr(&mut sp).map_err(core)?;
            Matrix::Sparse(sp)
        }
        dense => {
            let mut d = preprocess::to_dense_f32(&dense).map_err(core)?;
            log1p(&mut d);
            let (r, c) = d.dim();
            let data = d.into_raw_vec_and_offset().0;
            Matrix::Dense(
                conceptlab_core::DenseArray::new(vec![r, c], conceptlab_core::NumVec::F32(data))
                    .map_err(core)?,
            )
        }
    })
}

/// Rows of a matrix (dense result for dense input, CSR for sparse).
fn select_rows(x: &Matrix, rows: &[usize]) -> Result<Matrix, ModelError> {
    match x {
        Matrix::Sparse(sp) => {
            let csr = preprocess::to_csr_f32(sp).map_err(core)?;
            let data = csr.data.to_f32();
            let mut indptr = vec![0u64];
            let (mut indices, mut values) = (Vec::new(), Vec::new());
            for &r in rows {
                let (a, b) = (csr.indptr[r] as usize, csr.indptr[r + 1] as usize);
                indices.extend_from_slice(&csr.indices[a..b]);
                values.extend_from_slice(&data[a..b]);
                indptr.push(indices.len() as u64);
            }
            Ok(Matrix::Sparse(
                conceptlab_core::SparseMatrix::new(
                    SparseFormat::Csr,
                    (rows.len(), csr.shape.1),
                    indptr,
                    indices,
                    conceptlab_core::NumVec::F32(values),
                )
                .map_err(core)?,
            ))
        }
        dense => {
            let d = preprocess::to_dense_f32(dense)
                .map_err(core)?
                .select(Axis(0), rows);
            let (r, c) = d.dim();
            Ok(Matrix::Dense(
                conceptlab_core::DenseArray::new(
                    vec![r, c],
                    conceptlab_core::NumVec::F32(d.into_raw_vec_and_offset().0),
                )
                .map_err(core)?,
            ))
        }
    }
}

/// The columns `cols` of a matrix as a dense f32 array (sparse input is
/// never densified beyond those columns).
fn dense_columns(x: &Matrix, cols: &[usize]) -> Result<Array2<f32>, ModelError> {
    let (n, g) = x.shape();
    match x {
        Matrix::Sparse(sp) => {
            let csr = preprocess::to_csr_f32(sp).map_err(core)?;
            let data = csr.data.to_f32();
            let mut position = vec![usize::MAX; g];
            for (j, &c) in cols.iter().enumerate() {
                position[c] = j;
            }
            let mut out = Array2::zeros((n, cols.len()));
            for r in 0..n {
                let (a, b) = (csr.indptr[r] as usize, csr.indptr[r + 1] as usize);
                for k in a..b {
                    let j = position[csr.indices[k] as usize];
                    if j != usize::MAX {
                        out[[r, j]] = data[k];
                    }
                }
            }
            Ok(out)
        }
        dense => {
            let d = preprocess::to_dense_f32(dense).map_err(core)?;
            if cols.len() == g {
                Ok(d)
            } else {
                Ok(d.select(Axis(1), cols))
            }
        }
    }
}
