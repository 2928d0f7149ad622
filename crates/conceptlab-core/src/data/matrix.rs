use super::numvec::{DType, NumVec};
use crate::CoreError;

/// An N-dimensional dense array in row-major (C) order.
///
/// A zero-dimensional array (`shape == []`) holds exactly one element: that
/// is how numeric scalars in `uns` are represented.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseArray {
    pub shape: Vec<usize>,
    pub data: NumVec,
}

impl DenseArray {
    /// Wraps `data` with `shape`, checking that the element count agrees.
    pub fn new(shape: Vec<usize>, data: NumVec) -> Result<Self, CoreError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(CoreError::ShapeMismatch {
                what: "dense array element count".into(),
                expected: format!("{expected} (shape {shape:?})"),
                found: data.len().to_string(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A zero-dimensional array holding one value.
    pub fn scalar(value: NumVec) -> Result<Self, CoreError> {
        Self::new(Vec::new(), value)
    }

    /// Number of elements in one row (the product of all but the first axis).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Rows `indices` of the array, in that order (first axis).
    pub fn select_rows(&self, indices: &[usize]) -> Result<Self, CoreError> {
        let rows = self.shape.first().copied().unwrap_or(1);
        let width = self.row_len();
        let mut flat = Vec::with_capacity(indices.len() * width);
        for &r in indices {
            if r >= rows {
                return Err(CoreError::IndexOutOfBounds {
                    what: "rows",
                    index: r,
                    len: rows,
                });
            }
            flat.extend(r * width..(r + 1) * width);
        }
        let mut shape = self.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = indices.len();
        }
        Ok(Self {
            shape,
            data: self.data.gather(&flat)?,
        })
    }
}

/// Which axis a compressed sparse matrix compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseFormat {
    /// Compressed sparse rows: `indptr` has one entry per row plus one.
    Csr,
    /// Compressed sparse columns: `indptr` has one entry per column plus one.
    Csc,
}

impl SparseFormat {
    /// The anndata encoding name (`csr_matrix` / `csc_matrix`).
    pub fn encoding(self) -> &'static str {
        match self {
            SparseFormat::Csr => "csr_matrix",
            SparseFormat::Csc => "csc_matrix",
        }
    }
}

/// A two-dimensional compressed sparse matrix (scipy's CSR/CSC layout).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMatrix {
    pub format: SparseFormat,
    /// `(rows, columns)`.
    pub shape: (usize, usize),
    pub indptr: Vec<u64>,
    pub indices: Vec<u32>,
    pub data: NumVec,
}

