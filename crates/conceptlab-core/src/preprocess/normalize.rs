//! Library-size normalisation and `log1p`, reproducing scanpy 1.11's
//! `normalize_total` / `log1p` in float32.
//!
//! scanpy computes the size factor `s_n / S` in float32 and divides each
//! value by it in float32; doing the same operations in the same precision
//! gives the same bits, not merely close values.

use ndarray::Array2;
use ndarray::parallel::prelude::*;
use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};

use super::{Result, dense::to_csr_f32, dense::to_dense_f32, invalid};
use crate::{Matrix, NumVec, SparseFormat, SparseMatrix};

/// The total every cell is scaled to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TargetSum {
    /// scanpy's `target_sum=None`: the median library size. Dense input
    /// takes the median over cells with a positive total, sparse input over
    /// all cells (empty cells included) — scanpy's two code paths differ.
    Median,
    /// A fixed total (scanpy's `target_sum=S`), e.g. 1214 for Kang.
    Value(f64),
}

/// Median as `np.median` computes it on a float32 array: the mean of the two
/// middle values for an even count, itself rounded to float32.
fn median_f32(mut v: Vec<f32>) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn resolve_target(totals: &[f32], target: TargetSum, positive_only: bool) -> Result<f32> {
    match target {
        TargetSum::Value(s) => {
            if s.is_finite() && s > 0.0 {
                Ok(s as f32)
            } else {
                Err(invalid(
                    "normalize_total",
                    format!("target sum must be a positive finite number, got {s}"),
                ))
            }
        }
        TargetSum::Median => {
            let pool: Vec<f32> = if positive_only {
                totals.iter().copied().filter(|&t| t > 0.0).collect()
            } else {
                totals.to_vec()
            };
            match median_f32(pool) {
                Some(m) if m > 0.0 && m.is_finite() => Ok(m),
                Some(m) => Err(invalid(
                    "normalize_total",
                    format!(
                        "the median library size is {m} (at least half the cells are empty); \
                         pass an explicit target sum"
                    ),
                )),
                None => Err(invalid(
                    "normalize_total",
                    "every cell has zero total counts; the median library size is undefined",
                )),
            }
        }
    }
}

/// Size factors `s_n / S` in float32, with empty cells divided by 1 (so
/// they stay all-zero instead of becoming NaN).
fn size_factors(totals: &[f32], target: f32) -> Vec<f32> {
    totals
        .iter()
        .map(|&t| {
            let f = t / target;
            if f == 0.0 { 1.0 } else { f }
        })
        .collect()
}

/// Row totals accumulated in f64 and rounded to f32, as scanpy's CSR kernel
/// does (numpy's float32 pairwise sum on dense rows agrees to the last bit on
/// counts and to rounding otherwise).
fn row_total(row: &[f32]) -> f32 {
    row.iter().map(|&v| f64::from(v)).sum::<f64>() as f32
}

/// Each cell's size factor `s_n / S` exactly as [`normalize_total`] and
/// [`normalize_total_csr`] divide by it (the row total of every gene in
/// `f32` via `f64` accumulation, over `f32`-converted values, CSC summed in
/// CSR order; empty cells get 1), for a fixed target `S`. Multiplying
/// `expm1` of a normalised, log-transformed row by it inverts the
/// normalisation up to float rounding.
pub fn size_factors_for(x: &Matrix, target: f64) -> Result<Vec<f32>> {
    let s = resolve_target(&[], TargetSum::Value(target), true)?;
    Ok(size_factors(&matrix_totals(x)?, s))
}

/// The library size [`normalize_total_matrix`] scales `x` to under
/// `target`, computed from the row totals alone (no normalised copy is
/// made): the median over cells with a positive total for dense input, over
/// all cells for sparse input, as there.
pub fn library_target(x: &Matrix, target: TargetSum) -> Result<f64> {
    let positive_only = matches!(x, Matrix::Dense(_));
    Ok(f64::from(resolve_target(
        &matrix_totals(x)?,
        target,
        positive_only,
    )?))
}

/// Row totals as the normalisation computes them: `f32` values summed in
/// `f64`, CSC summed in CSR order.
fn matrix_totals(x: &Matrix) -> Result<Vec<f32>> {
    Ok(match x {
        Matrix::Dense(_) => to_dense_f32(x)?
            .rows()
            .into_iter()
            .map(|r| match r.as_slice() {
                Some(v) => row_total(v),
                None => r.iter().map(|&v| f64::from(v)).sum::<f64>() as f32,
            })
            .collect(),
        Matrix::Sparse(sp) => {
            let converted;
            let csr = if sp.format == SparseFormat::Csr {
                sp
            } else {
                converted = to_csr_f32(sp)?;
                &converted
            };
            match &csr.data {
                NumVec::F32(data) => row_totals(&csr.indptr, data),
                other => row_totals(&csr.indptr, &other.to_f32()),
            }
        }
    })
}

fn row_totals(indptr: &[u64], data: &[f32]) -> Vec<f32> {
    indptr
        .windows(2)
        .map(|w| row_total(&data[w[0] as usize..w[1] as usize]))
        .collect()
}

