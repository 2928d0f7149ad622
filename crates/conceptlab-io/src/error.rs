use conceptlab_core::CoreError;
use thiserror::Error;

/// Everything that can go wrong reading or writing an `.h5ad` file.
///
/// Every variant names the file, and where it applies the HDF5 key, so that
/// one line of output tells the user where to look.
#[derive(Debug, Error)]
pub enum IoError {
    #[error("{path}: cannot open file: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not an HDF5 file (expected an .h5ad file written by anndata, scanpy or conceptlab)"
    )]
    NotHdf5 { path: String },
    #[error("{path}: damaged or truncated HDF5 file: {message}")]
    Corrupt { path: String, message: String },
    #[error("{path}: missing `{key}`: expected {expected}")]
    Missing {
        path: String,
        key: String,
        expected: String,
    },
    #[error("{path}: `{key}` has unsupported encoding `{encoding}` (supported: {supported})")]
    Unsupported {
        path: String,
        key: String,
        encoding: String,
        supported: &'static str,
    },
    #[error("{path}: `{key}`: {reason}")]
    Invalid {
        path: String,
        key: String,
        reason: String,
    },
    #[error("{path}: cannot read `{key}`: {message}")]
    Read {
        path: String,
        key: String,
        message: String,
    },
    #[error("{path}: cannot write: {reason}")]
    Write { path: String, reason: String },
    #[error("{path}: {source}")]
    Data {
        path: String,
        #[source]
        source: CoreError,
    },
}

impl IoError {
    /// `true` when the error comes from the input data (bad, missing or
    /// unsupported content) rather than from the environment.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, IoError::Write { .. })
    }
}

pub type Result<T, E = IoError> = std::result::Result<T, E>;
