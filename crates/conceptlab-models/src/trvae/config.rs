//! trVAE's architecture and loss weights.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Architecture and loss weights; the defaults are the reference wrapper's
/// (`trvaep.CVAE`: encoder [128, 32], decoder [32, 128], latent 10,
/// α = 1e-4, MMD weight 10, dropout 0.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrVaeConfig {
    /// Widths of the encoder's blocks.
    pub encoder_widths: Vec<usize>,
    /// Widths of the decoder's blocks; the MMD is taken on the first one's output.
    pub decoder_widths: Vec<usize>,
    pub latent_dim: usize,
    /// KL weight α (on the per-cell KL sum).
    pub alpha: f64,
    /// Weight of the MMD between conditions.
    pub mmd_weight: f64,
    #[serde(serialize_with = "crate::shortest::f32")]
    pub dropout: f32,
    /// Batch-norm momentum, PyTorch's convention (the new batch's weight).
    pub momentum: f64,
    /// ReLU on the reconstruction, as the reference has: features must then
    /// be non-negative (log expression). Off by default, because conceptlab
    /// models read PCA scores unless the pipeline keeps genes
    /// (`preprocess.n_pcs`), and a ReLU output cannot produce a negative
    /// score.
    pub output_relu: bool,
}

impl Default for TrVaeConfig {
    fn default() -> Self {
        TrVaeConfig {
            encoder_widths: vec![128, 32],
            decoder_widths: vec![32, 128],
            latent_dim: 10,
            alpha: 1e-4,
            mmd_weight: 10.0,
            dropout: 0.2,
            momentum: 0.1,
            output_relu: false,
        }
    }
}

impl TrVaeConfig {
    /// Checks ranges (bounds from [`crate::limits`]).
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_LAYERS, MAX_WIDTH, count, real};
        for (name, widths) in [
            ("trvae encoder_widths", &self.encoder_widths),
            ("trvae decoder_widths", &self.decoder_widths),
        ] {
            count(&format!("{name} (layers)"), widths.len(), 1..=MAX_LAYERS)?;
            for &w in widths {
                count(name, w, 1..=MAX_WIDTH)?;
            }
        }
        count("trvae latent_dim", self.latent_dim, 1..=MAX_WIDTH)?;
        real("trvae alpha", self.alpha, 0.0..=1e6, false)?;
        real("trvae mmd_weight", self.mmd_weight, 0.0..=1e6, false)?;
        real("trvae dropout", f64::from(self.dropout), 0.0..=1.0, true)?;
        real("trvae momentum", self.momentum, 1e-6..=1.0, false)
    }
}
