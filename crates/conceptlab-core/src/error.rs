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
    /// A value that must be finite is NaN or infinite.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        what: String,
        row: usize,
        col: usize,
        value: f64,
    },
    /// A preprocessing parameter or input outside what the computation accepts.
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
    /// A column name that the frame does not have.
    #[error("obs has no column `{column}`; available columns: {}", available.join(", "))]
    UnknownColumn {
        column: String,
        available: Vec<String>,
    },
    /// A value that is not among a categorical column's categories.
    #[error("`{value}` is not a category of column `{column}`; valid values: {}", valid.join(", "))]
    UnknownCategory {
        column: String,
        value: String,
        valid: Vec<String>,
    },
    /// An obs column that cannot be turned into a concept as requested.
    #[error("concept column `{column}`: {reason}")]
    InvalidConcept { column: String, reason: String },
}
