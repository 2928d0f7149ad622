//! Between `ndarray` matrices (the crate's interface) and candle tensors.

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayView2};

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
