//! An open `.h5ad` file: whole-file reads, metadata summaries and backed
//! reads of row subsets.

use std::collections::BTreeMap;
use std::path::Path;

use conceptlab_core::{
    CellData, Column, Frame, Matrix, NumVec, RawData, SparseFormat, SparseMatrix,
};
use indexmap::IndexMap;

use crate::error::{IoError, Result};
use crate::h5::{H5File, NodeKind};
use crate::legacy;
use crate::read::{MatrixInfo, join, numeric_window};

const X_EXPECTED: &str =
    "the expression matrix `X` (a dense array or a csr_matrix/csc_matrix group)";

/// Largest number of stored values read at once when streaming a CSC matrix.
const CSC_BLOCK_VALUES: u64 = 1 << 22;

/// An `.h5ad` file opened for reading. Opening reads only metadata, so large
/// files can be inspected or read a few rows at a time.
pub struct H5ad {
    h5: H5File,
    legacy: bool,
}

/// Reads a whole `.h5ad` file into memory.
pub fn read_h5ad(path: impl AsRef<Path>) -> Result<CellData> {
    H5ad::open(path)?.read()
}

impl H5ad {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let h5 = H5File::open(path.as_ref())?;
        let legacy = legacy::is_legacy(&h5)?;
        Ok(Self { h5, legacy })
    }

    /// The file path as given to [`H5ad::open`].
    pub fn path(&self) -> &str {
        &self.h5.path
    }

    /// Whether the file uses the pre-0.7 anndata layout.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    fn raw_key(&self, element: &str) -> String {
        if self.legacy {
            format!("raw.{element}")
        } else {
            format!("raw/{element}")
        }
    }

    /// Shape, type and storage of `X`.
    pub fn x_info(&self) -> Result<MatrixInfo> {
        self.h5.require("X", X_EXPECTED)?;
        self.h5.matrix_info("X")
    }

    /// Shape, type and storage of `X` (`"X"`) or a layer (`"layers/<name>"`).
    pub fn matrix_info(&self, element: &str) -> Result<MatrixInfo> {
        self.h5.matrix_info(element)
    }

    /// `(n_obs, n_vars)`.
    pub fn shape(&self) -> Result<(usize, usize)> {
        Ok(self.x_info()?.shape)
    }

    pub fn read_obs(&self) -> Result<Frame> {
        Ok(self.read_frame_consuming("obs")?.0)
    }

    pub fn read_var(&self) -> Result<Frame> {
        Ok(self.read_frame_consuming("var")?.0)
    }

    fn read_frame_consuming(&self, key: &str) -> Result<(Frame, Vec<String>)> {
        if self.legacy {
            legacy::read_frame(&self.h5, key)
        } else {
            Ok((self.h5.read_frame(key)?, Vec::new()))
        }
    }

    fn read_axis_matrices(&self, key: &str) -> Result<IndexMap<String, Matrix>> {
        if self.legacy {
            legacy::read_matrix_record(&self.h5, key)
        } else {
            self.h5.read_matrix_map(key)
        }
    }

    /// Reads everything into memory.
    pub fn read(&self) -> Result<CellData> {
        let h5 = &self.h5;
        h5.require("X", X_EXPECTED)?;
        let x = h5.read_matrix("X")?;
        let (obs, consumed_obs) = self.read_frame_consuming("obs")?;
        let (var, consumed_var) = self.read_frame_consuming("var")?;
        let mut uns = h5.read_uns_map("uns")?;
        let mut obsp = IndexMap::new();
        if self.legacy {
            for key in consumed_obs.iter().chain(&consumed_var) {
                uns.shift_remove(key);
            }
            obsp = legacy::move_neighbor_graphs(&mut uns);
        }
        obsp.extend(h5.read_matrix_map("obsp")?);
        let raw = self.read_raw()?;
        let data = CellData {
            x,
            obs,
            var,
            layers: h5.read_matrix_map("layers")?,
            obsm: self.read_axis_matrices("obsm")?,
            varm: self.read_axis_matrices("varm")?,
            obsp,
            varp: h5.read_matrix_map("varp")?,
            uns,
            raw,
        };
        data.validate().map_err(|source| IoError::Data {
            path: h5.path.clone(),
            source,
        })?;
        Ok(data)
    }

    fn read_raw(&self) -> Result<Option<Box<RawData>>> {
        let x_key = self.raw_key("X");
        if self.h5.kind(&x_key)?.is_none() {
            return Ok(None);
        }
        let x = self.h5.read_matrix(&x_key)?;
        let var_key = self.raw_key("var");
        let var = match self.h5.kind(&var_key)? {
            Some(_) => self.read_frame_consuming(&var_key)?.0,
            None => return Err(self.h5.missing(&var_key, "the gene table of `raw`")),
        };
        let varm = self.read_axis_matrices(&self.raw_key("varm"))?;
        Ok(Some(Box::new(RawData { x, var, varm })))
    }

    /// Rows `rows` (in that order, repeats allowed) of `X` (`element = "X"`)
    /// or of a layer (`"layers/<name>"`), reading only the storage those rows
    /// occupy. Dense and CSR matrices read each run of consecutive rows with
    /// one windowed read; CSC matrices are streamed in column blocks.
    pub fn read_rows(&self, element: &str, rows: &[usize]) -> Result<Matrix> {
        let info = self.h5.matrix_info(element)?;
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
        let n = self.h5.matrix_info(element)?.shape.0;
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
        let indptr_all = self.h5.read_index_array(&join(key, "indptr"), None)?;
        if indptr_all.len() != info.shape.0 + 1 {
            return Err(self
                .h5
                .invalid(key, "indptr length does not match the number of rows"));
        }
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
        let indptr_all = self.h5.read_index_array(&join(key, "indptr"), None)?;
        if indptr_all.len() != info.shape.1 + 1 {
            return Err(self
                .h5
                .invalid(key, "indptr length does not match the number of columns"));
        }
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

    /// A description of the file's contents, reading `X` and the layers'
    /// metadata only.
    pub fn summary(&self) -> Result<Summary> {
        let x = self.x_info()?;
        let (obs, consumed_obs) = self.read_frame_consuming("obs")?;
        let (var, consumed_var) = self.read_frame_consuming("var")?;
        let mut uns = self.h5.read_uns_map("uns")?;
        for key in consumed_obs.iter().chain(&consumed_var) {
            uns.shift_remove(key);
        }
        let mut obsp = Vec::new();
        if self.legacy {
            obsp.extend(
                legacy::move_neighbor_graphs(&mut uns)
                    .iter()
                    .map(|(k, m)| (k.clone(), info_of(m))),
            );
        }
        obsp.extend(self.member_infos("obsp")?);
        let raw = match self.h5.kind(&self.raw_key("X"))? {
            Some(_) => Some(self.h5.matrix_info(&self.raw_key("X"))?),
            None => None,
        };
        Ok(Summary {
            path: self.h5.path.clone(),
            legacy_layout: self.legacy,
            n_obs: obs.len(),
            n_vars: var.len(),
            x,
            layers: self.member_infos("layers")?,
            obs: describe_columns(&obs),
            var: describe_columns(&var),
            obsm: self.axis_infos("obsm")?,
            varm: self.axis_infos("varm")?,
            obsp,
            varp: self.member_infos("varp")?,
            uns: uns.iter().map(|(k, v)| (k.clone(), v.describe())).collect(),
            raw,
        })
    }

    fn member_infos(&self, key: &str) -> Result<Vec<(String, MatrixInfo)>> {
        if self.h5.kind(key)? != Some(NodeKind::Group) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (name, _) in self.h5.members(key)? {
            match self.h5.matrix_info(&join(key, &name)) {
                Ok(info) => out.push((name, info)),
                Err(IoError::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn axis_infos(&self, key: &str) -> Result<Vec<(String, MatrixInfo)>> {
        if self.legacy && self.h5.kind(key)? == Some(NodeKind::Dataset) {
            let matrices = legacy::read_matrix_record(&self.h5, key)?;
            return Ok(matrices
                .iter()
                .map(|(k, m)| (k.clone(), info_of(m)))
                .collect());
        }
        self.member_infos(key)
    }
}

fn info_of(m: &Matrix) -> MatrixInfo {
    MatrixInfo {
        shape: m.shape(),
        dtype: m.dtype(),
        encoding: m.encoding(),
        stored: m.values().len(),
    }
}

/// Sorted unique indices grouped into `(start, count)` runs of consecutive values.
fn consecutive_runs(sorted: &[usize]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &r in sorted {
        match runs.last_mut() {
            Some((start, count)) if *start + *count == r => *count += 1,
            _ => runs.push((r, 1)),
        }
    }
    runs
}

/// What `inspect` shows about one obs/var column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    pub name: String,
    /// `float32`, `categorical[10]`, `nullable string`, ...
    pub kind: String,
    /// For categoricals: each category with the number of rows carrying it.
    pub categories: Option<Vec<(String, usize)>>,
    /// Missing values (categorical code -1, masked nullable entries, NaN).
    pub missing: usize,
}

fn describe_columns(frame: &Frame) -> Vec<ColumnSummary> {
    frame
        .columns
        .iter()
        .map(|(name, col)| {
            let (categories, missing) = match col {
                Column::Categorical(c) => {
                    let labels: Vec<String> = (0..c.categories.len())
                        .map(|i| c.categories.label(i).unwrap_or_default())
                        .collect();
                    let missing = c.codes.iter().filter(|&&x| x < 0).count();
                    (Some(labels.into_iter().zip(c.counts()).collect()), missing)
                }
                Column::Nullable { mask, .. } => (None, mask.iter().filter(|&&m| m).count()),
                Column::Numeric(v) => (None, v.to_f64().iter().filter(|x| x.is_nan()).count()),
                Column::Strings(_) => (None, 0),
            };
            ColumnSummary {
                name: name.clone(),
                kind: col.describe(),
                categories,
                missing,
            }
        })
        .collect()
}

/// A description of an `.h5ad` file, as `conceptlab-cli inspect` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub path: String,
    pub legacy_layout: bool,
    pub n_obs: usize,
    pub n_vars: usize,
    pub x: MatrixInfo,
    pub layers: Vec<(String, MatrixInfo)>,
    pub obs: Vec<ColumnSummary>,
    pub var: Vec<ColumnSummary>,
    pub obsm: Vec<(String, MatrixInfo)>,
    pub varm: Vec<(String, MatrixInfo)>,
    pub obsp: Vec<(String, MatrixInfo)>,
    pub varp: Vec<(String, MatrixInfo)>,
    /// Top-level `uns` keys with a short description of each value.
    pub uns: Vec<(String, String)>,
    /// Storage of `raw.X`, when the file has a `raw`.
    pub raw: Option<MatrixInfo>,
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
