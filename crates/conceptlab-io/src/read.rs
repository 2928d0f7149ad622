//! Reading anndata elements (encoding >= 0.8) into `conceptlab-core` types.

use conceptlab_core::{
    Categorical, Column, DType, DenseArray, Frame, Matrix, NumVec, SparseFormat, SparseMatrix,
    UnsValue, Values,
};
use hdf5_pure::Dataset;
use indexmap::IndexMap;

use crate::error::{IoError, Result};
use crate::h5::{self, Attrs, H5File, NodeKind};

pub(crate) const MATRIX_ENCODINGS: &str = "array, csr_matrix, csc_matrix";
pub(crate) const COLUMN_ENCODINGS: &str = "array, string-array, categorical, nullable-integer, \
     nullable-boolean, nullable-string-array";

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

impl H5File {
    /// The kind at `key`, or a `Missing` error describing what was expected.
    pub(crate) fn require(&self, key: &str, expected: &str) -> Result<NodeKind> {
        self.kind(key)?.ok_or_else(|| self.missing(key, expected))
    }

    /// Sparse format declared by a group: anndata's `encoding-type`, or the
    /// legacy `h5sparse_format` attribute of files written before anndata 0.7.
    pub(crate) fn sparse_format(&self, key: &str, attrs: &Attrs) -> Result<Option<SparseFormat>> {
        let declared = h5::encoding(attrs).or_else(|| h5::attr_string(attrs, "h5sparse_format"));
        match declared.as_deref() {
            Some("csr_matrix") | Some("csr") => Ok(Some(SparseFormat::Csr)),
            Some("csc_matrix") | Some("csc") => Ok(Some(SparseFormat::Csc)),
            Some(other) => Err(self.unsupported(key, other, MATRIX_ENCODINGS)),
            None => Ok(None),
        }
    }

    fn sparse_shape(&self, key: &str, attrs: &Attrs) -> Result<(usize, usize)> {
        let shape = h5::attr_integers(attrs, "shape")
            .or_else(|| h5::attr_integers(attrs, "h5sparse_shape"))
            .ok_or_else(|| self.invalid(key, "sparse matrix group has no `shape` attribute"))?;
        match shape.as_slice() {
            [r, c] if *r >= 0 && *c >= 0 => Ok((*r as usize, *c as usize)),
            other => Err(self.invalid(
                key,
                format!("sparse `shape` must be two non-negative integers, found {other:?}"),
            )),
        }
    }

