//! Preprocessing of expression matrices and cell annotations, with scanpy /
//! scikit-learn semantics.
//!
//! Dense expression matrices are [`ndarray::Array2<f32>`] (cells × genes,
//! row-major), the type scanpy's float32 pipeline produces; sparse input
//! stays a [`SparseMatrix`](crate::SparseMatrix) until it is densified.
//! Everything here is a pure function over arrays: no file I/O, no logging.
//!
//! - [`to_dense_f32`], [`looks_like_counts`] / [`first_non_count`],
//!   [`check_finite`]: conversions and input checks on a
//!   [`Matrix`](crate::Matrix) of any element type;
//! - [`normalize_total`] / [`normalize_total_csr`] and [`log1p`]: library-size
//!   normalisation and the log transform, bit-compatible with scanpy 1.11;
//! - [`highly_variable_genes`]: scanpy's `seurat` and `seurat_v3` flavours
//!   (the latter with the same kd-tree loess as scikit-misc);
//! - [`Pca`] and [`Standardizer`]: fitted, serialisable transforms;
//! - [`curate_concepts`] / [`encode_with`]: concept matrices from obs columns,
//!   with the encoding stored so that new data and `--set column=value`
//!   edits are encoded the same way; [`select_rows`] for `--where`;
//!   [`set_obs`] writes edited values back into obs;
//! - [`stratified_split`]: a seeded train/validation split by concept pattern;
//! - [`score_gene_sets`]: pathway-activity scores of [`GeneSets`] per cell
//!   (the reference's dispersion score and scanpy's `score_genes`).

mod concepts;
mod dense;
mod eigen;
mod encoding;
mod gene_sets;
mod hvg;
mod loess;
mod normalize;
mod obs_view;
mod pca;
mod select;
mod seurat_v3;
mod sparse_ops;
mod split;
mod standardize;
mod subspace;
mod write_back;

pub use concepts::{Concepts, curate_concepts, encode_with};
pub use dense::{
    ExprMatrix, NonCount, NonCountKind, check_finite, dense_matrix, first_non_count,
    looks_like_counts, to_csr_f32, to_dense_f32,
};
pub use encoding::{ConceptEncoding, ConceptGroup, ConceptKind};
pub use gene_sets::{GeneSets, SetScore, SetScores, SkippedSet, score_gene_sets};
pub use hvg::{HvgFlavor, HvgResult, highly_variable_genes};
pub use loess::{LoessSurface, loess_fit};
pub use normalize::{
    TargetSum, library_target, log1p, log1p_csr, normalize_total, normalize_total_csr,
    normalize_total_matrix, size_factors_for,
};
pub use pca::{EXACT_LIMIT, Pca, PcaOptions, PcaSolver};
pub use select::select_rows;
pub use split::stratified_split;
pub use standardize::Standardizer;
pub use write_back::set_obs;

/// Results of this module; every error is a [`CoreError`](crate::CoreError).
pub type Result<T> = std::result::Result<T, crate::CoreError>;

/// Shorthand for the error of an argument or input the computation rejects.
fn invalid(what: impl Into<String>, reason: impl Into<String>) -> crate::CoreError {
    crate::CoreError::InvalidInput {
        what: what.into(),
        reason: reason.into(),
    }
}
