use indexmap::IndexMap;

use super::frame::Frame;
use super::matrix::Matrix;
use super::uns::UnsValue;
use crate::CoreError;

/// The frozen copy of the full gene space that anndata keeps in `.raw`
/// (typically log-normalised counts before gene selection).
#[derive(Debug, Clone, PartialEq)]
pub struct RawData {
    pub x: Matrix,
    pub var: Frame,
    pub varm: IndexMap<String, Matrix>,
}

/// An annotated cells-by-genes data set: the in-memory equivalent of an
/// `AnnData` object and the currency of the whole workspace.
///
/// Invariants (checked by [`CellData::validate`]): `x` is `n_obs x n_vars`;
/// `obs` has `n_obs` rows and `var` has `n_vars`; every layer has the shape of
/// `x`; `obsm`/`varm` entries have `n_obs`/`n_vars` rows; `obsp`/`varp` are
/// square over their axis; `raw.x` has `n_obs` rows and `raw.var` one row per
/// raw column.
#[derive(Debug, Clone, PartialEq)]
pub struct CellData {
    pub x: Matrix,
    pub obs: Frame,
    pub var: Frame,
    pub layers: IndexMap<String, Matrix>,
    pub obsm: IndexMap<String, Matrix>,
    pub varm: IndexMap<String, Matrix>,
    pub obsp: IndexMap<String, Matrix>,
    pub varp: IndexMap<String, Matrix>,
    pub uns: IndexMap<String, UnsValue>,
    pub raw: Option<Box<RawData>>,
}

impl CellData {
    /// A data set with the given matrix and names, and no annotations.
    pub fn new(
        x: Matrix,
        obs_names: Vec<String>,
        var_names: Vec<String>,
    ) -> Result<Self, CoreError> {
        let data = Self {
            x,
            obs: Frame::with_index(obs_names),
            var: Frame::with_index(var_names),
            layers: IndexMap::new(),
            obsm: IndexMap::new(),
            varm: IndexMap::new(),
            obsp: IndexMap::new(),
            varp: IndexMap::new(),
            uns: IndexMap::new(),
            raw: None,
        };
        data.validate()?;
        Ok(data)
    }

    pub fn n_obs(&self) -> usize {
        self.obs.len()
    }

    pub fn n_vars(&self) -> usize {
        self.var.len()
    }

    pub fn obs_names(&self) -> &[String] {
        &self.obs.index
    }

    pub fn var_names(&self) -> &[String] {
        &self.var.index
    }

    /// Checks the shape invariants listed on the type.
    pub fn validate(&self) -> Result<(), CoreError> {
        let (n_obs, n_vars) = (self.n_obs(), self.n_vars());
        let mismatch = |what: String, expected: String, found: String| {
            Err(CoreError::ShapeMismatch {
                what,
                expected,
                found,
            })
        };
        if self.x.shape() != (n_obs, n_vars) {
            return mismatch(
                "X shape against obs x var".into(),
                format!("{n_obs} x {n_vars}"),
                format!("{} x {}", self.x.shape().0, self.x.shape().1),
            );
        }
        self.obs.validate("obs")?;
        self.var.validate("var")?;
        for (key, m) in &self.layers {
            if m.shape() != (n_obs, n_vars) {
                return mismatch(
                    format!("shape of layers/{key}"),
                    format!("{n_obs} x {n_vars}"),
                    format!("{} x {}", m.shape().0, m.shape().1),
                );
            }
        }
        let axes = [
            ("obsm", &self.obsm, n_obs, false),
            ("varm", &self.varm, n_vars, false),
            ("obsp", &self.obsp, n_obs, true),
            ("varp", &self.varp, n_vars, true),
        ];
        for (group, map, n, square) in axes {
            for (key, m) in map {
                let (r, c) = m.shape();
                if r != n || (square && c != n) {
                    let expected = if square {
                        format!("{n} x {n}")
                    } else {
                        format!("{n} rows")
                    };
                    return mismatch(
                        format!("shape of {group}/{key}"),
                        expected,
                        format!("{r} x {c}"),
                    );
                }
            }
        }
        if let Some(raw) = &self.raw {
            let (r, c) = raw.x.shape();
            if r != n_obs || c != raw.var.len() {
                return mismatch(
                    "shape of raw/X against obs x raw/var".into(),
                    format!("{n_obs} x {}", raw.var.len()),
                    format!("{r} x {c}"),
                );
            }
            raw.var.validate("raw/var")?;
        }
        Ok(())
    }

    /// The cells `indices`, in that order, with every obs-aligned element
    /// subset accordingly (`X`, layers, obs, obsm, obsp, raw/X).
    pub fn select_obs(&self, indices: &[usize]) -> Result<Self, CoreError> {
        let rows = |map: &IndexMap<String, Matrix>| -> Result<IndexMap<String, Matrix>, CoreError> {
            map.iter()
                .map(|(k, m)| Ok((k.clone(), m.select_rows(indices)?)))
                .collect()
        };
        let obsp = self
            .obsp
            .iter()
            .map(|(k, m)| Ok((k.clone(), m.select_square(indices)?)))
            .collect::<Result<_, CoreError>>()?;
        let raw = match &self.raw {
            Some(raw) => Some(Box::new(RawData {
                x: raw.x.select_rows(indices)?,
                var: raw.var.clone(),
                varm: raw.varm.clone(),
            })),
            None => None,
        };
        Ok(Self {
            x: self.x.select_rows(indices)?,
            obs: self.obs.select(indices)?,
            var: self.var.clone(),
            layers: rows(&self.layers)?,
            obsm: rows(&self.obsm)?,
            varm: self.varm.clone(),
            obsp,
            varp: self.varp.clone(),
            uns: self.uns.clone(),
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Categorical, Column, DenseArray, NumVec};

    fn small() -> CellData {
        let x = Matrix::Dense(
            DenseArray::new(vec![3, 2], NumVec::F32(vec![1., 2., 3., 4., 5., 6.])).unwrap(),
        );
        let mut d = CellData::new(
            x,
            vec!["c0".into(), "c1".into(), "c2".into()],
            vec!["g0".into(), "g1".into()],
        )
        .unwrap();
        d.obs
            .insert(
                "cell_type",
                Column::Categorical(Categorical::from_labels(&["B", "T", "B"])),
            )
            .unwrap();
        d
    }

    #[test]
    fn validate_catches_layer_shape() {
        let mut d = small();
        d.layers.insert(
            "counts".into(),
            Matrix::Dense(DenseArray::new(vec![2, 2], NumVec::F32(vec![0.; 4])).unwrap()),
        );
        let err = d.validate().unwrap_err().to_string();
        assert!(err.contains("layers/counts"), "{err}");
    }

    #[test]
    fn select_obs_subsets_everything_aligned() {
        let d = small();
        let s = d.select_obs(&[2, 0]).unwrap();
        assert_eq!(s.obs_names(), &["c2".to_string(), "c0".to_string()]);
        assert_eq!(
            s.x,
            Matrix::Dense(DenseArray::new(vec![2, 2], NumVec::F32(vec![5., 6., 1., 2.])).unwrap())
        );
        s.validate().unwrap();
    }
}