/// Scales every row of a dense matrix to `target` total in place and returns
/// the target used (the median rule of dense input: over cells with a
/// positive total). Cells with zero total stay zero.
pub fn normalize_total(x: &mut Array2<f32>, target: TargetSum) -> Result<f64> {
    let totals: Vec<f32> = x
        .rows()
        .into_iter()
        .map(|r| match r.as_slice() {
            Some(s) => row_total(s),
            None => r.iter().map(|&v| f64::from(v)).sum::<f64>() as f32,
        })
        .collect();
    let s = resolve_target(&totals, target, true)?;
    let factors = size_factors(&totals, s);
    x.outer_iter_mut()
        .into_par_iter()
        .zip(factors.par_iter())
        .for_each(|(mut row, &f)| row.mapv_inplace(|v| v / f));
    Ok(f64::from(s))
}

/// Scales every row of a sparse matrix to `target` total in place (the median
/// rule of sparse input: over all cells) and returns the target used. CSC
/// input is converted to CSR and any element type to `f32` first, as scanpy
/// does; the sparsity pattern is kept.
pub fn normalize_total_csr(x: &mut SparseMatrix, target: TargetSum) -> Result<f64> {
    if x.format != SparseFormat::Csr || x.data.dtype() != crate::DType::F32 {
        *x = to_csr_f32(x)?;
    }
    let NumVec::F32(data) = &mut x.data else {
        return Err(invalid("normalize_total", "internal: CSR data is not f32"));
    };
    let ranges: Vec<(usize, usize)> = x
        .indptr
        .windows(2)
        .map(|w| (w[0] as usize, w[1] as usize))
        .collect();
    let totals: Vec<f32> = ranges
        .iter()
        .map(|&(a, b)| row_total(&data[a..b]))
        .collect();
    let s = resolve_target(&totals, target, false)?;
    let factors = size_factors(&totals, s);
    for (&(a, b), &f) in ranges.iter().zip(&factors) {
        for v in &mut data[a..b] {
            *v /= f;
        }
    }
    Ok(f64::from(s))
}

/// Normalises any [`Matrix`] with the rule of its storage: dense input comes
/// back as a dense `f32` matrix, sparse input as CSR `f32`.
pub fn normalize_total_matrix(x: &Matrix, target: TargetSum) -> Result<(Matrix, f64)> {
    match x {
        Matrix::Dense(_) => {
            let mut d = to_dense_f32(x)?;
            let s = normalize_total(&mut d, target)?;
            let (rows, cols) = d.dim();
            let data = d.into_raw_vec_and_offset().0;
            Ok((
                Matrix::Dense(crate::DenseArray::new(vec![rows, cols], NumVec::F32(data))?),
                s,
            ))
        }
        Matrix::Sparse(sp) => {
            let mut csr = to_csr_f32(sp)?;
            let s = normalize_total_csr(&mut csr, target)?;
            Ok((Matrix::Sparse(csr), s))
        }
    }
}

/// `x ← ln(1 + x)` in place (natural log, scanpy's `log1p` with `base=None`).
pub fn log1p(x: &mut Array2<f32>) {
    match x.as_slice_mut() {
        Some(s) => s
            .par_chunks_mut(1 << 14)
            .for_each(|c| c.iter_mut().for_each(|v| *v = v.ln_1p())),
        None => x.mapv_inplace(f32::ln_1p),
    }
}

/// `log1p` of the stored values of a sparse matrix (`ln(1 + 0) = 0`, so the
/// pattern is unchanged); values are converted to `f32` first.
pub fn log1p_csr(x: &mut SparseMatrix) -> Result<()> {
    if x.data.dtype() != crate::DType::F32 {
        x.data = NumVec::F32(x.data.to_f32());
    }
    if let NumVec::F32(data) = &mut x.data {
        data.par_iter_mut().for_each(|v| *v = v.ln_1p());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_factors_invert_the_normalisation() {
        let counts: Vec<f32> = (0..60).map(|i| ((i * 37) % 11) as f32).collect();
        let mut stored = Array2::from_shape_vec((6, 10), counts).unwrap();
        stored.row_mut(3).fill(0.0);
        let mut logged = stored.clone();
        normalize_total(&mut logged, TargetSum::Value(23.0)).unwrap();
        log1p(&mut logged);
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for row in stored.rows() {
            for (j, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                indices.push(j as u32);
                data.push(v);
            }
            indptr.push(indices.len() as u64);
        }
        let csr = SparseMatrix::new(
            SparseFormat::Csr,
            (6, 10),
            indptr,
            indices,
            NumVec::F32(data),
        )
        .unwrap();
        let dense =
            crate::DenseArray::new(vec![6, 10], NumVec::F32(stored.iter().copied().collect()))
                .unwrap();
        for x in [Matrix::Dense(dense), Matrix::Sparse(csr)] {
            let factors = size_factors_for(&x, 23.0).unwrap();
            assert_eq!(factors[3], 1.0, "an empty cell is divided by 1");
            for (r, &f) in factors.iter().enumerate() {
                for c in 0..10 {
                    let back = f64::from(logged[[r, c]]).exp_m1() * f64::from(f);
                    let want = f64::from(stored[[r, c]]);
                    assert!(
                        (back - want).abs() <= 1e-5 * want.max(1.0),
                        "{r},{c}: {back} vs {want}"
                    );
                }
            }
        }
    }
}
