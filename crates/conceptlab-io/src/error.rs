use conceptlab_core::CoreError;
use thiserror::Error;

/// Everything that can go wrong reading or writing an `.h5ad` file.
///
/// Every variant names the file, and where it applies the HDF5 key, so that
/// one line of output tells the user where to look.
///
/// Each message is complete on its own and no variant also reports its cause
/// through [`std::error::Error::source`]: printing the error chain (`{:#}`)
/// would otherwise repeat the cause ("No such file or directory (os error 2):
/// No such file or directory (os error 2)"). The underlying errors stay
/// available in the variants' fields.
#[derive(Debug, Error)]
pub enum IoError {
    #[error("{path}: cannot open file: {error}")]
    Open { path: String, error: std::io::Error },
    #[error(
        "{path}: not an HDF5 file (expected an .h5ad file written by anndata, scanpy or conceptlab)"
    )]
    NotHdf5 { path: String },
    #[error(
        "{path}: not a complete HDF5 file ({size} bytes; the superblock declares end of file at {eof}): truncated or damaged"
    )]
    Truncated { path: String, size: u64, eof: u64 },
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
    /// The file declares more data than can be read: more than the memory
    /// available, or more than the file could hold. Raised from metadata,
    /// before anything of that size is allocated.
    #[error("{path}: `{key}`: {reason}")]
    TooLarge {
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
    /// Data that anndata would refuse to read back, refused before writing.
    #[error("{path}: cannot write `{key}`: {reason}")]
    Unwritable {
        path: String,
        key: String,
        reason: String,
    },
    #[error("{path}: {error}")]
    Data { path: String, error: CoreError },
    /// A gene-set file (GMT, Reactome, GAF) that cannot be parsed; `line` is
    /// 1-based (0: the file as a whole).
    #[error("{path}: line {line}: {reason}")]
    GeneSets {
        path: String,
        line: usize,
        reason: String,
    },
    /// The output could not be claimed or written safely (`conceptlab-fs`).
    #[error(transparent)]
    Fs(#[from] conceptlab_fs::FsError),
}

impl IoError {
    /// `true` when the error comes from the input data (bad, missing or
    /// unsupported content, or data that cannot be written as an `.h5ad`)
    /// rather than from the environment.
    pub fn is_bad_input(&self) -> bool {
        match self {
            IoError::Write { .. } => false,
            IoError::Fs(e) => e.is_bad_input(),
            _ => true,
        }
    }
}

pub type Result<T, E = IoError> = std::result::Result<T, E>;
