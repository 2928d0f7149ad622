use thiserror::Error;

/// Errors from configuring, generating or corrupting synthetic data.
#[derive(Debug, Error)]
pub enum SynthError {
    #[error("unknown preset `{name}` (available: {available})")]
    UnknownPreset { name: String, available: String },
    #[error("invalid generator configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot parse generator configuration: {0}")]
    Parse(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Data(#[from] conceptlab_core::CoreError),
}
