//! Backed reads: rows of `X` or a layer, reading only the storage those rows
//! occupy.

use std::collections::BTreeMap;

use conceptlab_core::{Matrix, NumVec, SparseFormat, SparseMatrix};

use crate::error::Result;
use crate::file::H5ad;
use crate::read::{MatrixInfo, join, numeric_window};

/// Largest number of stored values read at once when streaming a CSC matrix.
const CSC_BLOCK_VALUES: u64 = 1 << 22;

impl H5ad {
    /// Rows `rows` (in that order, repeats allowed) of `X` (`element = "X"`)
    /// or of a layer (`"layers/<name>"`), reading only the storage those rows
    /// occupy. Dense and CSR matrices read each run of consecutive rows with
    /// one windowed read; CSC matrices are streamed in column blocks.
    pub fn read_rows(&self, element: &str, rows: &[usize]) -> Result<Matrix> {
        let _op = self.h5.budget.scope();
        let info = self.matrix_info(element)?;
        if let Some(&bad) = rows.iter().find(|&&r| r >= info.shape.0) {
            return Err(self.h5.invalid(
                element,
                format!(
                    "row {bad} requested but the matrix has {} rows",
                    info.shape.0
                ),
            ));
        }
        let mut unique: Vec<usize> = rows.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let runs = consecutive_runs(&unique);
        let matrix = match info.encoding {
            "array" => self.dense_rows(element, &info, &runs)?,
            "csr_matrix" => self.csr_rows(element, &info, &runs)?,
            _ => return self.csc_rows(element, &info, rows),
        };
        // `matrix` holds the sorted unique rows; put them in the requested order.
        // Every requested row is in `unique`, so the search always succeeds.
        let position: Vec<usize> = rows
            .iter()
            .map(|r| unique.binary_search(r).unwrap_or_default())
            .collect();
        matrix
            .select_rows(&position)
            .map_err(|e| self.h5.invalid(element, e.to_string()))
    }

    /// Rows `start..start + count` of `X` or a layer (clamped to the matrix).
    pub fn read_row_range(&self, element: &str, start: usize, count: usize) -> Result<Matrix> {
        let n = self.matrix_info(element)?.shape.0;
        let end = start.saturating_add(count).min(n);
        let rows: Vec<usize> = (start.min(end)..end).collect();
        self.read_rows(element, &rows)
    }

    fn dense_rows(&self, key: &str, info: &MatrixInfo, runs: &[(usize, usize)]) -> Result<Matrix> {
        let ds = self.h5.dataset(key)?;
        let shape = self.h5.shape(key, &ds)?;
        let mut data = NumVec::empty(info.dtype);
        let mut total = 0;
        for &(start, count) in runs {
            let part = numeric_window(&self.h5, key, &ds, start as u64, count as u64)?;
            data.extend_from(&part)
                .map_err(|e| self.h5.invalid(key, e.to_string()))?;
            total += count;
        }
        let mut shape = shape;
        if let Some(first) = shape.first_mut() {
            *first = total;
        }
        conceptlab_core::DenseArray::new(shape, data)
            .map(Matrix::Dense)
            .map_err(|e| self.h5.invalid(key, e.to_string()))
    }

    fn csr_rows(&self, key: &str, info: &MatrixInfo, runs: &[(usize, usize)]) -> Result<Matrix> {
        let indptr_all = self.indptr(key, info)?;
        let (data_key, indices_key) = (join(key, "data"), join(key, "indices"));
        let data_ds = self.h5.dataset(&data_key)?;
        let indices_ds = self.h5.dataset(&indices_key)?;
        let mut data = NumVec::empty(info.dtype);
        let mut indices = Vec::new();
        let mut indptr = vec![0u64];
        for &(start, count) in runs {
            let (a, b) = (indptr_all[start], indptr_all[start + count]);
            if b > a {
                let part = numeric_window(&self.h5, &data_key, &data_ds, a, b - a)?;
                data.extend_from(&part)
                    .map_err(|e| self.h5.invalid(key, e.to_string()))?;
                indices.extend(self.h5.read_minor_indices(
                    &indices_key,
                    &indices_ds,
                    Some((a, b - a)),
                )?);
            }
            let base = *indptr.last().unwrap_or(&0);
            indptr.extend(
                indptr_all[start + 1..=start + count]
                    .iter()
                    .map(|&p| base + p - a),
            );
        }
        SparseMatrix::new(
            SparseFormat::Csr,
            (runs.iter().map(|r| r.1).sum(), info.shape.1),
            indptr,
            indices,
            data,
        )
        .map(Matrix::Sparse)
        .map_err(|e| self.h5.invalid(key, e.to_string()))
    }

