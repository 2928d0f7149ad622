//! Products of a CSR `f32` matrix with dense blocks, centred implicitly:
//! `(X − 1μᵀ)·B = X·B − 1(μᵀB)` and `(X − 1μᵀ)ᵀ·Q = XᵀQ − μ(1ᵀQ)`, so the
//! centred matrix (dense by construction) is never formed. What the
//! randomized PCA and the projection of sparse cells need.
//!
//! Thread-count independence: `X·B` splits its output by row blocks (each
//! row summed in storage order); `XᵀQ` and `XᵀX` are sums over cells, so
//! the cells are cut into a fixed number of groups that depends only on the
//! number of cells, each summed in order in f64, then the groups in order.

use ndarray::parallel::prelude::*;
use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::{Result, invalid};
use crate::{NumVec, SparseFormat, SparseMatrix};

/// Rows per parallel block of `X·B`.
const ROW_BLOCK: usize = 256;
/// Cells per group of the sums over cells: at most 16 groups, so the f64
/// partials stay small whatever the number of cells.
const GROUP_ROWS: usize = 1024;

/// A borrowed CSR matrix with `f32` values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Csr<'a> {
    pub rows: usize,
    pub cols: usize,
    pub indptr: &'a [u64],
    pub indices: &'a [u32],
    pub data: &'a [f32],
}

impl<'a> Csr<'a> {
    /// A view of `x`, which must be CSR with `f32` values.
    pub fn new(x: &'a SparseMatrix) -> Result<Self> {
        let NumVec::F32(data) = &x.data else {
            return Err(invalid(
                "sparse matrix",
                "internal: expected f32 values (convert with to_csr_f32 first)",
            ));
        };
        if x.format != SparseFormat::Csr {
            return Err(invalid(
                "sparse matrix",
                "internal: expected CSR (convert with to_csr_f32 first)",
            ));
        }
        Ok(Csr {
            rows: x.shape.0,
            cols: x.shape.1,
            indptr: &x.indptr,
            indices: &x.indices,
            data,
        })
    }

    fn row(&self, r: usize) -> (&'a [u32], &'a [f32]) {
        let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// Per-column sums in f64, rows in order (the same bits as summing the
    /// densified matrix row by row: the skipped zeros add nothing).
    pub fn column_sums(&self) -> Vec<f64> {
        let mut sums = vec![0.0f64; self.cols];
        for r in 0..self.rows {
            let (idx, val) = self.row(r);
            for (&j, &v) in idx.iter().zip(val) {
                sums[j as usize] += f64::from(v);
            }
        }
        sums
    }

    /// Sum of squares of the stored values, in f64.
    pub fn sum_of_squares(&self) -> f64 {
        self.data.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
    }

    /// The groups of consecutive rows a sum over cells is split into.
    fn groups(&self) -> Vec<(usize, usize)> {
        let groups = self.rows.div_ceil(GROUP_ROWS).clamp(1, 16);
        let per = self.rows.div_ceil(groups).max(1);
        (0..self.rows)
            .step_by(per)
            .map(|a| (a, (a + per).min(self.rows)))
            .collect()
    }

    /// `(X − 1μᵀ)·B` for `B` of `cols × l`, in f32 (rows summed in f32 in
    /// storage order, as a dense row-times-matrix product would).
    pub fn centred_dot(&self, mean: &[f32], b: ArrayView2<'_, f32>) -> Array2<f32> {
        let l = b.ncols();
        let shift = mean_times(mean, b);
        let mut out = Array2::<f32>::zeros((self.rows, l));
        out.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(block, mut chunk)| {
                for (i, mut row) in chunk.outer_iter_mut().enumerate() {
                    let (idx, val) = self.row(block * ROW_BLOCK + i);
                    let out = row.as_slice_mut().unwrap_or(&mut []);
                    for (&j, &v) in idx.iter().zip(val) {
                        let src = b.row(j as usize);
                        for (o, &s) in out.iter_mut().zip(src.iter()) {
                            *o += v * s;
                        }
                    }
                    for (o, &s) in out.iter_mut().zip(&shift) {
                        *o -= s;
                    }
                }
            });
        out
    }

    /// `(X − 1μᵀ)ᵀ·Q` for `Q` of `rows × l`, summed in f64, returned in f32.
    pub fn centred_t_dot(&self, mean: &[f32], q: ArrayView2<'_, f32>) -> Array2<f32> {
        let l = q.ncols();
        let partials: Vec<(Array2<f64>, Vec<f64>)> = self
            .groups()
            .into_par_iter()
            .map(|(a, b)| {
                let mut acc = Array2::<f64>::zeros((self.cols, l));
                let mut col_sum = vec![0.0f64; l];
                let flat = acc.as_slice_mut().unwrap_or(&mut []);
                for r in a..b {
                    let qr = q.row(r);
                    for (c, &v) in col_sum.iter_mut().zip(qr.iter()) {
                        *c += f64::from(v);
                    }
                    let (idx, val) = self.row(r);
                    for (&j, &v) in idx.iter().zip(val) {
                        let v = f64::from(v);
                        let dst = &mut flat[j as usize * l..(j as usize + 1) * l];
                        for (d, &s) in dst.iter_mut().zip(qr.iter()) {
                            *d += v * f64::from(s);
                        }
                    }
                }
                (acc, col_sum)
            })
            .collect();
        let mut total = Array2::<f64>::zeros((self.cols, l));
        let mut col_sum = vec![0.0f64; l];
        for (p, c) in partials {
            total += &p;
            for (t, v) in col_sum.iter_mut().zip(c) {
                *t += v;
            }
        }
        let mut out = Array2::<f32>::zeros((self.cols, l));
        for ((j, c), o) in out.indexed_iter_mut() {
            *o = (total[(j, c)] - f64::from(mean[j]) * col_sum[c]) as f32;
        }
        out
    }

