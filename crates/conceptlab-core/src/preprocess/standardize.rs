//! Per-feature z-scoring, as scikit-learn's `StandardScaler` (population
//! standard deviation; a constant feature is scaled by 1, not divided by 0).

use ndarray::{Array1, Array2, ArrayBase, Data, Ix2, Zip};
use serde::{Deserialize, Serialize};

use super::{Result, invalid};

/// A fitted z-score transform `(x − mean) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Array1<f64>,
    /// Population standard deviation, 1 for (numerically) constant features.
    pub scale: Array1<f64>,
}

impl Standardizer {
    /// Fits on `x` (cells × features); at least one row, all values finite.
    pub fn fit<S: Data<Elem = f32>>(x: &ArrayBase<S, Ix2>) -> Result<Self> {
        let (n, g) = x.dim();
        if n == 0 {
            return Err(invalid("Standardizer", "cannot fit on zero rows"));
        }
        if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(crate::CoreError::NonFinite {
                what: "Standardizer input".into(),
                row: r,
                col: c,
                value: f64::from(*v),
            });
        }
        let nf = n as f64;
        let mut mean = Array1::<f64>::zeros(g);
        for row in x.rows() {
            Zip::from(&mut mean)
                .and(&row)
                .for_each(|m, &v| *m += f64::from(v));
        }
        mean /= nf;
        let mut var = Array1::<f64>::zeros(g);
        for row in x.rows() {
            Zip::from(&mut var)
                .and(&row)
                .and(&mean)
                .for_each(|s, &v, &m| {
                    let d = f64::from(v) - m;
                    *s += d * d;
                });
        }
        var /= nf;
        // scikit-learn's test for a constant feature: a variance within the
        // rounding error of accumulating n values of this mean.
        let eps = f64::EPSILON;
        let scale = Zip::from(&var).and(&mean).map_collect(|&v, &m| {
            let bound = nf * eps * v + (nf * m * eps).powi(2);
            if v <= bound { 1.0 } else { v.sqrt() }
        });
        Ok(Standardizer { mean, scale })
    }

    fn check<S: Data<Elem = f32>>(&self, x: &ArrayBase<S, Ix2>, what: &str) -> Result<()> {
        if x.ncols() == self.mean.len() {
            Ok(())
        } else {
            Err(invalid(
                what,
                format!(
                    "input has {} features, the standardizer was fitted on {}",
                    x.ncols(),
                    self.mean.len()
                ),
            ))
        }
    }

    /// `(x − mean) / scale`.
    pub fn transform<S: Data<Elem = f32>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f32>> {
        self.check(x, "Standardizer transform")?;
        let mut out = x.to_owned();
        for mut row in out.rows_mut() {
            Zip::from(&mut row)
                .and(&self.mean)
                .and(&self.scale)
                .for_each(|v, &m, &s| *v = ((f64::from(*v) - m) / s) as f32);
        }
        Ok(out)
    }

    /// `z · scale + mean`.
    pub fn inverse_transform<S: Data<Elem = f32>>(
        &self,
        z: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f32>> {
        self.check(z, "Standardizer inverse_transform")?;
        let mut out = z.to_owned();
        for mut row in out.rows_mut() {
            Zip::from(&mut row)
                .and(&self.mean)
                .and(&self.scale)
                .for_each(|v, &m, &s| *v = (f64::from(*v) * s + m) as f32);
        }
        Ok(out)
    }
}
