//! CBGM's architecture, loss weights and the sizes rule of its concept
//! embeddings.

use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::sccbgm::{DecoderKind, Orthogonality};

/// Architecture and loss weights of the CBGM baseline (a concept-embedding
/// VAE).
///
/// The defaults are the reference's tuned synthetic CBGM configuration: a
/// 256-wide plain (no-residual) encoder and decoder of 2 blocks, Z = 64,
/// U₀ = 128, β 1e-4, λ_c 0.005, λ_o 0.05 and the |cos| orthogonality penalty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CbgmConfig {
    /// Width H of the encoder and decoder blocks.
    pub hidden_dim: usize,
    /// Blocks L in the encoder and in the decoder.
    pub n_layers: usize,
    /// Latent width Z.
    pub latent_dim: usize,
    /// Requested unknown width U₀; the model uses U = K·⌊U₀/K⌋ (or K when
    /// K > U₀), see [`CbgmConfig::sizes`].
    pub n_unknown: usize,
    /// Weight of the KL term (a mean over B×Z, as in the reference).
    pub beta: f64,
    /// λ_c, weight of the concept loss.
    pub concepts_hp: f64,
    /// λ_o, weight of the orthogonality penalty on (E, u).
    pub orthogonality_hp: f64,
    /// |cos(E_b, u_b)| (the reference's default) or the cross-covariance.
    pub orthogonality: Orthogonality,
    /// How the decoder combines E and u (the reference CBGM: `no-residual`).
    pub decoder: DecoderKind,
    /// Dropout inside every block (0 in the reference).
    #[serde(serialize_with = "crate::shortest::f32")]
    pub dropout: f32,
}

impl Default for CbgmConfig {
    fn default() -> Self {
        CbgmConfig {
            hidden_dim: 256,
            n_layers: 2,
            latent_dim: 64,
            n_unknown: 128,
            beta: 1e-4,
            concepts_hp: 0.005,
            orthogonality_hp: 0.05,
            orthogonality: Orthogonality::Cosine,
            decoder: DecoderKind::NoResidual,
            dropout: 0.0,
        }
    }
}

/// The widths that follow from the configuration and the concept count K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Embedding width e of each concept.
    pub embedding: usize,
    /// Unknown width U = K·e, also the width of the flattened embedding E.
    pub unknown: usize,
}

impl CbgmConfig {
    /// The sizes rule: e = ⌊U₀/K⌋ and U = K·e when K ≤ U₀, else e = 1 and
    /// U = K (E and u always have the same width, as the cosine needs).
    pub fn sizes(&self, n_concepts: usize) -> Result<Sizes, ModelError> {
        if n_concepts == 0 {
            return Err(ModelError::Input("CBGM needs at least one concept".into()));
        }
        let embedding = if n_concepts > self.n_unknown {
            1
        } else {
            self.n_unknown / n_concepts
        };
        let unknown = n_concepts * embedding;
        crate::limits::count("unknown width K·e", unknown, 1..=crate::limits::MAX_WIDTH)?;
        Ok(Sizes { embedding, unknown })
    }

    /// Checks ranges (the concept count is checked by [`CbgmConfig::sizes`]).
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_LAYERS, MAX_WIDTH, count, real};
        for (name, v) in [
            ("hidden_dim", self.hidden_dim),
            ("latent_dim", self.latent_dim),
            ("n_unknown", self.n_unknown),
        ] {
            count(name, v, 1..=MAX_WIDTH)?;
        }
        count("n_layers", self.n_layers, 0..=MAX_LAYERS)?;
        for (name, v) in [
            ("beta", self.beta),
            ("concepts_hp", self.concepts_hp),
            ("orthogonality_hp", self.orthogonality_hp),
        ] {
            real(name, v, 0.0..=f64::MAX, false)?;
        }
        real("dropout", self.dropout as f64, 0.0..=1.0, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_reference_rule() {
        let c = CbgmConfig::default();
        assert_eq!(
            c.sizes(10).unwrap(),
            Sizes {
                embedding: 12,
                unknown: 120
            }
        );
        assert_eq!(
            c.sizes(200).unwrap(),
            Sizes {
                embedding: 1,
                unknown: 200
            }
        );
        assert_eq!(c.sizes(128).unwrap().unknown, 128);
        assert!(c.sizes(0).is_err());
    }

    #[test]
    fn bad_configurations_are_refused_naming_the_setting() {
        let bad = [
            CbgmConfig {
                hidden_dim: 0,
                ..Default::default()
            },
            CbgmConfig {
                n_unknown: crate::limits::MAX_WIDTH + 1,
                ..Default::default()
            },
            CbgmConfig {
                n_layers: crate::limits::MAX_LAYERS + 1,
                ..Default::default()
            },
            CbgmConfig {
                beta: -1.0,
                ..Default::default()
            },
            CbgmConfig {
                orthogonality_hp: f64::NAN,
                ..Default::default()
            },
            CbgmConfig {
                dropout: 1.0,
                ..Default::default()
            },
        ];
        let names = [
            "hidden_dim",
            "n_unknown",
            "n_layers",
            "beta",
            "orthogonality_hp",
            "dropout",
        ];
        for (c, name) in bad.iter().zip(names) {
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        assert!(CbgmConfig::default().validate().is_ok());
        // K·e above the width bound is refused at build time.
        assert!(
            CbgmConfig::default()
                .sizes(crate::limits::MAX_WIDTH + 1)
                .is_err()
        );
    }
}