    /// Shape, type and storage of the matrix at `key` without reading its values.
    pub(crate) fn matrix_info(&self, key: &str) -> Result<MatrixInfo> {
        let expected = "a dense array or a csr_matrix/csc_matrix group";
        match self.require(key, expected)? {
            NodeKind::Dataset => {
                let ds = self.dataset(key)?;
                let shape = self.shape(key, &ds)?;
                let dtype = self
                    .numeric_dtype(key, &ds)?
                    .ok_or_else(|| self.invalid(key, "expected a numeric matrix"))?;
                let m = Matrix::Dense(DenseArray {
                    shape: shape.clone(),
                    data: NumVec::empty(dtype),
                });
                Ok(MatrixInfo {
                    shape: m.shape(),
                    dtype,
                    encoding: "array",
                    stored: shape.iter().product(),
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
                let data_key = join(key, "data");
                let data = self.dataset(&data_key)?;
                let dtype = self
                    .numeric_dtype(&data_key, &data)?
                    .ok_or_else(|| self.invalid(&data_key, "expected numeric values"))?;
                Ok(MatrixInfo {
                    shape: self.sparse_shape(key, &attrs)?,
                    dtype,
                    encoding: format.encoding(),
                    stored: self.shape(&data_key, &data)?.iter().product(),
                })
            }
        }
    }

    /// Reads a dense array or a sparse matrix group.
    pub(crate) fn read_matrix(&self, key: &str) -> Result<Matrix> {
        match self.require(key, "a dense array or a csr_matrix/csc_matrix group")? {
            NodeKind::Dataset => Ok(Matrix::Dense(self.read_dense(key)?)),
            NodeKind::Group => {
                let attrs = self.attrs(key, NodeKind::Group)?;
                match self.sparse_format(key, &attrs)? {
                    Some(format) => Ok(Matrix::Sparse(self.read_sparse(key, format, &attrs)?)),
                    None => Err(self.unsupported(
                        key,
                        &h5::encoding(&attrs).unwrap_or_else(|| "dict".into()),
                        MATRIX_ENCODINGS,
                    )),
                }
            }
        }
    }

    pub(crate) fn read_dense(&self, key: &str) -> Result<DenseArray> {
        let ds = self.dataset(key)?;
        let shape = self.shape(key, &ds)?;
        let data = self.read_numeric(key, &ds)?;
        DenseArray::new(shape, data).map_err(|e| self.invalid(key, e.to_string()))
    }

    fn read_sparse(&self, key: &str, format: SparseFormat, attrs: &Attrs) -> Result<SparseMatrix> {
        let shape = self.sparse_shape(key, attrs)?;
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

    /// Reads an anndata `dataframe` group.
    pub(crate) fn read_frame(&self, key: &str) -> Result<Frame> {
        let kind = self.require(key, "a dataframe group")?;
        if kind == NodeKind::Dataset {
            return Err(self.invalid(key, "expected a dataframe group, found a dataset"));
        }
        let attrs = self.attrs(key, kind)?;
        match h5::encoding(&attrs).as_deref() {
            Some("dataframe") => {}
            Some(other) => return Err(self.unsupported(key, other, "dataframe")),
            None => {
                return Err(self.invalid(
                    key,
                    "group has no `encoding-type` attribute (expected `dataframe`)",
                ));
            }
        }
        let index_name =
            h5::attr_string(&attrs, "_index").unwrap_or_else(|| Frame::DEFAULT_INDEX_NAME.into());
        let index_key = join(key, &index_name);
        let index = match self.read_column(&index_key)? {
            Column::Strings(s) => s,
            Column::Numeric(n) => (0..n.len())
                .filter_map(|i| n.get_f64(i))
                .map(|v| v.to_string())
                .collect(),
            Column::Categorical(c) => (0..c.codes.len())
                .map(|i| c.label(i).unwrap_or_default())
                .collect(),
            Column::Nullable { .. } => {
                return Err(self.invalid(&index_key, "an index may not hold missing values"));
            }
        };
        let order = h5::attr_strings(&attrs, "column-order").unwrap_or_default();
        let mut frame = Frame {
            index_name,
            index,
            columns: IndexMap::with_capacity(order.len()),
        };
        for name in order {
            let col_key = join(key, &name);
            let column = self.read_column(&col_key)?;
            if column.len() != frame.len() {
                return Err(self.invalid(
                    &col_key,
                    format!(
                        "column has {} values but the index has {}",
                        column.len(),
                        frame.len()
                    ),
                ));
            }
            frame.columns.insert(name, column);
        }
        Ok(frame)
    }

    /// Reads one data-frame column (or a categorical / nullable array elsewhere).
    pub(crate) fn read_column(&self, key: &str) -> Result<Column> {
        let kind = self.require(key, "a column")?;
        let attrs = self.attrs(key, kind)?;
        let enc = h5::encoding(&attrs);
        match kind {
            NodeKind::Dataset => match enc.as_deref() {
                None | Some("array") | Some("string-array") => {
                    let ds = self.dataset(key)?;
                    let dtype = self.h5_dtype(key, &ds)?;
                    if h5::is_string_dtype(&dtype) {
                        Ok(Column::Strings(self.read_strings(key, &ds)?))
                    } else if h5::numeric_dtype(&dtype).is_some() {
                        Ok(Column::Numeric(self.read_numeric(key, &ds)?))
                    } else {
                        Err(self.unsupported(key, &format!("array of {dtype}"), COLUMN_ENCODINGS))
                    }
                }
                Some(other) => Err(self.unsupported(key, other, COLUMN_ENCODINGS)),
            },
            NodeKind::Group => match enc.as_deref() {
                Some("categorical") => {
                    let codes_key = join(key, "codes");
                    let codes = self.read_numeric(&codes_key, &self.dataset(&codes_key)?)?;
                    if !codes.dtype().is_integer() {
                        return Err(self.invalid(&codes_key, "categorical codes must be integers"));
                    }
                    let codes = codes.to_f64().into_iter().map(|c| c as i32).collect();
                    let categories = self.read_values(&join(key, "categories"))?;
                    let ordered = h5::attr_bool(&attrs, "ordered").unwrap_or(false);
                    Categorical::new(codes, categories, ordered)
                        .map(Column::Categorical)
                        .map_err(|e| self.invalid(key, e.to_string()))
                }
                Some("nullable-integer")
                | Some("nullable-boolean")
                | Some("nullable-string-array") => {
                    let values = self.read_values(&join(key, "values"))?;
                    let mask_key = join(key, "mask");
                    let mask = match self.kind(&mask_key)? {
                        Some(_) => match self.read_numeric(&mask_key, &self.dataset(&mask_key)?)? {
                            NumVec::Bool(m) => m,
                            other => other.to_f64().into_iter().map(|v| v != 0.0).collect(),
                        },
                        None => vec![false; values.len()],
                    };
                    if mask.len() != values.len() {
                        return Err(self.invalid(key, "`mask` and `values` differ in length"));
                    }
                    Ok(Column::Nullable { values, mask })
                }
                Some(other) => Err(self.unsupported(key, other, COLUMN_ENCODINGS)),
                None => Err(self.unsupported(key, "group without encoding-type", COLUMN_ENCODINGS)),
            },
        }
    }

    /// Reads a one-dimensional dataset of strings or numbers.
    fn read_values(&self, key: &str) -> Result<Values> {
        let ds = self.dataset(key)?;
        if h5::is_string_dtype(&self.h5_dtype(key, &ds)?) {
            Ok(Values::Strings(self.read_strings(key, &ds)?))
        } else {
            Ok(Values::Numbers(self.read_numeric(key, &ds)?))
        }
    }

    /// Reads every member of the group at `key` as matrices (layers, obsm, ...).
    /// Members of another kind (data frames in `obsm`, say) are skipped with a warning.
    pub(crate) fn read_matrix_map(&self, key: &str) -> Result<IndexMap<String, Matrix>> {
        self.read_members(key, Self::read_matrix)
    }

    /// Reads the group at `key` as an `uns` mapping. Elements of an encoding
    /// this reader does not know are skipped with a warning rather than failing
    /// the whole file: `uns` is free-form and often holds tool-specific objects.
    pub(crate) fn read_uns_map(&self, key: &str) -> Result<IndexMap<String, UnsValue>> {
        self.read_members(key, Self::read_uns_value)
    }

    /// Reads each member of the group at `key` with `read`, skipping (with a
    /// warning) members of an unsupported encoding; a missing group is empty.
    fn read_members<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> Result<T>,
    ) -> Result<IndexMap<String, T>> {
        let mut out = IndexMap::new();
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
        let enc = h5::encoding(&attrs);
        const UNS_ENCODINGS: &str = "dict, string, string-array, numeric-scalar, array, rec-array, \
             csr_matrix, csc_matrix, dataframe, categorical, nullable-*";
        match kind {
            NodeKind::Group => match enc.as_deref() {
                None if h5::attr_string(&attrs, "h5sparse_format").is_some() => {
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
                        Ok(UnsValue::String(
                            values.into_iter().next().unwrap_or_default(),
                        ))
                    } else {
                        Ok(UnsValue::StringArray { shape, values })
                    }
                } else if h5::numeric_dtype(&dtype).is_some() {
                    Ok(UnsValue::Array(self.read_dense(key)?))
                } else {
                    Err(self.unsupported(key, &format!("dataset of type {dtype}"), UNS_ENCODINGS))
                }
            }
        }
    }

    fn read_sparse_group(&self, key: &str, attrs: &Attrs) -> Result<SparseMatrix> {
        match self.sparse_format(key, attrs)? {
            Some(format) => self.read_sparse(key, format, attrs),
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
