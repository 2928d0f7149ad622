//! Conversions of a [`Matrix`] of any element type to `f32`, and the checks
//! that decide whether a matrix can be preprocessed at all.

use ndarray::{Array2, ArrayView2};

use super::{Result, invalid};
use crate::{CoreError, DenseArray, Matrix, NumVec, SparseFormat, SparseMatrix};

/// The two dimensions of a dense array that is meant to be a matrix.
fn dense_dims(d: &DenseArray, what: &str) -> Result<(usize, usize)> {
    match d.shape.as_slice() {
        [rows, cols] => Ok((*rows, *cols)),
        other => Err(invalid(
            what,
            format!("expected a 2-dimensional array, found shape {other:?}"),
        )),
    }
}

/// A row-major `f32` array as a dense [`Matrix`] (no copy).
pub fn dense_matrix(a: Array2<f32>) -> Result<Matrix> {
    let (rows, cols) = a.dim();
    let values = if a.is_standard_layout() {
        a.into_raw_vec_and_offset().0
    } else {
        a.iter().copied().collect()
    };
    Ok(Matrix::Dense(DenseArray::new(
        vec![rows, cols],
        NumVec::F32(values),
    )?))
}

/// A dense `f32` copy of `x` (dense, CSR or CSC; any numeric element type;
/// booleans become 0/1, wider types are rounded to the nearest `f32`).
pub fn to_dense_f32(x: &Matrix) -> Result<Array2<f32>> {
    match x {
        Matrix::Dense(d) => {
            let (rows, cols) = dense_dims(d, "dense matrix")?;
            Array2::from_shape_vec((rows, cols), d.data.to_f32()).map_err(|e| {
                invalid(
                    "dense matrix",
                    format!("cannot view as {rows} x {cols}: {e}"),
                )
            })
        }
        Matrix::Sparse(s) => {
            let (rows, cols) = s.shape;
            let mut out = Array2::<f32>::zeros((rows, cols));
            let values = s.data.to_f32();
            for (major, w) in s.indptr.windows(2).enumerate() {
                let span = w[0] as usize..w[1] as usize;
                for (&minor, &v) in s.indices[span.clone()].iter().zip(&values[span]) {
                    let (r, c) = match s.format {
                        SparseFormat::Csr => (major, minor as usize),
                        SparseFormat::Csc => (minor as usize, major),
                    };
                    out[(r, c)] = v;
                }
            }
            Ok(out)
        }
    }
}

/// A CSR copy of a sparse matrix with `f32` values (CSC input is converted,
/// as scanpy converts it before normalising). Column indices within a row
/// come out sorted when the input's were.
pub fn to_csr_f32(s: &SparseMatrix) -> Result<SparseMatrix> {
    let values = s.data.to_f32();
    match s.format {
        SparseFormat::Csr => SparseMatrix::new(
            SparseFormat::Csr,
            s.shape,
            s.indptr.clone(),
            s.indices.clone(),
            NumVec::F32(values),
        ),
        SparseFormat::Csc => {
            let (rows, _) = s.shape;
            let mut counts = vec![0u64; rows + 1];
            for &r in &s.indices {
                counts[r as usize + 1] += 1;
            }
            for i in 0..rows {
                counts[i + 1] += counts[i];
            }
            let indptr = counts.clone();
            let mut next = counts;
            let mut indices = vec![0u32; s.indices.len()];
            let mut data = vec![0f32; s.indices.len()];
            for (col, w) in s.indptr.windows(2).enumerate() {
                let span = w[0] as usize..w[1] as usize;
                for (&r, &v) in s.indices[span.clone()].iter().zip(&values[span]) {
                    let slot = next[r as usize] as usize;
                    next[r as usize] += 1;
                    indices[slot] = col as u32;
                    data[slot] = v;
                }
            }
            SparseMatrix::new(
                SparseFormat::Csr,
                s.shape,
                indptr,
                indices,
                NumVec::F32(data),
            )
        }
    }
}

/// Whether every stored value is finite, non-negative and integer-valued:
/// what raw UMI counts look like (and what `seurat_v3` expects). Checks
/// every value, not a sample; integer and boolean types need no rounding
/// test.
pub fn looks_like_counts(x: &Matrix) -> bool {
    first_non_count(x, None).is_none()
}

/// How a stored value fails to be a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonCountKind {
    Negative,
    Fractional,
    NonFinite,
}

/// The first stored value (in storage order) that is not a count, where it
/// is, and why: the evidence behind a "these are not counts" decision, so
/// that a caller can name it instead of silently switching normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonCount {
    pub row: usize,
    pub col: usize,
    pub value: f64,
    pub kind: NonCountKind,
}

