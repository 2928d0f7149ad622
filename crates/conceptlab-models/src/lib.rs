//! Concept-bottleneck generative models.
//!
//! Scope (issues 4 and 5, not built yet): scCBGM, the flow-matching generator,
//! baselines, the training loop and checkpoints. Works on
//! [`conceptlab_core::CellData`]; never depends on `conceptlab-io`.
