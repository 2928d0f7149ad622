//! Reading anndata matrices and `uns` elements (encoding >= 0.8) into
//! `conceptlab-core` types. Every matrix's shape and sparse structure are
//! checked from metadata against what the obs/var indices require before any
//! of its values are read.

use conceptlab_core::{DType, DenseArray, Matrix, NumVec, SparseFormat, SparseMatrix, UnsValue};
use hdf5_pure::Dataset;
use indexmap::IndexMap;

use crate::attrs::Attrs;
use crate::bounds::dims;
use crate::error::{IoError, Result};
use crate::h5::{self, H5File, NodeKind};

pub(crate) const MATRIX_ENCODINGS: &str = "array, csr_matrix, csc_matrix";

/// Deepest nesting of groups read (`uns/a/b/...`). HDF5 links can make a
/// group its own descendant, which would otherwise recurse until the stack
/// overflows; no anndata file nests anywhere near this deep.
const MAX_DEPTH: usize = 32;

/// Joins an HDF5 group key and a member name.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// Storage of a matrix element, read from metadata only.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixInfo {
    pub shape: (usize, usize),
    pub dtype: DType,
    /// `array`, `csr_matrix` or `csc_matrix`.
    pub encoding: &'static str,
    /// Stored values: every entry of a dense matrix, the non-zeros of a sparse one.
    pub stored: usize,
}

/// The shape an element must have, known from the obs/var indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// X, layers, raw/X, obsp, varp: two-dimensional, exactly `rows x cols`.
    /// `axes` names where the numbers come from (`obs x var`).
    Matrix {
        rows: usize,
        cols: usize,
        axes: &'static str,
    },
    /// obsm, varm: `rows` along the first axis, any number of further axes.
    Rows { rows: usize, axis: &'static str },
    /// uns: any shape.
    Any,
}

impl Expect {
    fn describe(self) -> String {
        match self {
            Expect::Matrix { rows, cols, axes } => {
                format!("a two-dimensional {rows} x {cols} matrix ({axes})")
            }
            Expect::Rows { rows, axis } => format!("{rows} rows (one per {axis} name)"),
            Expect::Any => "an array".to_owned(),
        }
    }

    /// Whether a dense array of `shape` (or a sparse matrix of it) fits.
    fn accepts(self, shape: &[u64]) -> bool {
        match self {
            Expect::Matrix { rows, cols, .. } => shape == [rows as u64, cols as u64],
            Expect::Rows { rows, .. } => shape.first() == Some(&(rows as u64)),
            Expect::Any => true,
        }
    }
}

impl H5File {
    /// The kind at `key`, or a `Missing` error describing what was expected.
    pub(crate) fn require(&self, key: &str, expected: &str) -> Result<NodeKind> {
        self.kind(key)?.ok_or_else(|| self.missing(key, expected))
    }

    fn check_shape(&self, key: &str, shape: &[u64], expect: Expect) -> Result<()> {
        if expect.accepts(shape) {
            return Ok(());
        }
        let found = if shape.len() == 2 || shape.is_empty() {
            dims(shape)
        } else {
            format!("a {}-dimensional {} array", shape.len(), dims(shape))
        };
        Err(self.invalid(
            key,
            format!("expected {}, found {found}", expect.describe()),
        ))
    }

    /// Sparse format declared by a group: anndata's `encoding-type`, or the
    /// legacy `h5sparse_format` attribute of files written before anndata 0.7.
    pub(crate) fn sparse_format(&self, key: &str, attrs: &Attrs) -> Result<Option<SparseFormat>> {
        let declared = match self.encoding(key, attrs)? {
            Some(enc) => Some(enc),
            None => self.attr_string(key, attrs, "h5sparse_format")?,
        };
        match declared.as_deref() {
            Some("csr_matrix") | Some("csr") => Ok(Some(SparseFormat::Csr)),
            Some("csc_matrix") | Some("csc") => Ok(Some(SparseFormat::Csc)),
            Some(other) => Err(self.unsupported(key, other, MATRIX_ENCODINGS)),
            None => Ok(None),
        }
    }

    fn sparse_shape(&self, key: &str, attrs: &Attrs) -> Result<(usize, usize)> {
        let shape = match self.attr_integers(key, attrs, "shape")? {
            Some(shape) => shape,
            None => self
                .attr_integers(key, attrs, "h5sparse_shape")?
                .ok_or_else(|| self.invalid(key, "sparse matrix group has no `shape` attribute"))?,
        };
        match shape.as_slice() {
            [r, c] if *r >= 0 && *c >= 0 => Ok((*r as usize, *c as usize)),
            other => Err(self.invalid(
                key,
                format!("sparse `shape` must be two non-negative integers, found {other:?}"),
            )),
        }
    }

