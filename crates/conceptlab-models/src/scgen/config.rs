//! scGen's architecture, loss weight and training schedule.

use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::limits::{MAX_LAYERS, MAX_WIDTH, count, real};
use crate::train::TrainConfig;

/// Architecture and KL weight of scGen (the PyTorch `scgen` package's
/// defaults: `SCGEN(n_hidden=800, n_latent=100, n_layers=2,
/// dropout_rate=0.2)`, `kl_weight = 5e-5`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScGenConfig {
    /// Width of every encoder and decoder layer.
    pub hidden_dim: usize,
    /// Layers in the encoder and in the decoder.
    pub n_layers: usize,
    /// Latent width.
    pub latent_dim: usize,
    /// Dropout after every hidden layer.
    #[serde(serialize_with = "crate::shortest::f32")]
    pub dropout: f32,
    /// α: the loss is mean over cells of 0.5·Σ(x − x̂)² + 0.5·α·KL. PyTorch
    /// scGen and pertpy's JAX port both use 5e-5.
    pub kl_weight: f64,
}

impl Default for ScGenConfig {
    fn default() -> Self {
        ScGenConfig {
            hidden_dim: 800,
            n_layers: 2,
            latent_dim: 100,
            dropout: 0.2,
            kl_weight: 5e-5,
        }
    }
}

impl ScGenConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        count("scgen.hidden_dim", self.hidden_dim, 1..=MAX_WIDTH)?;
        count("scgen.n_layers", self.n_layers, 1..=MAX_LAYERS)?;
        count("scgen.latent_dim", self.latent_dim, 1..=MAX_WIDTH)?;
        real("scgen.dropout", self.dropout as f64, 0.0..=1.0, true)?;
        real("scgen.kl_weight", self.kl_weight, 0.0..=1e6, false)?;
        Ok(())
    }
}

/// scGen's training schedule (`SCGEN.train(max_epochs=100, batch_size=128,
/// early_stopping=True, early_stopping_patience=25)`, lr 1e-3, scvi-tools'
/// 90 % / 10 % split, no learning-rate decay) as the shared loop's settings;
/// `configs/models/scgen-reference.toml` holds the same values for the CLI.
pub fn default_training() -> TrainConfig {
    TrainConfig {
        lr: 1e-3,
        lr_gamma: 1.0,
        batch_size: 128,
        max_epochs: 100,
        patience: 25,
        validation_fraction: 0.1,
        // scvi-tools never shrinks batches.
        min_steps_per_epoch: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_are_refused_by_name() {
        assert!(ScGenConfig::default().validate().is_ok());
        assert!(default_training().validate().is_ok());
        let bad = [
            ScGenConfig {
                hidden_dim: 0,
                ..Default::default()
            },
            ScGenConfig {
                latent_dim: MAX_WIDTH + 1,
                ..Default::default()
            },
            ScGenConfig {
                dropout: 1.0,
                ..Default::default()
            },
            ScGenConfig {
                kl_weight: f64::NAN,
                ..Default::default()
            },
            ScGenConfig {
                n_layers: 0,
                ..Default::default()
            },
        ];
        for config in bad {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("scgen."), "{err}");
        }
    }
}