impl NonCount {
    /// "negative", "not an integer" or "not finite".
    pub fn reason(&self) -> &'static str {
        match self.kind {
            NonCountKind::Negative => "negative",
            NonCountKind::Fractional => "not an integer",
            NonCountKind::NonFinite => "not finite",
        }
    }
}

/// The first stored value of `x` that is negative, fractional or non-finite
/// (`None`: the matrix holds counts). Rows where `fractional_ok[row]` is true
/// may hold non-integer values (cells whose counts an edit replaced with
/// expected counts), never negative or non-finite ones.
pub fn first_non_count(x: &Matrix, fractional_ok: Option<&[bool]>) -> Option<NonCount> {
    fn classify(v: f64) -> Option<NonCountKind> {
        if !v.is_finite() {
            Some(NonCountKind::NonFinite)
        } else if v < 0.0 {
            Some(NonCountKind::Negative)
        } else if v.fract() != 0.0 {
            Some(NonCountKind::Fractional)
        } else {
            None
        }
    }
    // Integer types can only fail by sign; floats are classified by value.
    let values = x.values();
    let offending = |k: usize, kind: NonCountKind| -> bool {
        kind != NonCountKind::Fractional
            || fractional_ok.is_none_or(|ok| !ok.get(position(x, k).0).copied().unwrap_or(false))
    };
    let found = match values {
        NumVec::F32(v) => v.iter().enumerate().find_map(|(k, &a)| {
            classify(f64::from(a))
                .filter(|&kind| offending(k, kind))
                .map(|kind| (k, kind))
        }),
        NumVec::F64(v) => v.iter().enumerate().find_map(|(k, &a)| {
            classify(a)
                .filter(|&kind| offending(k, kind))
                .map(|kind| (k, kind))
        }),
        NumVec::I8(v) => v
            .iter()
            .position(|&a| a < 0)
            .map(|k| (k, NonCountKind::Negative)),
        NumVec::I16(v) => v
            .iter()
            .position(|&a| a < 0)
            .map(|k| (k, NonCountKind::Negative)),
        NumVec::I32(v) => v
            .iter()
            .position(|&a| a < 0)
            .map(|k| (k, NonCountKind::Negative)),
        NumVec::I64(v) => v
            .iter()
            .position(|&a| a < 0)
            .map(|k| (k, NonCountKind::Negative)),
        NumVec::Bool(_) | NumVec::U8(_) | NumVec::U16(_) | NumVec::U32(_) | NumVec::U64(_) => None,
    };
    found.map(|(k, kind)| {
        let (row, col) = position(x, k);
        NonCount {
            row,
            col,
            value: values.get_f64(k).unwrap_or(f64::NAN),
            kind,
        }
    })
}

/// The (row, column) of the `k`-th stored value.
fn position(x: &Matrix, k: usize) -> (usize, usize) {
    match x {
        Matrix::Dense(d) => {
            let cols = d.row_len().max(1);
            (k / cols, k % cols)
        }
        Matrix::Sparse(s) => {
            // The major index is the last indptr entry at or before k.
            let major = s
                .indptr
                .partition_point(|&p| p as usize <= k)
                .saturating_sub(1);
            let minor = s.indices.get(k).map_or(0, |&i| i as usize);
            match s.format {
                SparseFormat::Csr => (major, minor),
                SparseFormat::Csc => (minor, major),
            }
        }
    }
}

/// An error naming the row and column of the first NaN or infinite value
/// (in storage order), `what` saying which matrix it is.
pub fn check_finite(x: &Matrix, what: &str) -> Result<()> {
    let Some(k) = x.values().first_non_finite() else {
        return Ok(());
    };
    let value = x.values().get_f64(k).unwrap_or(f64::NAN);
    if let Matrix::Dense(d) = x {
        dense_dims(d, what)?;
    }
    let (row, col) = position(x, k);
    Err(CoreError::NonFinite {
        what: what.to_owned(),
        row,
        col,
        value,
    })
}

/// An expression matrix as the gene-wise statistics read it: a dense `f32`
/// array, or any [`Matrix`] (sparse ones are never densified).
#[derive(Debug, Clone, Copy)]
pub enum ExprMatrix<'a> {
    Dense(ArrayView2<'a, f32>),
    Stored(&'a Matrix),
}

impl<'a> From<&'a Array2<f32>> for ExprMatrix<'a> {
    fn from(x: &'a Array2<f32>) -> Self {
        ExprMatrix::Dense(x.view())
    }
}

impl<'a> From<ArrayView2<'a, f32>> for ExprMatrix<'a> {
    fn from(x: ArrayView2<'a, f32>) -> Self {
        ExprMatrix::Dense(x)
    }
}

impl<'a> From<&'a Matrix> for ExprMatrix<'a> {
    fn from(x: &'a Matrix) -> Self {
        ExprMatrix::Stored(x)
    }
}

