//! scCVAE's architecture and loss weight.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Architecture and the KL weight of the conditional VAE.
///
/// The defaults are scCBGM's CPU-sized widths (H 128, L 2, Z 128) with the
/// reference's β and dropout; [`ScCvaeConfig::reference`] is the reference's
/// real-data configuration (`sc_cvae.yaml`: H 1024, L 4, Z 128).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScCvaeConfig {
    /// Width H of the encoder and decoder blocks.
    pub hidden_dim: usize,
    /// Plain (non-residual) blocks L in the encoder and in the decoder.
    pub n_layers: usize,
    /// Latent width Z.
    pub latent_dim: usize,
    /// Weight of the KL term (a mean over B×Z, as in the reference).
    pub beta: f64,
    /// Dropout inside every block (0 in the reference's configuration).
    #[serde(serialize_with = "crate::shortest::f32")]
    pub dropout: f32,
}

impl Default for ScCvaeConfig {
    fn default() -> Self {
        ScCvaeConfig {
            hidden_dim: 128,
            n_layers: 2,
            latent_dim: 128,
            beta: 1e-5,
            dropout: 0.0,
        }
    }
}

impl ScCvaeConfig {
    /// The reference's configuration (`fm_config/model/sc_cvae.yaml`).
    pub fn reference() -> Self {
        ScCvaeConfig {
            hidden_dim: 1024,
            n_layers: 4,
            latent_dim: 128,
            beta: 1e-5,
            dropout: 0.0,
        }
    }

    /// Checks ranges (bounds from [`crate::limits`]).
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_LAYERS, MAX_WIDTH, count, real};
        count("sccvae hidden_dim", self.hidden_dim, 1..=MAX_WIDTH)?;
        count("sccvae latent_dim", self.latent_dim, 1..=MAX_WIDTH)?;
        count("sccvae n_layers", self.n_layers, 0..=MAX_LAYERS)?;
        real("sccvae beta", self.beta, 0.0..=1e6, false)?;
        real("sccvae dropout", f64::from(self.dropout), 0.0..=1.0, true)
    }
}
