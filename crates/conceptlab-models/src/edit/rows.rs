//! Edited cells written into a stored matrix: the rows an edit changed get
//! new values in the model's genes, every other value (other rows, other
//! genes of the edited rows) is copied as it is, and the matrix keeps its
//! storage (dense, CSR or CSC).

use conceptlab_core::{DType, DenseArray, Matrix, NumVec, SparseFormat, SparseMatrix};
use ndarray::Array2;

use crate::ModelError;

/// New values for some rows of a matrix: `values[[i, j]]` replaces the
/// entry at row `rows[i]`, column `genes[j]`.
pub(super) struct Replacement<'a> {
    /// Ascending, distinct row indices.
    pub rows: &'a [usize],
    /// Ascending, distinct column indices.
    pub genes: &'a [usize],
    pub values: &'a Array2<f64>,
}

/// The element type the matrix is written in: floats keep theirs; integer
/// and boolean matrices become `f32` (edited counts are expected counts,
/// not integers) unless a value would not survive that exactly, then `f64`.
pub(super) fn output_dtype(m: &Matrix) -> DType {
    dtype_for(m.dtype(), exact_in_f32(m))
}

/// [`output_dtype`] of a matrix read in blocks: its element type and
/// whether every block is [`exact_in_f32`].
pub(super) fn dtype_for(input: DType, exact: bool) -> DType {
    match input {
        DType::F32 => DType::F32,
        DType::F64 => DType::F64,
        _ if exact => DType::F32,
        _ => DType::F64,
    }
}

/// Whether every stored value of `m` survives conversion to `f32`.
pub(super) fn exact_in_f32(m: &Matrix) -> bool {
    let values = m.values();
    match values.dtype() {
        DType::F32 => true,
        _ => (0..values.len()).all(|k| values.get_f64(k).is_none_or(|v| f64::from(v as f32) == v)),
    }
}

/// Row blocks of one matrix (in order, all dense or all CSR) as one matrix
/// of `n_cols` columns.
pub(super) fn stack(
    blocks: Vec<Matrix>,
    n_cols: usize,
    dtype: DType,
) -> Result<Matrix, ModelError> {
    let n_rows: usize = blocks.iter().map(Matrix::nrows).sum();
    let mut data = NumVec::empty(dtype);
    if blocks.iter().all(|b| matches!(b, Matrix::Dense(_))) {
        for b in &blocks {
            data.extend_from(b.values())?;
        }
        return Ok(Matrix::Dense(DenseArray::new(vec![n_rows, n_cols], data)?));
    }
    let (mut indptr, mut indices) = (vec![0u64], Vec::new());
    for b in &blocks {
        let Matrix::Sparse(s) = b else {
            return Err(ModelError::Input(
                "row blocks mix dense and sparse storage".into(),
            ));
        };
        let base = indices.len() as u64;
        indptr.extend(s.indptr[1..].iter().map(|&p| base + p));
        indices.extend_from_slice(&s.indices);
        data.extend_from(&s.data)?;
    }
    Ok(Matrix::Sparse(SparseMatrix::new(
        SparseFormat::Csr,
        (n_rows, n_cols),
        indptr,
        indices,
        data,
    )?))
}