    /// The shape and the number of stored values of the sparse group at `key`,
    /// checked from metadata: the shape against `expect`, `indptr` one entry
    /// longer than the compressed axis, `indices` as long as `data`, and no
    /// more stored values than the matrix has entries.
    fn sparse_layout(
        &self,
        key: &str,
        format: SparseFormat,
        attrs: &Attrs,
        expect: Expect,
    ) -> Result<((usize, usize), usize)> {
        let shape = self.sparse_shape(key, attrs)?;
        self.check_shape(key, &[shape.0 as u64, shape.1 as u64], expect)?;
        let one_dim = |name: &str| -> Result<u64> {
            let k = join(key, name);
            let ds = self.dataset(&k)?;
            match self.declared(&k, &ds)?.shape.as_slice() {
                [n] => Ok(*n),
                other => Err(self.invalid(
                    &k,
                    format!("expected a one-dimensional array, found {}", dims(other)),
                )),
            }
        };
        let (nnz, n_indices, n_indptr) =
            (one_dim("data")?, one_dim("indices")?, one_dim("indptr")?);
        let major = match format {
            SparseFormat::Csr => shape.0,
            SparseFormat::Csc => shape.1,
        } as u64;
        let axis = match format {
            SparseFormat::Csr => "row",
            SparseFormat::Csc => "column",
        };
        if n_indptr != major + 1 {
            return Err(self.invalid(
                &join(key, "indptr"),
                format!(
                    "has {n_indptr} entries, but a {} x {} {} needs {} (one per {} plus one)",
                    shape.0,
                    shape.1,
                    format.encoding(),
                    major + 1,
                    axis
                ),
            ));
        }
        if n_indices != nnz {
            return Err(self.invalid(
                key,
                format!("`indices` has {n_indices} entries but `data` has {nnz}"),
            ));
        }
        let entries = (shape.0 as u128) * (shape.1 as u128);
        if u128::from(nnz) > entries {
            return Err(self.invalid(
                key,
                format!(
                    "stores {nnz} values, more than the {entries} entries of a {} x {} matrix",
                    shape.0, shape.1
                ),
            ));
        }
        let nnz = usize::try_from(nnz)
            .map_err(|_| self.too_large(key, format!("stores {nnz} values")))?;
        Ok((shape, nnz))
    }

    /// Shape, type and storage of the matrix at `key` without reading its
    /// values, checked against `expect` as a read would check it.
    pub(crate) fn matrix_info(&self, key: &str, expect: Expect) -> Result<MatrixInfo> {
        let expected = "a dense array or a csr_matrix/csc_matrix group";
        match self.require(key, expected)? {
            NodeKind::Dataset => {
                let ds = self.dataset(key)?;
                let declared = self.declared(key, &ds)?;
                self.check_shape(key, &declared.shape, expect)?;
                let dtype = self
                    .numeric_dtype(key, &ds)?
                    .ok_or_else(|| self.invalid(key, "expected a numeric matrix"))?;
                let shape: Vec<usize> = declared.shape.iter().map(|&d| d as usize).collect();
                let m = Matrix::Dense(DenseArray {
                    shape,
                    data: NumVec::empty(dtype),
                });
                Ok(MatrixInfo {
                    shape: m.shape(),
                    dtype,
                    encoding: "array",
                    stored: usize::try_from(declared.elements).unwrap_or(usize::MAX),
                })
            }
            NodeKind::Group => {
                let attrs = self.attrs(key, NodeKind::Group)?;
                let format = self.sparse_format(key, &attrs)?.ok_or_else(|| {
                    self.unsupported(
                        key,
                        "dict (a group without a sparse encoding)",
                        MATRIX_ENCODINGS,
                    )
                })?;
                let (shape, stored) = self.sparse_layout(key, format, &attrs, expect)?;
                let data_key = join(key, "data");
                let dtype = self
                    .numeric_dtype(&data_key, &self.dataset(&data_key)?)?
                    .ok_or_else(|| self.invalid(&data_key, "expected numeric values"))?;
                Ok(MatrixInfo {
                    shape,
                    dtype,
                    encoding: format.encoding(),
                    stored,
                })
            }
        }
    }

    /// Reads a dense array or a sparse matrix group of the expected shape.
    pub(crate) fn read_matrix(&self, key: &str, expect: Expect) -> Result<Matrix> {
        match self.require(key, "a dense array or a csr_matrix/csc_matrix group")? {
            NodeKind::Dataset => Ok(Matrix::Dense(self.read_dense(key, expect)?)),
            NodeKind::Group => {
                let attrs = self.attrs(key, NodeKind::Group)?;
                match self.sparse_format(key, &attrs)? {
                    Some(format) => Ok(Matrix::Sparse(
                        self.read_sparse(key, format, &attrs, expect)?,
                    )),
                    None => Err(self.unsupported(
                        key,
                        &self.encoding(key, &attrs)?.unwrap_or_else(|| "dict".into()),
                        MATRIX_ENCODINGS,
                    )),
                }
            }
        }
    }

