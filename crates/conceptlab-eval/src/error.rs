use thiserror::Error;

/// Errors from metric computations: bad inputs are reported, never turned
/// into a NaN result.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EvalError {
    #[error("{what}: {found} values do not form rows of {cols} columns")]
    Shape {
        what: String,
        found: usize,
        cols: usize,
    },
    #[error("{left} has {left_dim} dimensions but {right} has {right_dim}")]
    DimensionMismatch {
        left: String,
        left_dim: usize,
        right: String,
        right_dim: usize,
    },
    #[error("{what}: non-finite value (NaN or infinity) at row {row}, column {col}")]
    NonFinite {
        what: String,
        row: usize,
        col: usize,
    },
    #[error("{what} needs at least {needed} cells, found {found}")]
    TooFewCells {
        what: String,
        needed: usize,
        found: usize,
    },
    #[error("{0}")]
    Invalid(String),
}
