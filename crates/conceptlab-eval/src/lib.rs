//! Evaluation metrics for counterfactual predictions: pure functions over
//! row-major `f64` arrays ([`Points`]), parallel with rayon where it pays,
//! each with its exact definition in its doc comment. Inputs are validated
//! (shapes, finiteness): bad input is an error, never a NaN result.
//!
//! Metrics: unbiased RBF MMD² ([`mmd2_rbf`]; scCBGM's `γ = 1/d` in
//! [`mmd2_rbf_default`]), E-distance, Fréchet distance, exact W2 and the
//! debiased Sinkhorn cost; the ratio to the nearest training group
//! ([`nearest_group_ratio`], which turns MMD into rMMD and applies to every
//! distance); mean-based metrics (both R² conventions, Pearson delta,
//! MSE/MAE of means and deltas); the cell-level MSE to paired ground truth;
//! DE recall (Wilcoxon rank-sum with tie correction + Benjamini-Hochberg);
//! concept accuracy / F1 / AUROC / AUPRC; LISI and kNN-graph modularity; the
//! discrimination score; and the trivial reference predictors (copy the
//! source, shift by the mean training difference, nearest training population).
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod baselines;
mod concepts;
mod de;
mod distances;
mod error;
mod means;
mod neighbors;
mod ot;
mod points;
mod ratio;

pub use baselines::{copy_source, discrimination_scores, mean_shift, nearest_population};
pub use concepts::{ConceptScore, concept_score};
pub use de::{DeRecall, DeThresholds, GeneTest, benjamini_hochberg, de_recall, wilcoxon_rank_sum};
pub use distances::{e_distance, frechet_distance, mmd2_rbf, mmd2_rbf_default};
pub use error::EvalError;
pub use means::{
    MeanMetrics, cell_level_mse, mean_metrics, mean_metrics_on_genes, mse_means, top_de_genes,
};
pub use neighbors::{knn_modularity, lisi};
pub use ot::{sinkhorn_divergence, w2, w2_squared};
pub use points::Points;
pub use ratio::{MIN_GROUP_SIZE, Ratio, nearest_group_ratio};
