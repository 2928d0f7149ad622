//! The pre-0.7 anndata layout: `obs`/`var`/`obsm`/`varm` as HDF5 compound
//! (record) datasets, categories in `uns/<column>_categories`, sparse matrices
//! marked by `h5sparse_format`, and `raw.X` / `raw.var` / `raw.varm` at the
//! top level. scanpy still ships such a file (`10x_pbmc68k_reduced.h5ad`).

use conceptlab_core::{
    Categorical, Column, DType, DenseArray, Frame, Matrix, NumVec, UnsValue, Values,
};
use hdf5_pure::{CompoundMember, Datatype, DatatypeByteOrder};
use indexmap::IndexMap;

use crate::error::Result;
use crate::h5::{H5File, NodeKind};

/// One decoded field of a compound dataset.
enum Field {
    Numbers(NumVec),
    Strings(Vec<String>),
    /// A fixed-size array per record: `width` values per row, row-major.
    Rows {
        width: usize,
        values: NumVec,
    },
}

/// Reads a compound dataset as one field per member.
fn read_compound(h5: &H5File, key: &str) -> Result<Vec<(String, Field)>> {
    let ds = h5.dataset(key)?;
    let datatype = ds.datatype().map_err(|e| h5.read_err(key, e))?;
    let Datatype::Compound { size, members } = datatype else {
        return Err(h5.invalid(
            key,
            "expected a compound (record) dataset in the legacy layout",
        ));
    };
    let raw = ds.read_raw().map_err(|e| h5.read_err(key, e))?;
    let record = size as usize;
    if record == 0 || raw.len() % record != 0 {
        return Err(h5.invalid(
            key,
            "compound data size is not a multiple of the record size",
        ));
    }
    let n = raw.len() / record;
    members
        .iter()
        .map(|m| Ok((m.name.clone(), decode_member(h5, key, &raw, record, n, m)?)))
        .collect()
}

fn decode_member(
    h5: &H5File,
    key: &str,
    raw: &[u8],
    record: usize,
    n: usize,
    member: &CompoundMember,
) -> Result<Field> {
    let offset = member.byte_offset as usize;
    let field_key = format!("{key}[{}]", member.name);
    let bytes_of = |i: usize, width: usize| &raw[i * record + offset..i * record + offset + width];
    match &member.datatype {
        Datatype::String { size, .. } => {
            let width = *size as usize;
            let strings = (0..n)
                .map(|i| {
                    let b = bytes_of(i, width);
                    let end = b.iter().position(|&c| c == 0).unwrap_or(width);
                    String::from_utf8_lossy(&b[..end]).into_owned()
                })
                .collect();
            Ok(Field::Strings(strings))
        }
        Datatype::Array {
            base_type,
            dimensions,
        } => {
            let width: usize = dimensions.iter().map(|&d| d as usize).product();
            let dtype = scalar_dtype(h5, &field_key, base_type)?;
            let elem = dtype.size_of();
            let mut flat = Vec::with_capacity(n * width * elem);
            for i in 0..n {
                flat.extend_from_slice(bytes_of(i, width * elem));
            }
            Ok(Field::Rows {
                width,
                values: decode_le(dtype, &flat),
            })
        }
        other => {
            let dtype = scalar_dtype(h5, &field_key, other)?;
            let elem = dtype.size_of();
            let mut flat = Vec::with_capacity(n * elem);
            for i in 0..n {
                flat.extend_from_slice(bytes_of(i, elem));
            }
            Ok(Field::Numbers(decode_le(dtype, &flat)))
        }
    }
}

/// The numeric type of a compound member (little-endian only, as numpy writes).
fn scalar_dtype(h5: &H5File, key: &str, dt: &Datatype) -> Result<DType> {
    let little = |order: &DatatypeByteOrder| *order == DatatypeByteOrder::LittleEndian;
    let dtype = match dt {
        Datatype::FloatingPoint {
            size: 4,
            byte_order,
            ..
        } if little(byte_order) => DType::F32,
        Datatype::FloatingPoint {
            size: 8,
            byte_order,
            ..
        } if little(byte_order) => DType::F64,
        Datatype::FixedPoint {
            size,
            byte_order,
            layout,
        } if little(byte_order) || *size == 1 => match (size, layout.signed) {
            (1, true) => DType::I8,
            (2, true) => DType::I16,
            (4, true) => DType::I32,
            (8, true) => DType::I64,
            (1, false) => DType::U8,
            (2, false) => DType::U16,
            (4, false) => DType::U32,
            (8, false) => DType::U64,
            _ => return Err(h5.invalid(key, format!("unsupported integer width {size}"))),
        },
        Datatype::Enumeration {
            size: 1, members, ..
        } if crate::h5::is_bool_enum(
            &members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        ) =>
        {
            DType::Bool
        }
        other => return Err(h5.invalid(key, format!("unsupported field type {other:?}"))),
    };
    Ok(dtype)
}

/// Decodes little-endian bytes into a typed buffer.
fn decode_le(dtype: DType, bytes: &[u8]) -> NumVec {
    macro_rules! le {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                })
                .collect()
        };
    }
    match dtype {
        DType::Bool => NumVec::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DType::I8 => NumVec::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U8 => NumVec::U8(bytes.to_vec()),
        DType::I16 => NumVec::I16(le!(i16, 2)),
        DType::U16 => NumVec::U16(le!(u16, 2)),
        DType::I32 => NumVec::I32(le!(i32, 4)),
        DType::U32 => NumVec::U32(le!(u32, 4)),
        DType::I64 => NumVec::I64(le!(i64, 8)),
        DType::U64 => NumVec::U64(le!(u64, 8)),
        DType::F32 => NumVec::F32(le!(f32, 4)),
        DType::F64 => NumVec::F64(le!(f64, 8)),
    }
}

/// Whether the file uses the pre-0.7 layout (a compound `obs` dataset).
pub(crate) fn is_legacy(h5: &H5File) -> Result<bool> {
    Ok(h5.kind("obs")? == Some(NodeKind::Dataset))
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

/// Reads a legacy compound `obsm`/`varm`: every field is one matrix.
pub(crate) fn read_matrix_record(h5: &H5File, key: &str) -> Result<IndexMap<String, Matrix>> {
    let mut out = IndexMap::new();
    if h5.kind(key)? != Some(NodeKind::Dataset) {
        return h5.read_matrix_map(key);
    }
    for (name, field) in read_compound(h5, key)? {
        let (width, values) = match field {
            Field::Rows { width, values } => (width, values),
            Field::Numbers(values) => (1, values),
            Field::Strings(_) => {
                tracing::warn!(file = %h5.path, key = %format!("{key}[{name}]"), "skipping string field");
                continue;
            }
        };
        let rows = values.len() / width.max(1);
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
