//! From a stored expression matrix to model features and back: library-size
//! normalisation and log1p (when the data are counts), highly-variable-gene
//! selection, PCA and optional z-scoring — fitted once on training cells and
//! stored in the checkpoint so new cells are projected the same way and
//! edited features map back to genes.
//!
//! The reference computes HVGs on every cell, held-out ground truth included
//! (mild leakage); here everything is fitted on the
//! cells the caller designates as training cells.

use std::borrow::Cow;

use conceptlab_core::preprocess::{
    self, HvgFlavor, Pca, PcaOptions, Standardizer, TargetSum, highly_variable_genes,
    library_target, log1p, log1p_csr, normalize_total_matrix,
};
use conceptlab_core::{DType, Matrix, NumVec, SparseFormat, SparseMatrix};
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
        let target_sum = if normalize {
            Some(match config.target_sum {
                Some(t) => t,
                None => {
                    let fit_matrix = match fit_rows {
                        Some(rows) => Cow::Owned(select_rows(x, rows)?),
                        None => Cow::Borrowed(x),
                    };
                    library_target(&fit_matrix, TargetSum::Median).map_err(core)?
                }
            })
        } else {
            None
        };
        // Every copy below is of the stored values (sparse stays sparse);
        // none is a dense cells × genes matrix unless the input was dense.
        let prepared = match target_sum {
            Some(t) => Cow::Owned(observed(
                stages,
                "normalize_total + log1p",
                x.shape().0,
                || log_normalize(x, t),
            )?),
            None => Cow::Borrowed(x),
        };
        let fit_matrix = match fit_rows {
            Some(rows) => Cow::Owned(select_rows(&prepared, rows)?),
            None => Cow::Borrowed(&*prepared),
        };
        let genes = match config.n_top_genes {
            Some(n) if n < n_genes => {
                observed(
                    stages,
                    "highly variable genes",
                    fit_matrix.shape().0,
                    || highly_variable_genes(&*fit_matrix, HvgFlavor::Seurat, n).map_err(core),
                )?
                .selected
            }
            _ => (0..n_genes).collect(),
        };
        let mut me = Preprocessor {
            config: config.clone(),
            target_sum,
            genes,
            n_input_genes: n_genes,
            pca: None,
            standardizer: None,
        };
        if let Matrix::Sparse(sp) = &*prepared {
            drop(fit_matrix);
            let features = observed(stages, "PCA and features (sparse)", sp.shape.0, || {
                me.fit_sparse(sp, fit_rows, seed)
            })?;
            return Ok((me, features));
        }
        let fit_expr = dense_columns(&fit_matrix, &me.genes)?;
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

    /// The PCA and standardisation of sparse prepared data, and the features
    /// of every row, without a dense cells × genes matrix: the kept genes
    /// stay CSR, the PCA centres implicitly and scores are sparse products.
    fn fit_sparse(
        &mut self,
        prepared: &SparseMatrix,
        fit_rows: Option<&[usize]>,
        seed: u64,
    ) -> Result<Array2<f32>, ModelError> {
        let kept = kept_genes_csr(prepared, &self.genes)?;
        if let Some(k) = self.config.n_pcs {
            let fit_kept = match fit_rows {
                Some(rows) => Cow::Owned(kept.select_rows(rows).map_err(core)?),
                None => Cow::Borrowed(&*kept),
            };
            let pca = Pca::fit_sparse(&fit_kept, k, seed, &PcaOptions::default()).map_err(core)?;
            self.pca = Some(pca);
        }
        let unscaled = self.sparse_features(&kept)?;
        if self.config.standardize {
            let fit_features = match fit_rows {
                Some(rows) => Cow::Owned(unscaled.select(Axis(0), rows)),
                None => Cow::Borrowed(&unscaled),
            };
            self.standardizer = Some(Standardizer::fit(&fit_features).map_err(core)?);
        }
        match &self.standardizer {
            Some(s) => s.transform(&unscaled).map_err(core),
            None => Ok(unscaled),
        }
    }

    /// PC scores (or the dense kept genes, when there is no PCA: then the
    /// features are genes) of prepared CSR rows of the kept genes, before
    /// standardisation.
    fn sparse_features(&self, kept: &SparseMatrix) -> Result<Array2<f32>, ModelError> {
        match &self.pca {
            Some(pca) => pca.transform_sparse(kept).map_err(core),
            None => preprocess::to_dense_f32(&Matrix::Sparse(kept.clone())).map_err(core),
        }
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
        let prepared = self.prepared(x)?;
        dense_columns(&prepared, &self.genes)
    }

    /// `x` checked against the fitted genes, normalised and log-transformed
    /// when the pipeline does (borrowed as it is otherwise).
    fn prepared<'a>(&self, x: &'a Matrix) -> Result<Cow<'a, Matrix>, ModelError> {
        let (_, genes) = x.shape();
        if genes != self.n_input_genes {
            return Err(ModelError::Input(format!(
                "the pipeline was fitted on {} genes, the data have {genes}",
                self.n_input_genes
            )));
        }
        preprocess::check_finite(x, "expression matrix").map_err(core)?;
        Ok(match self.target_sum {
            Some(t) => Cow::Owned(log_normalize(x, t)?),
            None => Cow::Borrowed(x),
        })
    }

    /// Model features of a stored matrix. Sparse rows stay sparse through
    /// normalisation and the projection onto the PCs.
    pub fn transform(&self, x: &Matrix) -> Result<Array2<f32>, ModelError> {
        if let (Matrix::Sparse(_), Some(_)) = (x, &self.pca) {
            let prepared = self.prepared(x)?;
            let Matrix::Sparse(sp) = &*prepared else {
                return Err(ModelError::Input(
                    "internal: sparse input came back dense".into(),
                ));
            };
            let kept = kept_genes_csr(sp, &self.genes)?;
            let mut f = self.sparse_features(&kept)?;
            if let Some(s) = &self.standardizer {
                f = s.transform(&f).map_err(core)?;
            }
            return Ok(f);
        }
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

/// The kept genes of a sparse matrix as CSR `f32` (borrowed when that is
/// what `x` already is and every gene is kept; otherwise a copy of the
/// stored values of those genes, columns renumbered in `genes` order).
fn kept_genes_csr<'a>(
    x: &'a SparseMatrix,
    genes: &[usize],
) -> Result<Cow<'a, SparseMatrix>, ModelError> {
    let (_, g) = x.shape;
    let all = genes.len() == g && genes.iter().enumerate().all(|(i, &c)| i == c);
    let csr_f32 = x.format == SparseFormat::Csr && x.data.dtype() == DType::F32;
    if all && csr_f32 {
        return Ok(Cow::Borrowed(x));
    }
    let converted;
    let csr = if csr_f32 {
        x
    } else {
        converted = preprocess::to_csr_f32(x).map_err(core)?;
        &converted
    };
    if all {
        return Ok(Cow::Owned(csr.clone()));
    }
    let data = match &csr.data {
        NumVec::F32(d) => d,
        _ => return Err(ModelError::Input("internal: CSR data is not f32".into())),
    };
    let mut position = vec![u32::MAX; g];
    for (j, &c) in genes.iter().enumerate() {
        if let Some(p) = position.get_mut(c) {
            *p = j as u32;
        }
    }
    let mut indptr = Vec::with_capacity(csr.shape.0 + 1);
    indptr.push(0u64);
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for w in csr.indptr.windows(2) {
        for k in w[0] as usize..w[1] as usize {
            let j = position[csr.indices[k] as usize];
            if j != u32::MAX {
                indices.push(j);
                values.push(data[k]);
            }
        }
        indptr.push(indices.len() as u64);
    }
    Ok(Cow::Owned(
        SparseMatrix::new(
            SparseFormat::Csr,
            (csr.shape.0, genes.len()),
            indptr,
            indices,
            NumVec::F32(values),
        )
        .map_err(core)?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_core::DenseArray;
    use conceptlab_core::random::{standard_normal, stream_rng};

    /// ~10 %-dense integer counts with three cell groups, stored CSR
    /// (int64, as h5ad files often hold them) and dense (f32).
    fn counts(rows: usize, cols: usize) -> (Matrix, Matrix) {
        let mut rng = stream_rng(5, 0);
        let mut dense = vec![0f32; rows * cols];
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for r in 0..rows {
            for c in 0..cols {
                let u = standard_normal(&mut rng);
                if u > 1.28 {
                    let v = (1.0 + u * (1 + (c + r % 3) % 5) as f64).round();
                    dense[r * cols + c] = v as f32;
                    indices.push(c as u32);
                    data.push(v as i64);
                }
            }
            indptr.push(indices.len() as u64);
        }
        let sparse = SparseMatrix::new(
            SparseFormat::Csr,
            (rows, cols),
            indptr,
            indices,
            NumVec::I64(data),
        )
        .unwrap();
        let dense = DenseArray::new(vec![rows, cols], NumVec::F32(dense)).unwrap();
        (Matrix::Sparse(sparse), Matrix::Dense(dense))
    }

    fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        (a - b).mapv(f32::abs).fold(0.0f32, |m, &d| m.max(d))
    }

    fn agree(config: &PreprocessConfig, rows: usize, cols: usize, tolerance: f32) {
        let (sparse, dense) = counts(rows, cols);
        let (ps, fs) = Preprocessor::fit(&sparse, config, None, 9).unwrap();
        let (pd, fd) = Preprocessor::fit(&dense, config, None, 9).unwrap();
        assert_eq!(ps.target_sum, pd.target_sum, "median library size");
        assert_eq!(ps.genes, pd.genes, "highly variable genes");
        let (a, b) = (ps.pca.as_ref().unwrap(), pd.pca.as_ref().unwrap());
        assert_eq!(
            a.solver == PcaSolverKind::Exact,
            b.solver == PcaSolverKind::Exact
        );
        assert_eq!(a.mean, b.mean);
        let lead = max_abs_diff(
            &a.components.slice(ndarray::s![..3, ..]).to_owned(),
            &b.components.slice(ndarray::s![..3, ..]).to_owned(),
        );
        assert!(lead < tolerance, "leading components differ by {lead}");
        let scale = fd.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let lead_f = max_abs_diff(
            &fs.slice(ndarray::s![.., ..3]).to_owned(),
            &fd.slice(ndarray::s![.., ..3]).to_owned(),
        );
        assert!(lead_f < tolerance * scale, "features differ by {lead_f}");
        // New sparse rows are projected as the dense path projects them.
        let again = ps.transform(&sparse).unwrap();
        assert_eq!(
            again, fs,
            "transform of the fitted rows is the fit's features"
        );
        let via_dense = ps.transform(&dense).unwrap();
        let d = max_abs_diff(&again, &via_dense);
        assert!(d < 1e-4 * scale.max(1.0), "sparse vs dense transform: {d}");
    }

    use conceptlab_core::preprocess::PcaSolver as PcaSolverKind;

    #[test]
    fn sparse_input_gives_the_dense_hvgs_and_exact_pcs() {
        let config = PreprocessConfig {
            n_top_genes: Some(200),
            n_pcs: Some(6),
            ..PreprocessConfig::default()
        };
        agree(&config, 400, 500, 1e-4);
    }

    #[test]
    fn sparse_input_gives_the_dense_randomized_pcs() {
        let config = PreprocessConfig {
            n_pcs: Some(6),
            standardize: true,
            ..PreprocessConfig::default()
        };
        agree(&config, 700, 600, 2e-3);
    }

    #[test]
    fn kept_genes_are_renumbered_in_order() {
        let (sparse, dense) = counts(30, 12);
        let Matrix::Sparse(sp) = &sparse else {
            unreachable!()
        };
        let genes = [1, 4, 5, 11];
        let kept = kept_genes_csr(sp, &genes).unwrap();
        let got = preprocess::to_dense_f32(&Matrix::Sparse(kept.into_owned())).unwrap();
        let want = dense_columns(&dense, &genes).unwrap();
        assert_eq!(got, want);
    }
}
