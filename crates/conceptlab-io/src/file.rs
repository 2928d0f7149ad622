//! An open `.h5ad` file: whole-file reads and metadata summaries. Backed
//! reads of row subsets are in `backed.rs`.
//!
//! Every read first learns the number of obs and var names (from the indices'
//! metadata) and checks each matrix against them before reading it, and is
//! charged against one memory budget (see `budget.rs`).

use std::path::Path;

use conceptlab_core::{
    CellData, Column, Frame, Matrix, NumVec, RawData, SparseFormat, SparseMatrix,
};
use indexmap::IndexMap;

use crate::budget::Budget;
use crate::error::{IoError, Result};
use crate::h5::{H5File, NodeKind};
use crate::legacy;
use crate::read::{Expect, MatrixInfo, join};

const X_EXPECTED: &str =
    "the expression matrix `X` (a dense array or a csr_matrix/csc_matrix group)";

/// An `.h5ad` file opened for reading. Opening reads only metadata, so large
/// files can be inspected or read a few rows at a time.
pub struct H5ad {
    pub(crate) h5: H5File,
    legacy: bool,
}

/// Reads a whole `.h5ad` file into memory.
pub fn read_h5ad(path: impl AsRef<Path>) -> Result<CellData> {
    H5ad::open(path)?.read()
}

impl Expect {
    fn obs_var(n_obs: usize, n_vars: usize) -> Self {
        Expect::Matrix {
            rows: n_obs,
            cols: n_vars,
            axes: "obs x var",
        }
    }
}

