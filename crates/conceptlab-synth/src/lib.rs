//! Synthetic single-cell data with exact ground-truth counterfactuals.
//!
//! Scope (issue 3, not built yet): the generator of spec-data-eval §1, concept
//! corruptions and the held-out benchmark split. It depends on
//! `conceptlab-core` only and returns [`conceptlab_core::CellData`].
