//! Between `ndarray` matrices (the crate's interface) and candle tensors.

use candle_core::{Device, Tensor};
use conceptlab_core::random::{Rng, standard_normal};
use ndarray::{Array2, ArrayView2, Axis};

use crate::ModelError;

/// A 2-D view as a tensor on `device` (copied once; non-standard layouts
/// are made contiguous first).
pub(crate) fn to_tensor(x: ArrayView2<f32>, device: &Device) -> Result<Tensor, ModelError> {
    let shape = x.dim();
    let tensor = match x.as_slice() {
        Some(s) => Tensor::from_slice(s, shape, device)?,
        None => {
            let owned = x.as_standard_layout().to_owned();
            Tensor::from_slice(owned.as_slice().unwrap_or(&[]), shape, device)?
        }
    };
    Ok(tensor)
}

/// The rows `rows` of `a` as a tensor on `device` (a training batch).
pub(crate) fn rows_tensor(
    a: &Array2<f32>,
    rows: &[usize],
    device: &Device,
) -> Result<Tensor, ModelError> {
    to_tensor(a.select(Axis(0), rows).view(), device)
}

/// `rows × cols` standard normal draws from `rng`, row-major in draw order
/// (reparametrisation noise, flow sources).
pub(crate) fn normal_tensor(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| standard_normal(rng) as f32)
        .collect();
    Ok(Tensor::from_vec(v, (rows, cols), device)?)
}

/// Rows per forward pass at inference: bounds memory on large data sets.
pub(crate) const INFERENCE_CHUNK: usize = 4096;

/// An `n_rows × n_cols` array filled chunk by chunk of at most
/// [`INFERENCE_CHUNK`] rows: `f(rows)` computes the rows `rows` (a
/// network pass at inference), so memory does not grow with the cells.
pub(crate) fn by_chunks(
    n_rows: usize,
    n_cols: usize,
    mut f: impl FnMut(std::ops::Range<usize>) -> Result<Tensor, ModelError>,
) -> Result<Array2<f32>, ModelError> {
    let mut out = Array2::zeros((n_rows, n_cols));
    for start in (0..n_rows).step_by(INFERENCE_CHUNK) {
        let end = (start + INFERENCE_CHUNK).min(n_rows);
        let chunk = to_array(&f(start..end)?)?;
        out.slice_mut(ndarray::s![start..end, ..]).assign(&chunk);
    }
    Ok(out)
}

/// A 2-D tensor as a row-major array.
pub(crate) fn to_array(t: &Tensor) -> Result<Array2<f32>, ModelError> {
    let (r, c) = t.dims2()?;
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    Array2::from_shape_vec((r, c), v).map_err(|e| ModelError::Input(e.to_string()))
}

#[cfg(test)]
pub(crate) mod golden {
    //! Comparing tensors with values stored by the PyTorch reference scripts.

    use candle_core::Tensor;
    use serde_json::Value;

    /// Every number of a nested JSON array, in order.
    pub fn flat(v: &Value) -> Vec<f64> {
        match v {
            Value::Array(a) => a.iter().flat_map(flat).collect(),
            Value::Number(n) => vec![n.as_f64().unwrap()],
            other => panic!("not numeric: {other}"),
        }
    }

    /// Element-wise agreement within `tol` relative to the largest expected
    /// magnitude (at least 1).
    pub fn assert_close(what: &str, got: &Tensor, want: &Value, tol: f64) {
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = flat(want);
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= tol * scale,
                "{what}[{i}]: got {g}, want {w}"
            );
        }
    }
}