    pub(crate) fn read_dense(&self, key: &str, expect: Expect) -> Result<DenseArray> {
        let ds = self.dataset(key)?;
        let shape = self.shape(key, &ds)?;
        self.check_shape(
            key,
            &shape.iter().map(|&d| d as u64).collect::<Vec<_>>(),
            expect,
        )?;
        let data = self.read_numeric(key, &ds)?;
        DenseArray::new(shape, data).map_err(|e| self.invalid(key, e.to_string()))
    }

    fn read_sparse(
        &self,
        key: &str,
        format: SparseFormat,
        attrs: &Attrs,
        expect: Expect,
    ) -> Result<SparseMatrix> {
        let (shape, _) = self.sparse_layout(key, format, attrs, expect)?;
        let data_key = join(key, "data");
        let data = self.read_numeric(&data_key, &self.dataset(&data_key)?)?;
        let indices_key = join(key, "indices");
        let indices = self.read_minor_indices(&indices_key, &self.dataset(&indices_key)?, None)?;
        let indptr = self.read_index_array(&join(key, "indptr"), None)?;
        SparseMatrix::new(format, shape, indptr, indices, data)
            .map_err(|e| self.invalid(key, e.to_string()))
    }

    /// Reads a non-negative integer array (sparse pointers), or the window
    /// `start..start+count` of it, as `u64`.
    pub(crate) fn read_index_array(
        &self,
        key: &str,
        window: Option<(u64, u64)>,
    ) -> Result<Vec<u64>> {
        self.read_unsigned(key, &self.dataset(key)?, window)
    }

    /// Reads sparse minor-axis indices as `u32`. Converting element by element
    /// from the stored type lets a 32-bit array be reused in place instead of
    /// passing through a 64-bit copy: on a 10-million-entry matrix that is
    /// 120 MB of memory never touched.
    pub(crate) fn read_minor_indices(
        &self,
        key: &str,
        ds: &Dataset,
        window: Option<(u64, u64)>,
    ) -> Result<Vec<u32>> {
        self.read_unsigned(key, ds, window)
    }

    fn read_unsigned<T>(
        &self,
        key: &str,
        ds: &Dataset,
        window: Option<(u64, u64)>,
    ) -> Result<Vec<T>>
    where
        T: TryFrom<i8> + TryFrom<i16> + TryFrom<i32> + TryFrom<i64>,
        T: TryFrom<u8> + TryFrom<u16> + TryFrom<u32> + TryFrom<u64>,
    {
        let dtype = self
            .numeric_dtype(key, ds)?
            .filter(|d| d.is_integer())
            .ok_or_else(|| self.invalid(key, "expected an integer array"))?;
        // The converted copy sits beside the values read.
        let declared = self.declared(key, ds)?;
        let elements = match window {
            None => declared.elements,
            Some((_, count)) => count,
        };
        self.charge(
            key,
            &declared,
            elements,
            std::mem::size_of::<T>() as u64,
            "indices",
        )?;
        let values = self.read_numeric_window(key, ds, dtype, window)?;
        let out_of_range = || self.invalid(key, "sparse index is negative or too large");
        macro_rules! convert {
            ($v:expr) => {
                $v.into_iter()
                    .map(|x| T::try_from(x).map_err(|_| out_of_range()))
                    .collect()
            };
        }
        match values {
            NumVec::I8(v) => convert!(v),
            NumVec::I16(v) => convert!(v),
            NumVec::I32(v) => convert!(v),
            NumVec::I64(v) => convert!(v),
            NumVec::U8(v) => convert!(v),
            NumVec::U16(v) => convert!(v),
            NumVec::U32(v) => convert!(v),
            NumVec::U64(v) => convert!(v),
            _ => Err(self.invalid(key, "expected an integer array")),
        }
    }

    /// Reads every member of the group at `key` as matrices of the expected
    /// shape (layers, obsm, ...). Members of another kind (data frames in
    /// `obsm`, say) are skipped with a warning.
    pub(crate) fn read_matrix_map(
        &self,
        key: &str,
        expect: Expect,
    ) -> Result<IndexMap<String, Matrix>> {
        self.read_members(key, |h5, member| h5.read_matrix(member, expect))
    }

