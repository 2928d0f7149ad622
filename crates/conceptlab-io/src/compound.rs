//! Decoding HDF5 compound (record) datasets: the pre-0.7 `obs`/`var`/`obsm`
//! tables and numpy record arrays in `uns` (anndata's `rec-array`).

use conceptlab_core::{DType, NumVec, Values};
use hdf5_pure::{CompoundMember, Datatype, DatatypeByteOrder};

use crate::error::Result;
use crate::h5::H5File;

/// One decoded field of a compound dataset.
pub(crate) enum Field {
    Numbers(NumVec),
    Strings(Vec<String>),
    /// A fixed-size array per record: `width` values per row, row-major.
    Rows {
        width: usize,
        values: NumVec,
    },
}

/// Reads a compound dataset as one field per member.
pub(crate) fn read_compound(h5: &H5File, key: &str) -> Result<Vec<(String, Field)>> {
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
        Datatype::VariableLength { .. } => {
            return Err(h5.unsupported(
                key,
                "variable-length field in a record",
                "fixed-length string or numeric record fields",
            ));
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

/// Reads a record array: one named column per member. Only fixed-length
/// string and numeric members are supported; variable-length strings (which
/// anndata >= 0.8 writes) need global-heap access that hdf5-pure does not
/// expose inside compounds, and are reported as unsupported.
pub(crate) fn read_records(h5: &H5File, key: &str) -> Result<Vec<(String, Values)>> {
    read_compound(h5, key)?
        .into_iter()
        .map(|(name, field)| match field {
            Field::Strings(s) => Ok((name, Values::Strings(s))),
            Field::Numbers(n) => Ok((name, Values::Numbers(n))),
            Field::Rows { .. } => Err(h5.unsupported(
                &format!("{key}[{name}]"),
                "record field holding an array",
                "fixed-length string or numeric record fields",
            )),
        })
        .collect()
}