impl SparseMatrix {
    /// Builds a matrix, checking every structural invariant scipy relies on:
    /// `indptr` length and monotonicity, index bounds and matching lengths.
    pub fn new(
        format: SparseFormat,
        shape: (usize, usize),
        indptr: Vec<u64>,
        indices: Vec<u32>,
        data: NumVec,
    ) -> Result<Self, CoreError> {
        let (major, minor) = match format {
            SparseFormat::Csr => shape,
            SparseFormat::Csc => (shape.1, shape.0),
        };
        let invalid = |msg: String| Err(CoreError::InvalidSparse(msg));
        if indptr.len() != major + 1 {
            return invalid(format!(
                "indptr has {} entries, expected {} for shape {shape:?}",
                indptr.len(),
                major + 1
            ));
        }
        if indices.len() != data.len() {
            return invalid(format!(
                "{} indices but {} stored values",
                indices.len(),
                data.len()
            ));
        }
        if indptr.first() != Some(&0) || indptr.last() != Some(&(data.len() as u64)) {
            return invalid(format!(
                "indptr must run from 0 to the number of stored values ({})",
                data.len()
            ));
        }
        if let Some(w) = indptr.windows(2).position(|w| w[0] > w[1]) {
            return invalid(format!("indptr decreases at position {w}"));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= minor) {
            return invalid(format!(
                "index {bad} out of bounds for an axis of length {minor}"
            ));
        }
        Ok(Self {
            format,
            shape,
            indptr,
            indices,
            data,
        })
    }

    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Rows `rows` of the matrix, in that order; the result keeps the format.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self, CoreError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.shape.0) {
            return Err(CoreError::IndexOutOfBounds {
                what: "rows",
                index: bad,
                len: self.shape.0,
            });
        }
        match self.format {
            SparseFormat::Csr => {
                let mut indptr = Vec::with_capacity(rows.len() + 1);
                indptr.push(0u64);
                let mut take = Vec::new();
                for &r in rows {
                    let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
                    take.extend(a..b);
                    indptr.push(take.len() as u64);
                }
                let indices = take.iter().map(|&k| self.indices[k]).collect();
                Ok(Self {
                    format: SparseFormat::Csr,
                    shape: (rows.len(), self.shape.1),
                    indptr,
                    indices,
                    data: self.data.gather(&take)?,
                })
            }
            SparseFormat::Csc => {
                // Map each old row to the positions it takes in the output; a
                // row selected twice appears twice.
                let mut new_positions: Vec<Vec<u32>> = vec![Vec::new(); self.shape.0];
                for (new, &old) in rows.iter().enumerate() {
                    new_positions[old].push(new as u32);
                }
                let mut indptr = Vec::with_capacity(self.shape.1 + 1);
                indptr.push(0u64);
                let mut take = Vec::new();
                let mut indices = Vec::new();
                for c in 0..self.shape.1 {
                    let (a, b) = (self.indptr[c] as usize, self.indptr[c + 1] as usize);
                    let mut column: Vec<(u32, usize)> = Vec::new();
                    for k in a..b {
                        for &new in &new_positions[self.indices[k] as usize] {
                            column.push((new, k));
                        }
                    }
                    column.sort_unstable_by_key(|&(new, _)| new);
                    for (new, k) in column {
                        indices.push(new);
                        take.push(k);
                    }
                    indptr.push(take.len() as u64);
                }
                Ok(Self {
                    format: SparseFormat::Csc,
                    shape: (rows.len(), self.shape.1),
                    indptr,
                    indices,
                    data: self.data.gather(&take)?,
                })
            }
        }
    }

    /// The matrix as a dense row-major array of the same element type.
    pub fn to_dense(&self) -> DenseArray {
        let (rows, cols) = self.shape;
        let mut positions = Vec::with_capacity(self.nnz());
        for major in 0..self.indptr.len().saturating_sub(1) {
            for k in self.indptr[major] as usize..self.indptr[major + 1] as usize {
                let minor = self.indices[k] as usize;
                positions.push(match self.format {
                    SparseFormat::Csr => major * cols + minor,
                    SparseFormat::Csc => minor * cols + major,
                });
            }
        }
        let mut data = NumVec::zeros(self.data.dtype(), rows * cols);
        scatter(&mut data, &positions, &self.data);
        DenseArray {
            shape: vec![rows, cols],
            data,
        }
    }
}

/// `target[positions[k]] = values[k]`, for buffers of one element type.
fn scatter(target: &mut NumVec, positions: &[usize], values: &NumVec) {
    macro_rules! put {
        ($($variant:ident),*) => {
            match (target, values) {
                $((NumVec::$variant(t), NumVec::$variant(v)) => {
                    for (&p, &x) in positions.iter().zip(v) {
                        t[p] = x;
                    }
                })*
                _ => unreachable!("scatter is only called with buffers of one type"),
            }
        };
    }
    put!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64);
}

/// A two-dimensional matrix that is either dense or compressed sparse: the
/// storage of `X`, layers, `obsm`/`varm` and `obsp`/`varp`.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    Dense(DenseArray),
    Sparse(SparseMatrix),
}

