//! Evaluation metrics for counterfactual predictions: pure functions over
//! row-major `f64` arrays ([`Points`]), parallel with rayon where it pays,
//! each with its exact definition in its doc comment. Inputs are validated
//! (shapes, finiteness): bad input is an error, never a NaN result.
//!
//! Built so far: unbiased RBF MMD² ([`mmd2_rbf`]; scCBGM's `γ = 1/d` in
//! [`mmd2_rbf_default`]), the E-distance, the Fréchet distance, the ratio to
//! the nearest training group ([`nearest_group_ratio`], which turns MMD into
//! rMMD), mean-based metrics (both R² conventions, Pearson delta, MSE/MAE of
//! means and deltas), the cell-level MSE to paired ground truth, and DE
//! recall (Wilcoxon rank-sum with tie correction + Benjamini-Hochberg),
//! exact W2, the debiased Sinkhorn cost, concept accuracy / F1 / AUROC /
//! AUPRC, LISI and kNN-graph modularity.
//! Not yet built (issue 6): the discrimination score, trivial reference
//! predictors and `conceptlab-cli evaluate`.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod concepts;
mod de;
mod distances;
mod error;
mod means;
mod neighbors;
mod ot;
mod points;
mod ratio;

pub use concepts::{ConceptScore, concept_score};
pub use de::{DeRecall, DeThresholds, GeneTest, benjamini_hochberg, de_recall, wilcoxon_rank_sum};
pub use distances::{e_distance, frechet_distance, mmd2_rbf, mmd2_rbf_default};
pub use error::EvalError;
pub use means::{MeanMetrics, cell_level_mse, mean_metrics};
pub use neighbors::{knn_modularity, lisi};
pub use ot::{sinkhorn_divergence, w2, w2_squared};
pub use points::Points;
pub use ratio::{MIN_GROUP_SIZE, Ratio, nearest_group_ratio};
