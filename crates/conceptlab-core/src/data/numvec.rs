use crate::CoreError;

/// Element type of a numeric buffer, named as numpy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl DType {
    /// The numpy name of the type (`float32`, `int64`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    pub fn is_integer(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    /// Bytes one element occupies in memory.
    pub fn size_of(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed, one-dimensional buffer: the element storage of every array in a
/// [`CellData`](crate::CellData). Keeping the on-disk type (rather than
/// converting everything to `f32`) is what makes read-then-write lossless.
#[derive(Debug, Clone, PartialEq)]
pub enum NumVec {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Applies `$body` to the inner vector of every variant, rebuilding the same
/// variant from the result.
macro_rules! map_variant {
    ($value:expr, $v:ident => $body:expr) => {
        match $value {
            NumVec::Bool($v) => NumVec::Bool($body),
            NumVec::I8($v) => NumVec::I8($body),
            NumVec::I16($v) => NumVec::I16($body),
            NumVec::I32($v) => NumVec::I32($body),
            NumVec::I64($v) => NumVec::I64($body),
            NumVec::U8($v) => NumVec::U8($body),
            NumVec::U16($v) => NumVec::U16($body),
            NumVec::U32($v) => NumVec::U32($body),
            NumVec::U64($v) => NumVec::U64($body),
            NumVec::F32($v) => NumVec::F32($body),
            NumVec::F64($v) => NumVec::F64($body),
        }
    };
}

/// Evaluates `$body` on the inner vector of whichever variant is present.
macro_rules! with_variant {
    ($value:expr, $v:ident => $body:expr) => {
        match $value {
            NumVec::Bool($v) => $body,
            NumVec::I8($v) => $body,
            NumVec::I16($v) => $body,
            NumVec::I32($v) => $body,
            NumVec::I64($v) => $body,
            NumVec::U8($v) => $body,
            NumVec::U16($v) => $body,
            NumVec::U32($v) => $body,
            NumVec::U64($v) => $body,
            NumVec::F32($v) => $body,
            NumVec::F64($v) => $body,
        }
    };
}

/// Lossy conversion of one element to `f64`, the common currency for summaries
/// and comparisons.
trait AsF64: Copy {
    fn as_f64(self) -> f64;
}

macro_rules! impl_as_f64 {
    ($($t:ty),*) => {$(impl AsF64 for $t { fn as_f64(self) -> f64 { self as f64 } })*};
}
impl_as_f64!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);
impl AsF64 for bool {
    fn as_f64(self) -> f64 {
        if self { 1.0 } else { 0.0 }
    }
}

impl NumVec {
    /// An empty buffer of the given type.
    pub fn empty(dtype: DType) -> Self {
        Self::zeros(dtype, 0)
    }

    /// `len` zeros (or `false`) of the given type.
    pub fn zeros(dtype: DType, len: usize) -> Self {
        match dtype {
            DType::Bool => NumVec::Bool(vec![false; len]),
            DType::I8 => NumVec::I8(vec![0; len]),
            DType::I16 => NumVec::I16(vec![0; len]),
            DType::I32 => NumVec::I32(vec![0; len]),
            DType::I64 => NumVec::I64(vec![0; len]),
            DType::U8 => NumVec::U8(vec![0; len]),
            DType::U16 => NumVec::U16(vec![0; len]),
            DType::U32 => NumVec::U32(vec![0; len]),
            DType::U64 => NumVec::U64(vec![0; len]),
            DType::F32 => NumVec::F32(vec![0.0; len]),
            DType::F64 => NumVec::F64(vec![0.0; len]),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            NumVec::Bool(_) => DType::Bool,
            NumVec::I8(_) => DType::I8,
            NumVec::I16(_) => DType::I16,
            NumVec::I32(_) => DType::I32,
            NumVec::I64(_) => DType::I64,
            NumVec::U8(_) => DType::U8,
            NumVec::U16(_) => DType::U16,
            NumVec::U32(_) => DType::U32,
            NumVec::U64(_) => DType::U64,
            NumVec::F32(_) => DType::F32,
            NumVec::F64(_) => DType::F64,
        }
    }

    pub fn len(&self) -> usize {
        with_variant!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` converted to `f64` (booleans become 0 or 1).
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        with_variant!(self, v => v.get(i).map(|x| x.as_f64()))
    }

    /// All elements converted to `f64`.
    pub fn to_f64(&self) -> Vec<f64> {
        with_variant!(self, v => v.iter().map(|x| x.as_f64()).collect())
    }

    /// All elements converted to `f32` (rounding `f64` and large integers).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            NumVec::F32(v) => v.clone(),
            other => with_variant!(other, v => v.iter().map(|x| x.as_f64() as f32).collect()),
        }
    }

    /// The elements at `indices`, in that order.
    pub fn gather(&self, indices: &[usize]) -> Result<Self, CoreError> {
        let len = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Err(CoreError::IndexOutOfBounds {
                what: "array",
                index: bad,
                len,
            });
        }
        Ok(map_variant!(self, v => indices.iter().map(|&i| v[i]).collect()))
    }

    /// A copy of the elements in `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Result<Self, CoreError> {
        let len = self.len();
        if start > end || end > len {
            return Err(CoreError::IndexOutOfBounds {
                what: "array",
                index: end,
                len,
            });
        }
        Ok(map_variant!(self, v => v[start..end].to_vec()))
    }

    /// Appends `other`, which must have the same element type.
    pub fn extend_from(&mut self, other: &NumVec) -> Result<(), CoreError> {
        match (self, other) {
            (NumVec::Bool(a), NumVec::Bool(b)) => a.extend_from_slice(b),
            (NumVec::I8(a), NumVec::I8(b)) => a.extend_from_slice(b),
            (NumVec::I16(a), NumVec::I16(b)) => a.extend_from_slice(b),
            (NumVec::I32(a), NumVec::I32(b)) => a.extend_from_slice(b),
            (NumVec::I64(a), NumVec::I64(b)) => a.extend_from_slice(b),
            (NumVec::U8(a), NumVec::U8(b)) => a.extend_from_slice(b),
            (NumVec::U16(a), NumVec::U16(b)) => a.extend_from_slice(b),
            (NumVec::U32(a), NumVec::U32(b)) => a.extend_from_slice(b),
            (NumVec::U64(a), NumVec::U64(b)) => a.extend_from_slice(b),
            (NumVec::F32(a), NumVec::F32(b)) => a.extend_from_slice(b),
            (NumVec::F64(a), NumVec::F64(b)) => a.extend_from_slice(b),
            (a, b) => {
                return Err(CoreError::DTypeMismatch {
                    expected: a.dtype().name(),
                    found: b.dtype().name(),
                });
            }
        }
        Ok(())
    }

    /// Index of the first NaN or infinite element, if any (always `None` for
    /// integer and boolean buffers).
    pub fn first_non_finite(&self) -> Option<usize> {
        match self {
            NumVec::F32(v) => v.iter().position(|x| !x.is_finite()),
            NumVec::F64(v) => v.iter().position(|x| !x.is_finite()),
            _ => None,
        }
    }

    /// Smallest and largest element as `f64`, ignoring NaN; `None` when empty.
    pub fn min_max(&self) -> Option<(f64, f64)> {
        let mut acc: Option<(f64, f64)> = None;
        with_variant!(self, v => {
            for x in v.iter() {
                let x = x.as_f64();
                if x.is_nan() {
                    continue;
                }
                acc = Some(match acc {
                    None => (x, x),
                    Some((lo, hi)) => (lo.min(x), hi.max(x)),
                });
            }
        });
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_keeps_type_and_order() {
        let v = NumVec::I16(vec![10, 20, 30]);
        assert_eq!(v.gather(&[2, 0, 2]).unwrap(), NumVec::I16(vec![30, 10, 30]));
        assert!(matches!(
            v.gather(&[3]),
            Err(CoreError::IndexOutOfBounds { index: 3, .. })
        ));
    }

    #[test]
    fn extend_rejects_mixed_types() {
        let mut a = NumVec::F32(vec![1.0]);
        a.extend_from(&NumVec::F32(vec![2.0])).unwrap();
        assert_eq!(a, NumVec::F32(vec![1.0, 2.0]));
        assert!(a.extend_from(&NumVec::F64(vec![1.0])).is_err());
    }

    #[test]
    fn non_finite_and_range() {
        let v = NumVec::F64(vec![1.0, f64::NAN, -3.0]);
        assert_eq!(v.first_non_finite(), Some(1));
        assert_eq!(v.min_max(), Some((-3.0, 1.0)));
        assert_eq!(NumVec::Bool(vec![true]).min_max(), Some((1.0, 1.0)));
        assert_eq!(NumVec::U8(vec![]).min_max(), None);
    }
}
