use indexmap::IndexMap;

use super::frame::{Column, Frame, Values};
use super::matrix::{DenseArray, SparseMatrix};

/// One element of the unstructured annotation tree (`uns`).
#[derive(Debug, Clone, PartialEq)]
pub enum UnsValue {
    /// A nested mapping (anndata `dict`).
    Mapping(IndexMap<String, UnsValue>),
    /// A single string (anndata `string`).
    String(String),
    /// A numeric array; a zero-dimensional one is a scalar (anndata
    /// `numeric-scalar` / `array`).
    Array(DenseArray),
    /// An N-dimensional array of strings (anndata `string-array`).
    StringArray {
        shape: Vec<usize>,
        values: Vec<String>,
    },
    Sparse(SparseMatrix),
    Frame(Frame),
    /// A categorical or nullable array stored outside a data frame.
    Column(Column),
    /// A numpy record array (anndata `rec-array`): named columns of equal
    /// length, e.g. scanpy's `rank_genes_groups/names`.
    Records(Vec<(String, Values)>),
}

impl UnsValue {
    /// A short description: `mapping(3)`, `string`, `float64[50]`, ...
    pub fn describe(&self) -> String {
        match self {
            UnsValue::Mapping(m) => format!("mapping({})", m.len()),
            UnsValue::String(_) => "string".to_owned(),
            UnsValue::Array(a) if a.shape.is_empty() => format!("{} scalar", a.data.dtype()),
            UnsValue::Array(a) => format!("{}{:?}", a.data.dtype(), a.shape),
            UnsValue::StringArray { shape, .. } => format!("string{shape:?}"),
            UnsValue::Sparse(s) => format!("{}({}x{})", s.format.encoding(), s.shape.0, s.shape.1),
            UnsValue::Frame(f) => format!("dataframe({}x{})", f.len(), f.columns.len()),
            UnsValue::Column(c) => c.describe(),
            UnsValue::Records(fields) => format!(
                "records({} x {})",
                fields.first().map_or(0, |(_, v)| v.len()),
                fields.len()
            ),
        }
    }
}
