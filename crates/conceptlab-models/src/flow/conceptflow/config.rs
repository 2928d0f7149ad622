//! ConceptFlow's architecture and loss weights.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Architecture and loss weights. The loss weights, depths and code widths
/// are the shipped configuration's (`conceptflow.yaml`); its
/// `othogonality_hp: 0.1` is a misspelt key, so the model it trained used
/// the default 0.2, and so do we. The width is a quarter of the shipped
/// 1024 for CPU cost, as for every flow here (docs/decisions/flow.md);
/// [`ConceptFlowConfig::reference`] has 1024.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConceptFlowConfig {
    /// Width H of every dense block and of the velocity network (even).
    pub hidden_dim: usize,
    /// Width Z of the encoder's output.
    pub latent_dim: usize,
    /// Width U of the unknown code.
    pub n_unknown: usize,
    /// Blocks L of the encoder and of the velocity network.
    pub n_layers: usize,
    /// Blocks of each head.
    pub cb_layers: usize,
    #[serde(serialize_with = "crate::shortest::f32")]
    pub dropout: f32,
    pub flow_hp: f64,
    pub concepts_hp: f64,
    pub orthogonality_hp: f64,
    /// Weight of the prior's KL to N(0, I) (a mean over cells × features).
    pub kl_hp: f64,
}

impl Default for ConceptFlowConfig {
    fn default() -> Self {
        ConceptFlowConfig {
            hidden_dim: 256,
            ..ConceptFlowConfig::reference()
        }
    }
}

impl ConceptFlowConfig {
    /// The shipped configuration (H 1024).
    pub fn reference() -> Self {
        ConceptFlowConfig {
            hidden_dim: 1024,
            latent_dim: 128,
            n_unknown: 128,
            n_layers: 4,
            cb_layers: 2,
            dropout: 0.1,
            flow_hp: 1.0,
            concepts_hp: 0.1,
            orthogonality_hp: 0.2,
            kl_hp: 0.1,
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_LAYERS, MAX_WIDTH, count, real};
        for (name, v) in [
            ("hidden_dim", self.hidden_dim),
            ("latent_dim", self.latent_dim),
            ("n_unknown", self.n_unknown),
        ] {
            count(name, v, 1..=MAX_WIDTH)?;
        }
        if !self.hidden_dim.is_multiple_of(2) {
            return Err(ModelError::Config(format!(
                "hidden_dim must be even (the flow's time features are sin/cos pairs), got {}",
                self.hidden_dim
            )));
        }
        count("n_layers", self.n_layers, 1..=MAX_LAYERS)?;
        count("cb_layers", self.cb_layers, 0..=MAX_LAYERS)?;
        real("dropout", f64::from(self.dropout), 0.0..=1.0, true)?;
        for (name, v) in [
            ("flow_hp", self.flow_hp),
            ("concepts_hp", self.concepts_hp),
            ("orthogonality_hp", self.orthogonality_hp),
            ("kl_hp", self.kl_hp),
        ] {
            real(name, v, 0.0..=1e6, false)?;
        }
        Ok(())
    }
}
