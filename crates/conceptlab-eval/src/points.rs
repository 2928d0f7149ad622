use crate::EvalError;

/// A read-only set of cells: `rows` points of `cols` coordinates, row-major.
/// Construction checks the shape and that every value is finite, so metrics
/// never have to return NaN for bad input.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
}

impl<'a> Points<'a> {
    /// Wraps `data` (row-major, `cols` columns); `what` names the input in errors.
    pub fn new(what: &str, data: &'a [f64], cols: usize) -> Result<Self, EvalError> {
        if cols == 0 || !data.len().is_multiple_of(cols) {
            return Err(EvalError::Shape {
                what: what.to_owned(),
                found: data.len(),
                cols,
            });
        }
        if let Some(pos) = data.iter().position(|x| !x.is_finite()) {
            return Err(EvalError::NonFinite {
                what: what.to_owned(),
                row: pos / cols,
                col: pos % cols,
            });
        }
        Ok(Self {
            data,
            rows: data.len() / cols,
            cols,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &'a [f64] {
        self.data
    }

    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Per-coordinate means.
    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.cols];
        for i in 0..self.rows {
            for (acc, x) in m.iter_mut().zip(self.row(i)) {
                *acc += x;
            }
        }
        let n = self.rows.max(1) as f64;
        m.iter_mut().for_each(|x| *x /= n);
        m
    }

    /// Unbiased covariance (`n - 1` denominator), row-major `cols x cols`.
    pub fn covariance(&self) -> Vec<f64> {
        let d = self.cols;
        let mu = self.mean();
        let mut cov = vec![0.0; d * d];
        for i in 0..self.rows {
            let centred: Vec<f64> = self.row(i).iter().zip(&mu).map(|(x, m)| x - m).collect();
            for a in 0..d {
                for b in a..d {
                    cov[a * d + b] += centred[a] * centred[b];
                }
            }
        }
        let denom = (self.rows.saturating_sub(1)).max(1) as f64;
        for a in 0..d {
            for b in a..d {
                cov[a * d + b] /= denom;
                cov[b * d + a] = cov[a * d + b];
            }
        }
        cov
    }

    /// The rows at `indices`, copied.
    pub fn select(&self, indices: &[usize]) -> Vec<f64> {
        indices
            .iter()
            .flat_map(|&i| self.row(i).iter().copied())
            .collect()
    }
}

pub(crate) fn same_dims(
    a: &Points,
    a_name: &str,
    b: &Points,
    b_name: &str,
) -> Result<(), EvalError> {
    if a.cols() != b.cols() {
        return Err(EvalError::DimensionMismatch {
            left: a_name.to_owned(),
            left_dim: a.cols(),
            right: b_name.to_owned(),
            right_dim: b.cols(),
        });
    }
    Ok(())
}

pub(crate) fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}
