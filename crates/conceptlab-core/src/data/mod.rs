//! The annotated-matrix data model (an `AnnData` equivalent).
//!
//! Layout conventions follow anndata: observations (cells) are rows, variables
//! (genes) are columns, dense arrays are stored row-major.

mod cells;
mod frame;
mod matrix;
mod numvec;
mod uns;

pub use cells::{CellData, RawData};
pub use frame::{Categorical, Column, Frame, Values};
pub use matrix::{DenseArray, Matrix, SparseFormat, SparseMatrix};
pub use numvec::{DType, NumVec};
pub use uns::UnsValue;
