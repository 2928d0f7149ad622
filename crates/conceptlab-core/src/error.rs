use thiserror::Error;

/// Errors raised when in-memory data violates an invariant of its container.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// Two parts of a data set disagree on a dimension.
    #[error("{what}: expected {expected}, found {found}")]
    ShapeMismatch {
        what: String,
        expected: String,
        found: String,
    },
    /// A compressed sparse matrix whose index arrays are inconsistent.
    #[error("invalid sparse matrix: {0}")]
    InvalidSparse(String),
    /// An index points outside the axis it selects from.
    #[error("index {index} out of bounds for {what} of length {len}")]
    IndexOutOfBounds {
        what: &'static str,
        index: usize,
        len: usize,
    },
    /// Two buffers that must share an element type do not.
    #[error("element type mismatch: expected {expected}, found {found}")]
    DTypeMismatch {
        expected: &'static str,
        found: &'static str,
    },
}