impl Matrix {
    /// `(rows, columns)`; a one-dimensional dense array counts as one column.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Matrix::Dense(d) => (
                d.shape.first().copied().unwrap_or(1),
                d.shape.get(1..).map_or(1, |s| s.iter().product()),
            ),
            Matrix::Sparse(s) => s.shape,
        }
    }

    pub fn nrows(&self) -> usize {
        self.shape().0
    }

    pub fn dtype(&self) -> DType {
        match self {
            Matrix::Dense(d) => d.data.dtype(),
            Matrix::Sparse(s) => s.data.dtype(),
        }
    }

    /// The storage kind as anndata names its encoding (`array`, `csr_matrix`, `csc_matrix`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Matrix::Dense(_) => "array",
            Matrix::Sparse(s) => s.format.encoding(),
        }
    }

    /// The stored values (all entries of a dense matrix, the non-zeros of a sparse one).
    pub fn values(&self) -> &NumVec {
        match self {
            Matrix::Dense(d) => &d.data,
            Matrix::Sparse(s) => &s.data,
        }
    }

    /// Rows `indices`, in that order, keeping the storage kind.
    pub fn select_rows(&self, indices: &[usize]) -> Result<Self, CoreError> {
        Ok(match self {
            Matrix::Dense(d) => Matrix::Dense(d.select_rows(indices)?),
            Matrix::Sparse(s) => Matrix::Sparse(s.select_rows(indices)?),
        })
    }

    /// Rows and columns `indices` (for square pairwise matrices such as `obsp`).
    pub fn select_square(&self, indices: &[usize]) -> Result<Self, CoreError> {
        let rows = self.select_rows(indices)?;
        let transposed = rows.transpose();
        Ok(transposed.select_rows(indices)?.transpose())
    }

    /// The transpose. Sparse matrices swap CSR and CSC without moving data.
    pub fn transpose(&self) -> Self {
        match self {
            Matrix::Sparse(s) => Matrix::Sparse(SparseMatrix {
                format: match s.format {
                    SparseFormat::Csr => SparseFormat::Csc,
                    SparseFormat::Csc => SparseFormat::Csr,
                },
                shape: (s.shape.1, s.shape.0),
                indptr: s.indptr.clone(),
                indices: s.indices.clone(),
                data: s.data.clone(),
            }),
            Matrix::Dense(d) => {
                let (rows, cols) = self.shape();
                let order: Vec<usize> = (0..cols)
                    .flat_map(|c| (0..rows).map(move |r| r * cols + c))
                    .collect();
                let data = d.data.gather(&order).unwrap_or_else(|_| d.data.clone());
                Matrix::Dense(DenseArray {
                    shape: vec![cols, rows],
                    data,
                })
            }
        }
    }

    /// The matrix as a dense row-major array.
    pub fn to_dense(&self) -> DenseArray {
        match self {
            Matrix::Dense(d) => d.clone(),
            Matrix::Sparse(s) => s.to_dense(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_csr() -> SparseMatrix {
        // [[1, 0, 2],
        //  [0, 0, 0],
        //  [0, 3, 0]]
        SparseMatrix::new(
            SparseFormat::Csr,
            (3, 3),
            vec![0, 2, 2, 3],
            vec![0, 2, 1],
            NumVec::F32(vec![1.0, 2.0, 3.0]),
        )
        .unwrap()
    }

    #[test]
    fn rejects_inconsistent_sparse() {
        let bad_ptr = SparseMatrix::new(
            SparseFormat::Csr,
            (2, 2),
            vec![0, 1],
            vec![0],
            NumVec::F32(vec![1.0]),
        );
        assert!(bad_ptr.is_err());
        let bad_index = SparseMatrix::new(
            SparseFormat::Csr,
            (1, 2),
            vec![0, 1],
            vec![5],
            NumVec::F32(vec![1.0]),
        );
        assert!(bad_index.is_err());
    }

    #[test]
    fn csr_and_csc_row_selection_agree_with_dense() {
        let csr = Matrix::Sparse(example_csr());
        let csc = csr.transpose().to_dense();
        // Build a genuine CSC of the same matrix by transposing the dense transpose.
        let csc = Matrix::Dense(csc).transpose();
        let picks = [2, 0, 2];
        let from_csr = csr.select_rows(&picks).unwrap().to_dense();
        let from_dense = csc.select_rows(&picks).unwrap().to_dense();
        assert_eq!(from_csr, from_dense);
        assert_eq!(
            from_csr.data,
            NumVec::F32(vec![0., 3., 0., 1., 0., 2., 0., 3., 0.])
        );
        let as_csc = csr.transpose(); // CSC of the transpose
        let back = as_csc.transpose(); // CSR again, sharing buffers
        assert_eq!(back, csr);
    }

    #[test]
    fn csc_row_selection_with_repeats() {
        let csr = example_csr();
        let dense = Matrix::Sparse(csr.clone()).to_dense();
        let csc_of_t = Matrix::Sparse(csr).transpose(); // CSC, shape (3,3), transpose of A
        let picks = [1, 1, 0];
        let got = csc_of_t.select_rows(&picks).unwrap().to_dense();
        let expected = Matrix::Dense(dense)
            .transpose()
            .select_rows(&picks)
            .unwrap()
            .to_dense();
        assert_eq!(got, expected);
    }

    #[test]
    fn square_selection() {
        let m = Matrix::Sparse(example_csr());
        let sub = m.select_square(&[2, 0]).unwrap().to_dense();
        // rows/cols (2,0): [[A22, A20], [A02, A00]] = [[0, 0], [2, 1]]
        assert_eq!(sub.data, NumVec::F32(vec![0., 0., 2., 1.]));
    }
}