/// The values of `m` at rows `rows` and columns `genes` (as in
/// [`Replacement`]) in `f64`, exactly as stored.
pub(super) fn gather(
    m: &Matrix,
    rows: &[usize],
    genes: &[usize],
) -> Result<Array2<f64>, ModelError> {
    let (_, n_cols) = m.shape();
    let position = column_positions(n_cols, genes);
    let picked = m.select_rows(rows)?;
    let mut out = Array2::zeros((rows.len(), genes.len()));
    match &picked {
        Matrix::Dense(d) => {
            for i in 0..rows.len() {
                for (j, &g) in genes.iter().enumerate() {
                    out[[i, j]] = d.data.get_f64(i * n_cols + g).unwrap_or(0.0);
                }
            }
        }
        Matrix::Sparse(s) => {
            for major in 0..s.indptr.len().saturating_sub(1) {
                for k in s.indptr[major] as usize..s.indptr[major + 1] as usize {
                    let minor = s.indices[k] as usize;
                    let (i, c) = match s.format {
                        SparseFormat::Csr => (major, minor),
                        SparseFormat::Csc => (minor, major),
                    };
                    if let Some(j) = position[c] {
                        out[[i, j]] = s.data.get_f64(k).unwrap_or(0.0);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `m` with the entries of `r` replaced, in element type `dtype` (see
/// [`output_dtype`]); sparse storage stores the new values that are not 0.
pub(super) fn replace(m: &Matrix, r: &Replacement, dtype: DType) -> Result<Matrix, ModelError> {
    let (n_rows, n_cols) = m.shape();
    let position = column_positions(n_cols, r.genes);
    let mut edited_index = vec![None; n_rows];
    for (i, &row) in r.rows.iter().enumerate() {
        edited_index[row] = Some(i);
    }
    let out = match dtype {
        DType::F64 => Typed::<f64>::build(m, r, &position, &edited_index)?,
        _ => Typed::<f32>::build(m, r, &position, &edited_index)?,
    };
    Ok(out)
}

/// Position of each column in `genes`, if it is one.
fn column_positions(n_cols: usize, genes: &[usize]) -> Vec<Option<usize>> {
    let mut position = vec![None; n_cols];
    for (j, &g) in genes.iter().enumerate() {
        position[g] = Some(j);
    }
    position
}

/// The two element types a written matrix can have.
trait Element: Copy + Default {
    fn convert(v: &NumVec) -> Vec<Self>;
    fn from_f64(v: f64) -> Self;
    fn wrap(v: Vec<Self>) -> NumVec;
}

impl Element for f32 {
    fn convert(v: &NumVec) -> Vec<f32> {
        v.to_f32()
    }
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn wrap(v: Vec<f32>) -> NumVec {
        NumVec::F32(v)
    }
}

impl Element for f64 {
    fn convert(v: &NumVec) -> Vec<f64> {
        v.to_f64()
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn wrap(v: Vec<f64>) -> NumVec {
        NumVec::F64(v)
    }
}

struct Typed<T>(std::marker::PhantomData<T>);

impl<T: Element> Typed<T> {
    fn build(
        m: &Matrix,
        r: &Replacement,
        position: &[Option<usize>],
        edited_index: &[Option<usize>],
    ) -> Result<Matrix, ModelError> {
        // Unedited values only change type, which is exact: f32 and f64 stay
        // as they are, and integers go to f32 only when every one fits.
        let data = T::convert(m.values());
        let new = |i: usize, j: usize| T::from_f64(r.values[[i, j]]);
        Ok(match m {
            Matrix::Dense(d) => {
                let n_cols = d.row_len();
                let mut data = data;
                for (i, &row) in r.rows.iter().enumerate() {
                    for (j, &g) in r.genes.iter().enumerate() {
                        data[row * n_cols + g] = new(i, j);
                    }
                }
                Matrix::Dense(DenseArray::new(d.shape.clone(), T::wrap(data))?)
            }
            Matrix::Sparse(s) => {
                let mut out = Compressed::<T>::default();
                for major in 0..s.indptr.len().saturating_sub(1) {
                    let span = s.indptr[major] as usize..s.indptr[major + 1] as usize;
                    let stored = |k: usize| (s.indices[k] as usize, data[k]);
                    match s.format {
                        SparseFormat::Csr => match edited_index[major] {
                            None => span.for_each(|k| out.push(stored(k))),
                            Some(i) => {
                                // The row's other genes keep their entries;
                                // the model's genes take the new values, in
                                // column order.
                                let mut row: Vec<(usize, T)> = span
                                    .filter(|&k| position[s.indices[k] as usize].is_none())
                                    .map(stored)
                                    .collect();
                                row.extend(
                                    (0..r.genes.len())
                                        .filter(|&j| r.values[[i, j]] != 0.0)
                                        .map(|j| (r.genes[j], new(i, j))),
                                );
                                row.sort_by_key(|&(c, _)| c);
                                row.into_iter().for_each(|e| out.push(e));
                            }
                        },
                        SparseFormat::Csc => match position[major] {
                            None => span.for_each(|k| out.push(stored(k))),
                            Some(j) => {
                                // Unedited rows' entries and the edited rows'
                                // new values, merged in row order.
                                let mut column: Vec<(usize, T)> = span
                                    .filter(|&k| edited_index[s.indices[k] as usize].is_none())
                                    .map(stored)
                                    .collect();
                                column.extend(
                                    (0..r.rows.len())
                                        .filter(|&i| r.values[[i, j]] != 0.0)
                                        .map(|i| (r.rows[i], new(i, j))),
                                );
                                column.sort_by_key(|&(row, _)| row);
                                column.into_iter().for_each(|e| out.push(e));
                            }
                        },
                    }
                    out.close();
                }
                Matrix::Sparse(SparseMatrix::new(
                    s.format,
                    s.shape,
                    out.indptr,
                    out.indices,
                    T::wrap(out.values),
                )?)
            }
        })
    }
}

/// A compressed matrix built one major slice (row or column) at a time.
struct Compressed<T> {
    indptr: Vec<u64>,
    indices: Vec<u32>,
    values: Vec<T>,
}

impl<T> Default for Compressed<T> {
    fn default() -> Self {
        Compressed {
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<T> Compressed<T> {
    fn push(&mut self, (index, value): (usize, T)) {
        self.indices.push(index as u32);
        self.values.push(value);
    }

    /// Ends the current slice.
    fn close(&mut self) {
        self.indptr.push(self.indices.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [[1, 0, 2, 0], [0, 3, 0, 0], [4, 0, 0, 5]] as int32, dense or sparse.
    fn example(dense: bool, format: SparseFormat) -> Matrix {
        let m = Matrix::Dense(
            DenseArray::new(
                vec![3, 4],
                NumVec::I32(vec![1, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5]),
            )
            .unwrap(),
        );
        if dense {
            return m;
        }
        let csr = SparseMatrix::new(
            SparseFormat::Csr,
            (3, 4),
            vec![0, 2, 3, 5],
            vec![0, 2, 1, 0, 3],
            NumVec::I32(vec![1, 2, 3, 4, 5]),
        )
        .unwrap();
        match format {
            SparseFormat::Csr => Matrix::Sparse(csr),
            // CSC of the same matrix: columns [1,_,4], [_,3,_], [2,_,_], [_,_,5].
            SparseFormat::Csc => Matrix::Sparse(
                SparseMatrix::new(
                    SparseFormat::Csc,
                    (3, 4),
                    vec![0, 2, 3, 4, 5],
                    vec![0, 2, 1, 0, 2],
                    NumVec::I32(vec![1, 4, 3, 2, 5]),
                )
                .unwrap(),
            ),
        }
    }

    #[test]
    fn replaces_only_the_edited_entries_in_every_storage() {
        // Row 1 gets genes 0 and 1 set to 0.5 and 0 (the 3 goes away).
        let values = Array2::from_shape_vec((1, 2), vec![0.5, 0.0]).unwrap();
        let r = Replacement {
            rows: &[1],
            genes: &[0, 1],
            values: &values,
        };
        let want = vec![1., 0., 2., 0., 0.5, 0., 0., 0., 4., 0., 0., 5.];
        for (dense, format) in [
            (true, SparseFormat::Csr),
            (false, SparseFormat::Csr),
            (false, SparseFormat::Csc),
        ] {
            let m = example(dense, format);
            assert_eq!(output_dtype(&m), DType::F32);
            let gathered = gather(&m, &[1, 2], &[0, 3]).unwrap();
            assert_eq!(gathered.into_raw_vec_and_offset().0, vec![0., 0., 4., 5.]);
            let out = replace(&m, &r, DType::F32).unwrap();
            assert_eq!(out.dtype(), DType::F32);
            assert_eq!(out.encoding(), m.encoding());
            let got = conceptlab_core::preprocess::to_dense_f32(&out).unwrap();
            assert_eq!(got.into_raw_vec_and_offset().0, want, "{}", m.encoding());
            if let Matrix::Sparse(s) = &out {
                assert_eq!(s.nnz(), 5, "the zero is not stored");
            }
        }
    }

    #[test]
    fn integers_that_f32_cannot_hold_go_to_f64() {
        let m = Matrix::Dense(
            DenseArray::new(vec![1, 2], NumVec::I64(vec![1, (1 << 40) + 1])).unwrap(),
        );
        assert_eq!(output_dtype(&m), DType::F64);
        let m = Matrix::Dense(DenseArray::new(vec![1, 2], NumVec::U32(vec![1, 1 << 20])).unwrap());
        assert_eq!(output_dtype(&m), DType::F32);
    }
}