    /// Reads the group at `key` as an `uns` mapping. Elements of an encoding
    /// this reader does not know are skipped with a warning rather than failing
    /// the whole file: `uns` is free-form and often holds tool-specific objects.
    pub(crate) fn read_uns_map(&self, key: &str) -> Result<IndexMap<String, UnsValue>> {
        self.read_members(key, Self::read_uns_value)
    }

    /// Reads each member of the group at `key` with `read`, skipping (with a
    /// warning) members of an unsupported encoding; a missing group is empty.
    pub(crate) fn read_members<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> Result<T>,
    ) -> Result<IndexMap<String, T>> {
        let mut out = IndexMap::new();
        if key.split('/').count() > MAX_DEPTH {
            return Err(self.invalid(
                key,
                format!("groups nested more than {MAX_DEPTH} deep (a group linked into itself?)"),
            ));
        }
        if self.kind(key)? != Some(NodeKind::Group) {
            return Ok(out);
        }
        for (name, _) in self.members(key)? {
            let member = join(key, &name);
            match read(self, &member) {
                Ok(value) => {
                    out.insert(name, value);
                }
                Err(IoError::Unsupported { encoding, .. }) => {
                    tracing::warn!(file = %self.path, key = %member, %encoding, "skipping element of unsupported encoding");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub(crate) fn read_uns_value(&self, key: &str) -> Result<UnsValue> {
        let kind = self.require(key, "an uns element")?;
        let attrs = self.attrs(key, kind)?;
        let enc = self.encoding(key, &attrs)?;
        const UNS_ENCODINGS: &str = "dict, string, string-array, numeric-scalar, array, rec-array, \
             csr_matrix, csc_matrix, dataframe, categorical, nullable-*";
        match kind {
            NodeKind::Group => match enc.as_deref() {
                None if attrs.contains("h5sparse_format") => {
                    Ok(UnsValue::Sparse(self.read_sparse_group(key, &attrs)?))
                }
                None | Some("dict") => Ok(UnsValue::Mapping(self.read_uns_map(key)?)),
                Some("csr_matrix") | Some("csc_matrix") => {
                    Ok(UnsValue::Sparse(self.read_sparse_group(key, &attrs)?))
                }
                Some("dataframe") => Ok(UnsValue::Frame(self.read_frame(key)?)),
                Some("categorical")
                | Some("nullable-integer")
                | Some("nullable-boolean")
                | Some("nullable-string-array") => Ok(UnsValue::Column(self.read_column(key)?)),
                Some(other) => Err(self.unsupported(key, other, UNS_ENCODINGS)),
            },
            NodeKind::Dataset => {
                let ds = self.dataset(key)?;
                let dtype = self.h5_dtype(key, &ds)?;
                let shape = self.shape(key, &ds)?;
                match enc.as_deref() {
                    None
                    | Some("string")
                    | Some("string-array")
                    | Some("numeric-scalar")
                    | Some("array")
                    | Some("rec-array") => {}
                    Some(other) => return Err(self.unsupported(key, other, UNS_ENCODINGS)),
                }
                if matches!(dtype, hdf5_pure::DType::Compound(_)) {
                    return Ok(UnsValue::Records(crate::compound::read_records(self, key)?));
                }
                if h5::is_string_dtype(&dtype) {
                    let values = self.read_strings(key, &ds)?;
                    if shape.is_empty() || enc.as_deref() == Some("string") {
                        // A scalar string: exactly one value, or the file is damaged.
                        match <[String; 1]>::try_from(values) {
                            Ok([s]) => Ok(UnsValue::String(s)),
                            Err(values) => Err(self.invalid(
                                key,
                                format!(
                                    "a `string` element must hold one string, found {}",
                                    values.len()
                                ),
                            )),
                        }
                    } else {
                        Ok(UnsValue::StringArray { shape, values })
                    }
                } else if h5::numeric_dtype(&dtype).is_some() {
                    Ok(UnsValue::Array(self.read_dense(key, Expect::Any)?))
                } else {
                    Err(self.unsupported(key, &format!("dataset of type {dtype}"), UNS_ENCODINGS))
                }
            }
        }
    }

    fn read_sparse_group(&self, key: &str, attrs: &Attrs) -> Result<SparseMatrix> {
        match self.sparse_format(key, attrs)? {
            Some(format) => self.read_sparse(key, format, attrs, Expect::Any),
            None => Err(self.invalid(key, "expected a sparse matrix group")),
        }
    }
}

/// A typed window read used by the backed reader.
pub(crate) fn numeric_window(
    h5: &H5File,
    key: &str,
    ds: &Dataset,
    start: u64,
    count: u64,
) -> Result<NumVec> {
    let dtype = h5
        .numeric_dtype(key, ds)?
        .ok_or_else(|| h5.invalid(key, "expected numeric values"))?;
    h5.read_numeric_window(key, ds, dtype, Some((start, count)))
}