    /// The centred Gram matrix `(X − 1μᵀ)ᵀ(X − 1μᵀ)` in f64
    /// (`XᵀX − s μᵀ − μ sᵀ + n μμᵀ`, `s` the column sums), for the exact
    /// solver on few genes.
    pub fn centred_gram(&self, mean: &[f32]) -> Array2<f64> {
        let g = self.cols;
        let partials: Vec<Array2<f64>> = self
            .groups()
            .into_par_iter()
            .map(|(a, b)| {
                let mut acc = Array2::<f64>::zeros((g, g));
                for r in a..b {
                    let (idx, val) = self.row(r);
                    for (&i, &vi) in idx.iter().zip(val) {
                        let vi = f64::from(vi);
                        let mut dst = acc.row_mut(i as usize);
                        for (&j, &vj) in idx.iter().zip(val) {
                            dst[j as usize] += vi * f64::from(vj);
                        }
                    }
                }
                acc
            })
            .collect();
        let mut gram = Array2::<f64>::zeros((g, g));
        for p in partials {
            gram += &p;
        }
        let sums = self.column_sums();
        let n = self.rows as f64;
        for ((i, j), v) in gram.indexed_iter_mut() {
            let (mi, mj) = (f64::from(mean[i]), f64::from(mean[j]));
            *v += -sums[i] * mj - mi * sums[j] + n * mi * mj;
        }
        gram
    }

    /// The centred matrix as a dense array: only for the exact solver when
    /// there are at most a few hundred cells.
    pub fn centred_dense(&self, mean: &[f32]) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros((self.rows, self.cols));
        for r in 0..self.rows {
            let (idx, val) = self.row(r);
            for (&j, &v) in idx.iter().zip(val) {
                out[(r, j as usize)] = v;
            }
        }
        out -= &Array1::from(mean.to_vec());
        out
    }
}

/// `μᵀB` (length `l`), summed in f64 over genes in order.
fn mean_times(mean: &[f32], b: ArrayView2<'_, f32>) -> Vec<f32> {
    let mut acc = vec![0.0f64; b.ncols()];
    for (&m, row) in mean.iter().zip(b.rows()) {
        for (a, &v) in acc.iter_mut().zip(row.iter()) {
            *a += f64::from(m) * f64::from(v);
        }
    }
    acc.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (SparseMatrix, Array2<f32>) {
        let (rows, cols) = (2100, 7);
        let mut dense = Array2::<f32>::zeros((rows, cols));
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for r in 0..rows {
            for c in 0..cols {
                if (r * 7 + c * 3) % 5 == 0 {
                    let v = ((r + 2 * c) % 9) as f32 + 0.5;
                    dense[(r, c)] = v;
                    indices.push(c as u32);
                    data.push(v);
                }
            }
            indptr.push(indices.len() as u64);
        }
        let sp = SparseMatrix::new(
            SparseFormat::Csr,
            (rows, cols),
            indptr,
            indices,
            NumVec::F32(data),
        )
        .unwrap();
        (sp, dense)
    }

    #[test]
    fn implicit_centring_matches_the_centred_dense_products() {
        let (sp, dense) = fixture();
        let x = Csr::new(&sp).unwrap();
        let mean: Vec<f32> = x
            .column_sums()
            .iter()
            .map(|s| (s / x.rows as f64) as f32)
            .collect();
        let centred = &dense - &Array1::from(mean.clone());
        assert_eq!(x.centred_dense(&mean), centred);
        let b = Array2::from_shape_fn((7, 3), |(i, j)| (i as f32 - 2.0 * j as f32) * 0.25);
        let q = Array2::from_shape_fn((2100, 3), |(i, j)| ((i * 3 + j) % 11) as f32 - 5.0);
        let close = |a: &Array2<f32>, b: &Array2<f32>, tol: f32| {
            assert_eq!(a.dim(), b.dim());
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= tol * y.abs().max(1.0), "{x} vs {y}");
            }
        };
        close(&x.centred_dot(&mean, b.view()), &centred.dot(&b), 1e-5);
        close(
            &x.centred_t_dot(&mean, q.view()),
            &centred.t().dot(&q),
            1e-4,
        );
        let gram = x.centred_gram(&mean);
        let c64 = centred.mapv(f64::from);
        let want = c64.t().dot(&c64);
        for (a, b) in gram.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn sums_over_cells_use_a_fixed_grouping() {
        let (sp, _) = fixture();
        let x = Csr::new(&sp).unwrap();
        assert_eq!(x.groups(), vec![(0, 700), (700, 1400), (1400, 2100)]);
    }
}