impl ExprMatrix<'_> {
    /// `(cells, genes)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            ExprMatrix::Dense(x) => x.dim(),
            ExprMatrix::Stored(m) => m.shape(),
        }
    }

    /// Whether the values are `f32`, so that per-element arithmetic must
    /// round to `f32` as numpy does on float32 arrays.
    pub(crate) fn is_f32(&self) -> bool {
        match self {
            ExprMatrix::Dense(_) => true,
            ExprMatrix::Stored(m) => m.dtype() == crate::DType::F32,
        }
    }

    /// Calls `f(column, value)` for every stored value, rows in order (so
    /// per-column sums accumulate in the same order on every run). Dense
    /// zeros are visited too; sparse implicit zeros are not.
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize, f64)) -> Result<()> {
        match self {
            ExprMatrix::Dense(x) => {
                for row in x.rows() {
                    for (c, &v) in row.iter().enumerate() {
                        f(c, f64::from(v));
                    }
                }
            }
            ExprMatrix::Stored(Matrix::Dense(d)) => {
                let (_, cols) = dense_dims(d, "expression matrix")?;
                for (k, v) in d.data.to_f64().into_iter().enumerate() {
                    f(k % cols.max(1), v);
                }
            }
            ExprMatrix::Stored(Matrix::Sparse(s)) => {
                let values = s.data.to_f64();
                for (major, w) in s.indptr.windows(2).enumerate() {
                    let span = w[0] as usize..w[1] as usize;
                    for (&minor, &v) in s.indices[span.clone()].iter().zip(&values[span]) {
                        let col = match s.format {
                            SparseFormat::Csr => minor as usize,
                            SparseFormat::Csc => major,
                        };
                        f(col, v);
                    }
                }
            }
        }
        Ok(())
    }

    /// The first non-finite value, as [`check_finite`] reports it.
    pub(crate) fn check_finite(&self, what: &str) -> Result<()> {
        match self {
            ExprMatrix::Dense(x) => {
                for ((row, col), &v) in x.indexed_iter() {
                    if !v.is_finite() {
                        return Err(CoreError::NonFinite {
                            what: what.to_owned(),
                            row,
                            col,
                            value: f64::from(v),
                        });
                    }
                }
                Ok(())
            }
            ExprMatrix::Stored(m) => check_finite(m, what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(rows: usize, cols: usize, v: NumVec) -> Matrix {
        Matrix::Dense(DenseArray::new(vec![rows, cols], v).unwrap())
    }

    #[test]
    fn first_non_count_names_the_value_and_its_cell() {
        let x = dense(2, 3, NumVec::F32(vec![1., 0., 2., 3., 0.5, -1.]));
        let found = first_non_count(&x, None).unwrap();
        assert_eq!((found.row, found.col, found.value), (1, 1, 0.5));
        assert_eq!(found.kind, NonCountKind::Fractional);
        // Row 1 may hold expected counts, but never a negative value.
        let found = first_non_count(&x, Some(&[false, true])).unwrap();
        assert_eq!((found.row, found.col, found.value), (1, 2, -1.0));
        assert_eq!(found.reason(), "negative");
        let ints = dense(1, 2, NumVec::I32(vec![4, 7]));
        assert!(first_non_count(&ints, None).is_none());
        assert!(looks_like_counts(&ints));
    }

    #[test]
    fn first_non_count_locates_sparse_values() {
        // [[1, 0, 2], [0, 0, 0], [0, 1.5, 0]] as CSR and as CSC.
        let csr = SparseMatrix::new(
            SparseFormat::Csr,
            (3, 3),
            vec![0, 2, 2, 3],
            vec![0, 2, 1],
            NumVec::F64(vec![1.0, 2.0, 1.5]),
        )
        .unwrap();
        let found = first_non_count(&Matrix::Sparse(csr.clone()), None).unwrap();
        assert_eq!((found.row, found.col), (2, 1));
        // The same matrix stored by columns (a transpose of a transpose would
        // be CSR again).
        let csc = SparseMatrix::new(
            SparseFormat::Csc,
            (3, 3),
            vec![0, 1, 2, 3],
            vec![0, 2, 0],
            NumVec::F64(vec![1.0, 1.5, 2.0]),
        )
        .unwrap();
        let csc = Matrix::Sparse(csc);
        assert_eq!(csc.to_dense(), Matrix::Sparse(csr.clone()).to_dense());
        let found = first_non_count(&csc, None).unwrap();
        assert_eq!((found.row, found.col), (2, 1));
        let mut ok = vec![false; 3];
        ok[2] = true;
        assert!(first_non_count(&Matrix::Sparse(csr), Some(&ok)).is_none());
    }
}
