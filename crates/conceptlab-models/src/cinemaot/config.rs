//! `model.cinemaot`: CINEMA-OT's settings, with the defaults of the
//! reference's call (`thres = 0.5`, `smoothness = 1e-5`, `eps = 1e-3`).

use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::limits::{count, real};

/// Most principal / independent components (FastICA's eigenproblems are
/// `k × k` and cubic in `k`).
pub const MAX_COMPONENTS: usize = 256;
/// Most Sinkhorn iterations of one edit.
pub const MAX_SINKHORN_ITER: usize = 1_000_000;

/// CINEMA-OT's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CinemaOtConfig {
    /// Components whose Chatterjee ξ with the treatment is below this are
    /// confounders (CINEMA-OT's own default is 0.15; the reference passes 0.5).
    pub thres: f64,
    /// Sinkhorn's stopping tolerance on the L1 marginal error (CINEMA-OT's
    /// `eps`, ott-jax's `threshold`; not the regularisation).
    pub eps: f64,
    /// Entropic regularisation per confounder component: `ε = smoothness ×
    /// (number of confounders)`, on the ICA sources as CINEMA-OT scales them.
    pub smoothness: f64,
    /// Principal components of the control ∪ treated cells, and independent
    /// components found in them (CINEMA-OT's `dim`).
    pub n_components: usize,
    /// Most Sinkhorn iterations (ott-jax's default, 2,000).
    pub max_iter: usize,
}

impl Default for CinemaOtConfig {
    fn default() -> Self {
        CinemaOtConfig {
            thres: 0.5,
            eps: 1e-3,
            smoothness: 1e-5,
            n_components: 20,
            max_iter: 2000,
        }
    }
}

impl CinemaOtConfig {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ModelError> {
        // ξ is at most 1 (above it every component is a confounder) and an
        // independent component's ξ hovers around 0 (at or below it, hardly any is).
        real("cinemaot.thres", self.thres, 1e-6..=1.0, false)?;
        real("cinemaot.eps", self.eps, 1e-15..=1.0, false)?;
        real("cinemaot.smoothness", self.smoothness, 1e-12..=1e6, false)?;
        count(
            "cinemaot.n_components",
            self.n_components,
            1..=MAX_COMPONENTS,
        )?;
        count("cinemaot.max_iter", self.max_iter, 1..=MAX_SINKHORN_ITER)?;
        Ok(())
    }
}