    fn csc_rows(&self, key: &str, info: &MatrixInfo, rows: &[usize]) -> Result<Matrix> {
        let indptr_all = self.indptr(key, info)?;
        let mut new_positions: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for (new, &old) in rows.iter().enumerate() {
            new_positions.entry(old).or_default().push(new as u32);
        }
        let (data_key, indices_key) = (join(key, "data"), join(key, "indices"));
        let data_ds = self.h5.dataset(&data_key)?;
        let indices_ds = self.h5.dataset(&indices_key)?;
        let mut data = NumVec::empty(info.dtype);
        let mut indices = Vec::new();
        let mut indptr = vec![0u64];
        let n_cols = info.shape.1;
        let mut col = 0;
        while col < n_cols {
            // A block of whole columns holding at most CSC_BLOCK_VALUES values (or one column).
            let start = indptr_all[col];
            let mut end_col = col + 1;
            while end_col < n_cols && indptr_all[end_col + 1] - start <= CSC_BLOCK_VALUES {
                end_col += 1;
            }
            let len = indptr_all[end_col] - start;
            let (block_rows, block_values) = if len > 0 {
                (
                    self.h5
                        .read_minor_indices(&indices_key, &indices_ds, Some((start, len)))?,
                    numeric_window(&self.h5, &data_key, &data_ds, start, len)?,
                )
            } else {
                (Vec::new(), NumVec::empty(info.dtype))
            };
            for c in col..end_col {
                let (a, b) = (
                    (indptr_all[c] - start) as usize,
                    (indptr_all[c + 1] - start) as usize,
                );
                let mut kept: Vec<(u32, usize)> = Vec::new();
                for (k, &row) in block_rows.iter().enumerate().take(b).skip(a) {
                    if let Some(news) = new_positions.get(&(row as usize)) {
                        kept.extend(news.iter().map(|&n| (n, k)));
                    }
                }
                kept.sort_unstable();
                let take: Vec<usize> = kept.iter().map(|&(_, k)| k).collect();
                data.extend_from(
                    &block_values
                        .gather(&take)
                        .map_err(|e| self.h5.invalid(key, e.to_string()))?,
                )
                .map_err(|e| self.h5.invalid(key, e.to_string()))?;
                indices.extend(kept.iter().map(|&(n, _)| n));
                indptr.push(indices.len() as u64);
            }
            col = end_col;
        }
        SparseMatrix::new(
            SparseFormat::Csc,
            (rows.len(), n_cols),
            indptr,
            indices,
            data,
        )
        .map(Matrix::Sparse)
        .map_err(|e| self.h5.invalid(key, e.to_string()))
    }

    /// The whole `indptr` of a sparse matrix, checked before it is used to
    /// address `data`: its length was checked from metadata, and here it must
    /// start at 0, never decrease and end at the number of stored values.
    fn indptr(&self, key: &str, info: &MatrixInfo) -> Result<Vec<u64>> {
        let indptr_key = join(key, "indptr");
        let indptr = self.h5.read_index_array(&indptr_key, None)?;
        let monotone = indptr.windows(2).all(|w| w[0] <= w[1]);
        if indptr.first() != Some(&0) || !monotone || indptr.last() != Some(&(info.stored as u64)) {
            return Err(self.h5.invalid(
                &indptr_key,
                format!(
                    "must rise from 0 to the number of stored values ({}) without decreasing",
                    info.stored
                ),
            ));
        }
        Ok(indptr)
    }
}

/// Sorted unique indices grouped into `(start, count)` runs of consecutive values.
pub(crate) fn consecutive_runs(sorted: &[usize]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &r in sorted {
        match runs.last_mut() {
            Some((start, count)) if *start + *count == r => *count += 1,
            _ => runs.push((r, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::consecutive_runs;

    #[test]
    fn runs_group_consecutive_rows() {
        assert_eq!(
            consecutive_runs(&[0, 1, 2, 5, 7, 8]),
            vec![(0, 3), (5, 1), (7, 2)]
        );
        assert_eq!(consecutive_runs(&[]), vec![]);
    }
}
