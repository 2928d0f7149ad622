//! The pre-0.7 anndata layout: `obs`/`var`/`obsm`/`varm` as HDF5 compound
//! (record) datasets, categories in `uns/<column>_categories`, sparse matrices
//! marked by `h5sparse_format`, and `raw.X` / `raw.var` / `raw.varm` at the
//! top level. scanpy still ships such a file (`10x_pbmc68k_reduced.h5ad`).

use conceptlab_core::{Categorical, Column, DenseArray, Frame, Matrix, UnsValue, Values};
use indexmap::IndexMap;

use crate::compound::{Field, read_compound};

use crate::error::Result;
use crate::h5::{H5File, NodeKind};
use crate::read::Expect;

/// Whether the file uses the pre-0.7 layout (a compound `obs` dataset).
pub(crate) fn is_legacy(h5: &H5File) -> Result<bool> {
    Ok(h5.kind("obs")? == Some(NodeKind::Dataset))
}

/// Number of records of the compound data frame (or `obsm`) at `key`, from
/// metadata.
pub(crate) fn frame_len(h5: &H5File, key: &str) -> Result<usize> {
    h5.require(key, "a legacy (compound) data frame")?;
    let ds = h5.dataset(key)?;
    match h5.shape(key, &ds)?.as_slice() {
        [n] => Ok(*n),
        other => Err(h5.invalid(
            key,
            format!("expected a one-dimensional record array, found shape {other:?}"),
        )),
    }
}

/// Reads a legacy compound data frame. Integer columns whose categories are
/// stored in `uns/<column>_categories` become categoricals; the names of the
/// category arrays consumed are returned so the caller can drop them from `uns`.
pub(crate) fn read_frame(h5: &H5File, key: &str) -> Result<(Frame, Vec<String>)> {
    let fields = read_compound(h5, key)?;
    let mut index = None;
    let mut columns = IndexMap::new();
    let mut consumed = Vec::new();
    for (name, field) in fields {
        let col_key = format!("{key}[{name}]");
        match field {
            Field::Strings(s) if name == "index" && index.is_none() => index = Some(s),
            Field::Strings(s) => {
                columns.insert(name, Column::Strings(s));
            }
            Field::Numbers(values) => {
                let cats_key = format!("uns/{name}_categories");
                let column = if values.dtype().is_integer()
                    && h5.kind(&cats_key)? == Some(NodeKind::Dataset)
                {
                    let ds = h5.dataset(&cats_key)?;
                    let categories = if crate::h5::is_string_dtype(&h5.h5_dtype(&cats_key, &ds)?) {
                        Values::Strings(h5.read_strings(&cats_key, &ds)?)
                    } else {
                        Values::Numbers(h5.read_numeric(&cats_key, &ds)?)
                    };
                    crate::frame::check_unique(h5, &cats_key, &categories)?;
                    consumed.push(format!("{name}_categories"));
                    let codes = values.to_f64().into_iter().map(|c| c as i32).collect();
                    Column::Categorical(
                        Categorical::new(codes, categories, false)
                            .map_err(|e| h5.invalid(&col_key, e.to_string()))?,
                    )
                } else {
                    Column::Numeric(values)
                };
                columns.insert(name, column);
            }
            Field::Rows { .. } => {
                return Err(h5.invalid(
                    &col_key,
                    "array-valued columns are not supported in obs/var",
                ));
            }
        }
    }
    let index = index.ok_or_else(|| h5.invalid(key, "legacy data frame has no `index` field"))?;
    Ok((
        Frame {
            index_name: Frame::DEFAULT_INDEX_NAME.to_owned(),
            index,
            columns,
        },
        consumed,
    ))
}

/// Reads a legacy compound `obsm`/`varm`: every field is one matrix, with
/// one row per record (checked against `expect` before reading).
pub(crate) fn read_matrix_record(
    h5: &H5File,
    key: &str,
    expect: Expect,
) -> Result<IndexMap<String, Matrix>> {
    let mut out = IndexMap::new();
    if h5.kind(key)? != Some(NodeKind::Dataset) {
        return h5.read_matrix_map(key, expect);
    }
    let rows = frame_len(h5, key)?;
    if let Expect::Rows { rows: n, axis } = expect
        && rows != n
    {
        return Err(h5.invalid(
            key,
            format!("has {rows} records, expected {n} (one per {axis} name)"),
        ));
    }
    for (name, field) in read_compound(h5, key)? {
        let (width, values) = match field {
            Field::Rows { width, values } => (width, values),
            Field::Numbers(values) => (1, values),
            Field::Strings(_) => {
                return Err(h5.invalid(
                    &format!("{key}[{name}]"),
                    "a text field cannot be an embedding matrix",
                ));
            }
        };
        let dense = DenseArray::new(vec![rows, width], values)
            .map_err(|e| h5.invalid(&format!("{key}[{name}]"), e.to_string()))?;
        out.insert(name, Matrix::Dense(dense));
    }
    Ok(out)
}

/// Moves the neighbour graphs that pre-0.7 files kept in `uns/neighbors` to
/// `obsp`, where anndata >= 0.7 expects them (anndata's reader does the same).
pub(crate) fn move_neighbor_graphs(
    uns: &mut IndexMap<String, UnsValue>,
) -> IndexMap<String, Matrix> {
    let mut obsp = IndexMap::new();
    if let Some(UnsValue::Mapping(neighbors)) = uns.get_mut("neighbors") {
        for graph in ["distances", "connectivities"] {
            if let Some(UnsValue::Sparse(m)) = neighbors.get(graph) {
                obsp.insert(graph.to_owned(), Matrix::Sparse(m.clone()));
                neighbors.shift_remove(graph);
            }
        }
    }
    obsp
}
