//! The data model, seeded randomness, linear algebra and preprocessing of
//! conceptlab. No tensors here: the candle blocks live in `conceptlab-nn`.
//!
//! This crate holds the in-memory representation of an annotated single-cell
//! data set ([`CellData`]) that every other crate works on. It performs no file
//! I/O and prints nothing: reading and writing `.h5ad` lives in `conceptlab-io`,
//! so models and metrics never depend on a file format.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod data;
mod error;
pub mod linalg;
pub mod preprocess;
pub mod random;

pub use data::{
    Categorical, CellData, Column, DType, DenseArray, Frame, Matrix, NumVec, RawData, SparseFormat,
    SparseMatrix, UnsValue, Values,
};
pub use error::CoreError;
