//! Evaluation metrics for counterfactual predictions.
//!
//! Scope (issue 6, not built yet): rMMD and the other distribution distances,
//! community metrics, concept metrics, all as pure functions over arrays.
//! Never depends on `conceptlab-io`.
