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
    /// The data set would not fit in memory.
    #[error(transparent)]
    Resources(#[from] conceptlab_fs::FsError),
    #[error(transparent)]
    Data(#[from] conceptlab_core::CoreError),
}

impl SynthError {
    /// True when the request caused the error (exit code 2); a violated
    /// data invariant is the generator's own fault.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, SynthError::Data(_))
    }
}
