//! Decoding HDF5 compound (record) datasets: the pre-0.7 `obs`/`var`/`obsm`
//! tables and numpy record arrays in `uns` (anndata's `rec-array`).

use conceptlab_core::{DType, NumVec, Values};
use hdf5_pure::{CompoundMember, Datatype, DatatypeByteOrder};

use crate::error::Result;
use crate::h5::H5File;
use crate::heap::GlobalHeap;

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

/// Reads a compound dataset as one field per member, after checking that
/// every member lies inside the record and charging the memory it takes.
pub(crate) fn read_compound(h5: &H5File, key: &str) -> Result<Vec<(String, Field)>> {
    let ds = h5.dataset(key)?;
    let datatype = ds.datatype().map_err(|e| h5.read_err(key, e))?;
    let Datatype::Compound { size, members } = datatype else {
        return Err(h5.invalid(
            key,
            "expected a compound (record) dataset in the legacy layout",
        ));
    };
    let record = size as usize;
    if record == 0 {
        return Err(h5.invalid(key, "compound records declare a size of 0 bytes"));
    }
    let declared = h5.declared(key, &ds)?;
    if declared.shape.len() > 1 {
        return Err(h5.invalid(
            key,
            format!(
                "expected a one-dimensional record array, found {}",
                crate::bounds::dims(&declared.shape)
            ),
        ));
    }
    let heap_ref = crate::heap::reference_size(h5.address_format().0);
    for m in &members {
        let width = member_width(h5, key, m, heap_ref)?;
        if (m.byte_offset as usize)
            .checked_add(width)
            .is_none_or(|end| end > record)
        {
            return Err(h5.invalid(
                key,
                format!(
                    "field `{}` ({width} bytes at offset {}) does not fit in a record of {record} bytes",
                    m.name, m.byte_offset
                ),
            ));
        }
    }
    // The raw records, then the decoded fields (at most as large again), plus
    // a `String` per text field and record.
    let strings = members.iter().filter(|m| is_text(&m.datatype)).count() as u64;
    let per_record = 2 * record as u64 + strings * std::mem::size_of::<String>() as u64;
    h5.charge(key, &declared, declared.elements, per_record, "records")?;
    let raw = ds.read_raw().map_err(|e| h5.read_err(key, e))?;
    if raw.len() % record != 0 {
        return Err(h5.invalid(
            key,
            "compound data size is not a multiple of the record size",
        ));
    }
    let n = raw.len() / record;
    let mut heap = GlobalHeap::new(h5, key);
    members
        .iter()
        .map(|m| {
            let records = Records {
                raw: &raw,
                record,
                n,
            };
            Ok((
                m.name.clone(),
                decode_member(h5, key, &records, m, &mut heap)?,
            ))
        })
        .collect()
}

fn is_text(dt: &Datatype) -> bool {
    matches!(
        dt,
        Datatype::String { .. }
            | Datatype::VariableLength {
                is_string: true,
                ..
            }
    )
}

/// Bytes a member occupies in each record.
fn member_width(h5: &H5File, key: &str, m: &CompoundMember, heap_ref: usize) -> Result<usize> {
    let too_wide = || {
        h5.invalid(
            key,
            format!("field `{}` declares an impossible size", m.name),
        )
    };
    Ok(match &m.datatype {
        Datatype::VariableLength { .. } => heap_ref,
        Datatype::Array {
            base_type,
            dimensions,
        } => dimensions
            .iter()
            .try_fold(base_type.type_size() as usize, |acc, &d| {
                acc.checked_mul(d as usize)
            })
            .ok_or_else(too_wide)?,
        other => other.type_size() as usize,
    })
}

/// The raw bytes of `n` records of `record` bytes each.
struct Records<'a> {
    raw: &'a [u8],
    record: usize,
    n: usize,
}

impl Records<'_> {
    /// `width` bytes at `offset` of record `i`; both were checked against the
    /// record size in [`read_compound`].
    fn field(&self, i: usize, offset: usize, width: usize) -> &[u8] {
        let start = i * self.record + offset;
        &self.raw[start..start + width]
    }
}

fn decode_member(
    h5: &H5File,
    key: &str,
    records: &Records<'_>,
    member: &CompoundMember,
    heap: &mut GlobalHeap<'_>,
) -> Result<Field> {
    let offset = member.byte_offset as usize;
    let n = records.n;
    let field_key = format!("{key}[{}]", member.name);
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| h5.invalid(&field_key, "text field is not UTF-8"))
    };
    match &member.datatype {
        Datatype::String { size, .. } => {
            let width = *size as usize;
            let strings = (0..n)
                .map(|i| {
                    let b = records.field(i, offset, width);
                    let end = b.iter().position(|&c| c == 0).unwrap_or(width);
                    text(b[..end].to_vec())
                })
                .collect::<Result<_>>()?;
            Ok(Field::Strings(strings))
        }
        Datatype::VariableLength {
            is_string: true, ..
        } => {
            let width = heap.reference_size();
            let strings = (0..n)
                .map(|i| heap.string(records.field(i, offset, width)))
                .collect::<Result<_>>()?;
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
                flat.extend_from_slice(records.field(i, offset, width * elem));
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
                flat.extend_from_slice(records.field(i, offset, elem));
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
                "variable-length sequence in a record",
                "string or numeric record fields",
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

/// Reads a record array: one named column per member. String members may be
/// fixed-length or variable-length (what anndata >= 0.8 writes).
pub(crate) fn read_records(h5: &H5File, key: &str) -> Result<Vec<(String, Values)>> {
    read_compound(h5, key)?
        .into_iter()
        .map(|(name, field)| match field {
            Field::Strings(s) => Ok((name, Values::Strings(s))),
            Field::Numbers(n) => Ok((name, Values::Numbers(n))),
            Field::Rows { .. } => Err(h5.unsupported(
                &format!("{key}[{name}]"),
                "record field holding an array",
                "string or numeric record fields",
            )),
        })
        .collect()
}