impl H5ad {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let h5 = H5File::open(path.as_ref())?;
        let legacy = legacy::is_legacy(&h5)?;
        Ok(Self { h5, legacy })
    }

    /// Limits the memory that any one read of this file may take to `bytes`
    /// (by default: the memory the machine had available when the file was
    /// opened). A read that the file's metadata says would take more is
    /// refused before anything is allocated.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.h5.budget = Budget::caller(bytes);
        self
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

    /// Number of rows of the data frame `key` (`obs`, `var`, `raw/var`),
    /// from metadata.
    fn axis_len(&self, key: &str) -> Result<usize> {
        if self.legacy {
            legacy::frame_len(&self.h5, key)
        } else {
            self.h5.frame_len(key)
        }
    }

    /// The shape `element` must have: X and layers obs x var, obsm one row
    /// per obs name, and so on; anything else (uns) is not constrained.
    fn expect_for(&self, element: &str) -> Result<Expect> {
        let n_obs = || self.axis_len("obs");
        let n_vars = || self.axis_len("var");
        let group = element.split_once('/').map_or(element, |(g, _)| g);
        Ok(match group {
            "X" | "layers" => Expect::obs_var(n_obs()?, n_vars()?),
            "obsm" => Expect::Rows {
                rows: n_obs()?,
                axis: "obs",
            },
            "varm" => Expect::Rows {
                rows: n_vars()?,
                axis: "var",
            },
            "obsp" => {
                let n = n_obs()?;
                Expect::Matrix {
                    rows: n,
                    cols: n,
                    axes: "obs x obs",
                }
            }
            "varp" => {
                let n = n_vars()?;
                Expect::Matrix {
                    rows: n,
                    cols: n,
                    axes: "var x var",
                }
            }
            _ if element == self.raw_key("X") => Expect::Matrix {
                rows: n_obs()?,
                cols: self.axis_len(&self.raw_key("var"))?,
                axes: "obs x raw var",
            },
            _ => Expect::Any,
        })
    }

    /// Shape, type and storage of `X`.
    pub fn x_info(&self) -> Result<MatrixInfo> {
        self.h5.require("X", X_EXPECTED)?;
        self.matrix_info("X")
    }

    /// Shape, type and storage of `X` (`"X"`) or a layer (`"layers/<name>"`),
    /// checked against the obs and var names as a read would check it.
    pub fn matrix_info(&self, element: &str) -> Result<MatrixInfo> {
        let expect = self.expect_for(element)?;
        self.h5.matrix_info(element, expect)
    }

    /// `(n_obs, n_vars)`.
    pub fn shape(&self) -> Result<(usize, usize)> {
        Ok(self.x_info()?.shape)
    }

    pub fn read_obs(&self) -> Result<Frame> {
        let _op = self.h5.budget.scope();
        Ok(self.read_frame_consuming("obs")?.0)
    }

    pub fn read_var(&self) -> Result<Frame> {
        let _op = self.h5.budget.scope();
        Ok(self.read_frame_consuming("var")?.0)
    }

    fn read_frame_consuming(&self, key: &str) -> Result<(Frame, Vec<String>)> {
        if self.legacy {
            legacy::read_frame(&self.h5, key)
        } else {
            Ok((self.h5.read_frame(key)?, Vec::new()))
        }
    }

    fn read_axis_matrices(&self, key: &str, expect: Expect) -> Result<IndexMap<String, Matrix>> {
        if self.legacy {
            legacy::read_matrix_record(&self.h5, key, expect)
        } else {
            self.h5.read_matrix_map(key, expect)
        }
    }

    /// Reads everything into memory: the obs and var tables first, then
    /// every matrix, each checked against their lengths before it is read.
    pub fn read(&self) -> Result<CellData> {
        self.read_except(&[])
    }

    /// Reads everything as [`H5ad::read`] does except the matrices named in
    /// `skip` (`"X"`, `"layers/NAME"`), which are left to backed reads
    /// ([`H5ad::read_rows`]): in their place stands an empty CSR matrix of
    /// their shape and element type.
    pub fn read_except(&self, skip: &[&str]) -> Result<CellData> {
        let _op = self.h5.budget.scope();
        let h5 = &self.h5;
        h5.require("X", X_EXPECTED)?;
        let (obs, consumed_obs) = self.read_frame_consuming("obs")?;
        let (var, consumed_var) = self.read_frame_consuming("var")?;
        let (n_obs, n_vars) = (obs.len(), var.len());
        let expect = Expect::obs_var(n_obs, n_vars);
        let matrix = |h5: &H5File, key: &str| -> Result<Matrix> {
            if !skip.contains(&key) {
                return h5.read_matrix(key, expect);
            }
            let info = self.matrix_info(key)?;
            if info.shape != (n_obs, n_vars) {
                return Err(h5.invalid(
                    key,
                    format!(
                        "shape {:?} does not match obs x var ({n_obs} x {n_vars})",
                        info.shape
                    ),
                ));
            }
            SparseMatrix::new(
                SparseFormat::Csr,
                info.shape,
                vec![0; info.shape.0 + 1],
                Vec::new(),
                NumVec::empty(info.dtype),
            )
            .map(Matrix::Sparse)
            .map_err(|e| h5.invalid(key, e.to_string()))
        };
        let x = matrix(h5, "X")?;
        let layers = h5.read_members("layers", matrix)?;
        let obsm = self.read_axis_matrices(
            "obsm",
            Expect::Rows {
                rows: n_obs,
                axis: "obs",
            },
        )?;
        let varm = self.read_axis_matrices(
            "varm",
            Expect::Rows {
                rows: n_vars,
                axis: "var",
            },
        )?;
        let square = |n, axes| Expect::Matrix {
            rows: n,
            cols: n,
            axes,
        };
        let mut uns = h5.read_uns_map("uns")?;
        let mut obsp = IndexMap::new();
        if self.legacy {
            for key in consumed_obs.iter().chain(&consumed_var) {
                uns.shift_remove(key);
            }
            obsp = legacy::move_neighbor_graphs(&mut uns);
        }
        obsp.extend(h5.read_matrix_map("obsp", square(n_obs, "obs x obs"))?);
        let varp = h5.read_matrix_map("varp", square(n_vars, "var x var"))?;
        let raw = self.read_raw(n_obs)?;
        let data = CellData {
            x,
            obs,
            var,
            layers,
            obsm,
            varm,
            obsp,
            varp,
            uns,
            raw,
        };
        data.validate().map_err(|error| IoError::Data {
            path: h5.path.clone(),
            error,
        })?;
        Ok(data)
    }

    fn read_raw(&self, n_obs: usize) -> Result<Option<Box<RawData>>> {
        let x_key = self.raw_key("X");
        if self.h5.kind(&x_key)?.is_none() {
            return Ok(None);
        }
        let var_key = self.raw_key("var");
        let var = match self.h5.kind(&var_key)? {
            Some(_) => self.read_frame_consuming(&var_key)?.0,
            None => return Err(self.h5.missing(&var_key, "the gene table of `raw`")),
        };
        let x = self.h5.read_matrix(
            &x_key,
            Expect::Matrix {
                rows: n_obs,
                cols: var.len(),
                axes: "obs x raw var",
            },
        )?;
        let varm = self.read_axis_matrices(
            &self.raw_key("varm"),
            Expect::Rows {
                rows: var.len(),
                axis: "raw var",
            },
        )?;
        Ok(Some(Box::new(RawData { x, var, varm })))
    }

    /// A description of the file's contents, reading the obs and var tables
    /// and `uns`, and only the metadata of the matrices.
    pub fn summary(&self) -> Result<Summary> {
        let _op = self.h5.budget.scope();
        self.h5.require("X", X_EXPECTED)?;
        let (obs, consumed_obs) = self.read_frame_consuming("obs")?;
        let (var, consumed_var) = self.read_frame_consuming("var")?;
        let x = self
            .h5
            .matrix_info("X", Expect::obs_var(obs.len(), var.len()))?;
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
            Some(_) => Some(self.matrix_info(&self.raw_key("X"))?),
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
            match self.matrix_info(&join(key, &name)) {
                Ok(info) => out.push((name, info)),
                Err(IoError::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn axis_infos(&self, key: &str) -> Result<Vec<(String, MatrixInfo)>> {
        if self.legacy && self.h5.kind(key)? == Some(NodeKind::Dataset) {
            let matrices = legacy::read_matrix_record(&self.h5, key, self.expect_for(key)?)?;
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
