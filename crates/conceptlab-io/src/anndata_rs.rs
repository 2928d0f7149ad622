//! Conversion between [`CellData`] and [anndata-rs](https://github.com/scverse/anndata-rs)
//! (`anndata` 0.8 with the `anndata-hdf5` 0.5 backend), for pipelines that
//! already hold an [`anndata::AnnData`] (SnapATAC2 and friends).
//!
//! # Why this is optional
//!
//! This module is compiled only with the `anndata-rs` cargo feature, which is
//! off by default. anndata-rs pulls in polars (about 300 extra crates) and
//! `anndata-hdf5` always compiles a bundled copy of the HDF5 C library, which
//! needs a C compiler and CMake >= 3.26 (Debian 12 ships 3.25: install one
//! with `pip install cmake` and point the `CMAKE` environment variable at it).
//! A clean build of the feature takes about a quarter of an hour on two cores.
//! The crate's own reader and writer ([`crate::read_h5ad`],
//! [`crate::write_h5ad`]) need none of this.
//!
//! # What round-trips
//!
//! [`to_anndata`] followed by [`from_anndata`] (or by [`crate::read_h5ad`] on
//! the file) gives back exactly:
//!
//! * `X`, layers, `obsm`, `varm`, `obsp`, `varp`: dense arrays of any
//!   numeric or boolean type and shape, and CSR/CSC matrices with sorted
//!   indices, element types kept; CSR matrices with duplicate entries too
//!   (anndata-rs's non-canonical CSR).
//! * obs/var names and the index name, and the column order.
//! * Numeric, boolean and string columns; nullable integer and boolean
//!   columns (mask and the values under it, even when nothing is missing).
//! * Categorical columns, **with the original category order, unused
//!   categories, numeric categories and the `ordered` flag**. anndata-rs
//!   itself cannot do this: its dataframe writer re-derives categories in
//!   order of first appearance and always writes `ordered = false`, and its
//!   reader ([`AnnDataOp::read_obs`]) returns categoricals as plain polars
//!   `String` columns and fails outright on `nullable-string-array` columns
//!   (pandas' `string` dtype). So obs and var columns are read, and
//!   categorical columns rewritten, directly through the store's
//!   [`Backend`] API: the file behind the [`AnnData`] is opened a second time
//!   by name ([`AnnData::filename`]), because anndata-rs exposes no handle to
//!   its groups. The polars frame handed to [`AnnDataOp::set_obs`] does carry
//!   polars `Categorical` columns whose mapping lists the categories in the
//!   original order, but the file does not depend on it.
//! * `uns`: strings, numeric and boolean scalars and arrays, string arrays,
//!   sparse matrices and nested mappings.
//!
//! # What does not round-trip
//!
//! * `raw` is not written (anndata-rs has no `.raw`; a warning is logged) and
//!   [`from_anndata`] always returns `raw: None`.
//! * Nullable *string* columns are written the way anndata-rs writes a polars
//!   string column with nulls: as a categorical (categories in order of first
//!   appearance, missing values as code `-1`), because anndata-rs cannot read
//!   the `nullable-string-array` encoding back. They come back as
//!   [`Column::Categorical`] with the same labels.
//! * Nullable *float* columns are written as plain float columns with NaN
//!   where values are missing; they come back as [`Column::Numeric`].
//! * The order of keys in `uns` mappings, layers and `obsm`/`varm`/`obsp`/
//!   `varp` is lost (anndata-rs keeps them in hash maps); [`from_anndata`]
//!   returns them sorted by name, which is the order HDF5 lists them in.
//! * Data frames stored in `uns` lose their index (anndata-rs writes
//!   `0..n`) and their categoricals are subject to the polars path above
//!   (first-appearance categories, `ordered = false`); they come back with
//!   the index `"0".."n-1"`.
//! * Record arrays in `uns` ([`UnsValue::Records`], e.g. scanpy's
//!   `rank_genes_groups/names`) are written as data frames, since anndata-rs
//!   has no `rec-array`; they come back as [`UnsValue::Frame`]. Their field
//!   names become column names, so a field name containing `/` (common for
//!   cell-type names) is rejected. anndata-rs cannot read a `rec-array`
//!   written by Python or [`crate::write_h5ad`]: `AnnData::open` fails when
//!   it is a top-level `uns` entry, [`from_anndata`] when it is nested.
//! * Categorical or nullable arrays stored directly in `uns` (outside a data
//!   frame) have no anndata-rs representation: [`to_anndata`] rejects them
//!   with [`IoError::Invalid`], and anndata-rs cannot read them from a file.
//! * Sparse matrices with unsorted indices within a row (CSR) or column (CSC)
//!   are written with sorted indices: the same matrix in a different storage
//!   order (anndata-rs's CSR reader rejects unsorted indices, and so cannot
//!   read such a file written by scipy either). A CSC matrix with duplicate
//!   entries is rejected, since anndata-rs has no non-canonical CSC.
//! * If the store cannot be opened a second time by name, [`from_anndata`]
//!   falls back to [`AnnDataOp::read_obs`]/[`AnnDataOp::read_var`] (with the
//!   losses described above, logged as a warning), and [`to_anndata`] fails
//!   when there are categorical columns to write.
//! * Strings containing NUL characters, and keys containing `/`, are rejected
//!   (HDF5 cannot store them; anndata-hdf5 would panic on the former).
//!
//! Files written by [`write_with_anndata_rs`] use gzip (level 4), not
//! anndata-rs's default blosc-zstd, so that stock h5py can read them.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;

use anndata::backend::{
    AttributeOp, Compression as AdCompression, DataContainer, GroupOp, StoreOp, WriteConfig,
    get_default_write_config, set_default_write_config,
};
use anndata::data::{
    ArrayData, CsrNonCanonical, Data, DataFrameIndex, DynArray, DynCscMatrix, DynCsrMatrix,
    DynCsrNonCanonical, DynScalar, Mapping,
};
use anndata::{AnnData, AnnDataOp, ArrayElemOp, AxisArraysOp, Backend, ElemCollectionOp};
use anndata::{Readable, Writable};
use anndata_hdf5::H5;
use conceptlab_core::{
    Categorical, CellData, Column, CoreError, DenseArray, Frame, Matrix, NumVec, SparseFormat,
    SparseMatrix, UnsValue, Values,
};
use indexmap::IndexMap;
use nalgebra_sparse::{CscMatrix, CsrMatrix};
use ndarray::{ArrayD, IxDyn};
use polars::prelude::{
    Categorical32Chunked, CategoricalPhysical, Categories, DataFrame, DataType, IntoColumn,
    IntoSeries, NamedFrom, NewChunkedArray, PlSmallStr, Series, UInt32Chunked,
};

use crate::error::{IoError, Result};

const COLUMN_ENCODINGS: &str = "array, string-array, categorical, nullable-integer, \
     nullable-boolean, nullable-string-array";
const MATRIX_KINDS: &str = "numeric dense arrays, csr_matrix, csc_matrix";

/// Reads a whole `.h5ad` file through anndata-rs (HDF5 backend).
///
/// Mostly useful to cross-check [`crate::read_h5ad`]; see the module
/// documentation for what anndata-rs can and cannot represent.
pub fn read_with_anndata_rs(path: impl AsRef<Path>) -> Result<CellData> {
    let path = path.as_ref();
    let ctx = Ctx {
        path: path.display().to_string(),
    };
    std::fs::metadata(path).map_err(|error| IoError::Open {
        path: ctx.path.clone(),
        error,
    })?;
    let store = <H5 as Backend>::open(path).map_err(|e| ctx.read("/", e))?;
    let adata = AnnData::<H5>::open(store).map_err(|e| ctx.read("/", e))?;
    let result = from_anndata(&adata);
    let closed = adata.close().map_err(|e| ctx.read("/", e));
    let data = result?;
    closed?;
    Ok(data)
}

/// Writes `data` as an `.h5ad` file through anndata-rs (HDF5 backend), with
/// gzip compression so that stock h5py and anndata can read it.
///
/// Like [`crate::write_h5ad`], the file is written under a temporary name
/// next to `path` and renamed into place, so a failed write leaves any
/// existing file untouched.
pub fn write_with_anndata_rs(data: &CellData, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let write_err = |reason: String| IoError::Write {
        path: shown.clone(),
        reason,
    };
    // The name an output lock recognises as stale after a kill.
    let tmp = conceptlab_fs::temporary_name(path);
    let _config = GzipWrites::set(4);
    let result = (|| {
        let adata = AnnData::<H5>::new(&tmp).map_err(|e| write_err(format!("{e:#}")))?;
        let filled = to_anndata(data, &adata);
        let closed = adata.close().map_err(|e| write_err(format!("{e:#}")));
        filled?;
        closed
    })()
    .and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| write_err(format!("cannot rename into place: {e}")))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        // Errors from `to_anndata` name the temporary file; name the target.
        return Err(match e {
            IoError::Write { reason, .. } => write_err(reason),
            IoError::Invalid { key, reason, .. } => IoError::Invalid {
                path: shown,
                key,
                reason,
            },
            IoError::Data { error, .. } => IoError::Data { path: shown, error },
            other => other,
        });
    }
    Ok(())
}

/// Fills `adata` with `data`: X, obs/var names and columns, layers, `obsm`,
/// `varm`, `obsp`, `varp` and `uns` (existing layers, axis arrays and `uns`
/// entries are replaced). `raw` is not written.
///
/// Categorical and nullable integer/boolean columns are rewritten after
/// anndata-rs has written the frame, through a second handle
/// on the same store, so that category order, unused categories and the
/// `ordered` flag survive; see the module documentation.
pub fn to_anndata<B: Backend>(data: &CellData, adata: &AnnData<B>) -> Result<()> {
    let ctx = Ctx::of(adata);
    data.validate().map_err(|e| ctx.core(e))?;
    check_text(data, &ctx)?;
    if data.raw.is_some() {
        tracing::warn!(
            path = %ctx.path,
            "anndata-rs has no `.raw`: raw/X and raw/var are not written"
        );
    }

    adata
        .set_x(matrix_to_array_data(&data.x, &ctx, "X")?)
        .map_err(|e| ctx.write("X", e))?;
    adata
        .set_obs_names(frame_index(&data.obs))
        .map_err(|e| ctx.write("obs/_index", e))?;
    adata
        .set_var_names(frame_index(&data.var))
        .map_err(|e| ctx.write("var/_index", e))?;
    adata
        .set_obs(frame_to_polars(&data.obs, &ctx, "obs")?)
        .map_err(|e| ctx.write("obs", e))?;
    adata
        .set_var(frame_to_polars(&data.var, &ctx, "var")?)
        .map_err(|e| ctx.write("var", e))?;
    rewrite_exact_columns(adata, &ctx, "obs", &data.obs)?;
    rewrite_exact_columns(adata, &ctx, "var", &data.var)?;

    let arrays =
        |group: &str, map: &IndexMap<String, Matrix>| -> Result<Vec<(String, ArrayData)>> {
            map.iter()
                .map(|(k, m)| Ok((k.clone(), matrix_to_array_data(m, &ctx, &join(group, k))?)))
                .collect()
        };
    adata
        .set_layers(arrays("layers", &data.layers)?)
        .map_err(|e| ctx.write("layers", e))?;
    adata
        .set_obsm(arrays("obsm", &data.obsm)?)
        .map_err(|e| ctx.write("obsm", e))?;
    adata
        .set_varm(arrays("varm", &data.varm)?)
        .map_err(|e| ctx.write("varm", e))?;
    adata
        .set_obsp(arrays("obsp", &data.obsp)?)
        .map_err(|e| ctx.write("obsp", e))?;
    adata
        .set_varp(arrays("varp", &data.varp)?)
        .map_err(|e| ctx.write("varp", e))?;

    let uns = data
        .uns
        .iter()
        .map(|(k, v)| Ok((k.clone(), uns_to_data(v, &ctx, &join("uns", k))?)))
        .collect::<Result<Vec<_>>>()?;
    adata.set_uns(uns).map_err(|e| ctx.write("uns", e))?;
    Ok(())
}

/// Reads everything anndata-rs models from `adata` into a [`CellData`]
/// (`raw` is always `None`).
///
/// obs and var columns are read through a second read-only handle on the
/// store so that categoricals (categories, order, `ordered`) and nullable
/// columns come back exactly; when that handle cannot be opened, they are
/// taken from [`AnnDataOp::read_obs`]/[`AnnDataOp::read_var`] instead, where
/// categoricals arrive as plain strings (and become [`Column::Strings`]).
pub fn from_anndata<B: Backend>(adata: &AnnData<B>) -> Result<CellData> {
    let ctx = Ctx::of(adata);
    let x = adata
        .x()
        .get::<ArrayData>()
        .map_err(|e| ctx.read("X", e))?
        .ok_or_else(|| IoError::Missing {
            path: ctx.path.clone(),
            key: "X".to_owned(),
            expected: "the expression matrix `X`".to_owned(),
        })?;
    let x = array_data_to_matrix(x, &ctx, "X")?;
    let (n_obs, n_vars) = x.shape();

    let second = B::open(adata.filename());
    let (obs, var) = match &second {
        Ok(store) => (
            read_frame_exact::<B>(store, &ctx, "obs", adata.obs_names(), n_obs)?,
            read_frame_exact::<B>(store, &ctx, "var", adata.var_names(), n_vars)?,
        ),
        Err(e) => {
            tracing::warn!(
                path = %ctx.path,
                error = %format!("{e:#}"),
                "cannot open the store a second time; obs/var categoricals are read as strings"
            );
            let obs = adata.read_obs().map_err(|e| ctx.read("obs", e))?;
            let var = adata.read_var().map_err(|e| ctx.read("var", e))?;
            (
                polars_to_frame(&obs, names(adata.obs_names(), n_obs), &ctx, "obs")?,
                polars_to_frame(&var, names(adata.var_names(), n_vars), &ctx, "var")?,
            )
        }
    };
    if let Ok(store) = second {
        store.close().map_err(|e| ctx.read("/", e))?;
    }

    let data = CellData {
        x,
        obs,
        var,
        layers: read_axis_arrays(adata.layers(), &ctx, "layers")?,
        obsm: read_axis_arrays(adata.obsm(), &ctx, "obsm")?,
        varm: read_axis_arrays(adata.varm(), &ctx, "varm")?,
        obsp: read_axis_arrays(adata.obsp(), &ctx, "obsp")?,
        varp: read_axis_arrays(adata.varp(), &ctx, "varp")?,
        uns: read_uns(adata.uns(), &ctx)?,
        raw: None,
    };
    data.validate().map_err(|e| ctx.core(e))?;
    Ok(data)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The file name every error carries.
struct Ctx {
    path: String,
}

impl Ctx {
    fn of<B: Backend>(adata: &AnnData<B>) -> Self {
        Self {
            path: adata.filename().display().to_string(),
        }
    }

    fn read(&self, key: &str, e: impl Display) -> IoError {
        IoError::Read {
            path: self.path.clone(),
            key: key.to_owned(),
            message: format!("{e:#}"),
        }
    }

    fn write(&self, key: &str, e: impl Display) -> IoError {
        IoError::Write {
            path: self.path.clone(),
            reason: format!("`{key}`: {e:#}"),
        }
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> IoError {
        IoError::Invalid {
            path: self.path.clone(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn unsupported(
        &self,
        key: &str,
        encoding: impl Into<String>,
        supported: &'static str,
    ) -> IoError {
        IoError::Unsupported {
            path: self.path.clone(),
            key: key.to_owned(),
            encoding: encoding.into(),
            supported,
        }
    }

    fn core(&self, error: CoreError) -> IoError {
        IoError::Data {
            path: self.path.clone(),
            error,
        }
    }
}

fn join(parent: &str, name: &str) -> String {
    format!("{parent}/{name}")
}

/// Sets anndata-rs's (thread-local) default write configuration to gzip and
/// restores the previous one when dropped.
struct GzipWrites(Option<WriteConfig>);

impl GzipWrites {
    fn set(level: u8) -> Self {
        let previous = get_default_write_config();
        set_default_write_config(WriteConfig {
            compression: Some(AdCompression::Gzip(level)),
            block_size: None,
        });
        Self(Some(previous))
    }
}

impl Drop for GzipWrites {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            set_default_write_config(previous);
        }
    }
}

/// Rejects what HDF5 cannot store: NUL characters in strings (anndata-hdf5
/// would panic on them) and `/` in element or column names.
fn check_text(data: &CellData, ctx: &Ctx) -> Result<()> {
    let nul = |key: &str, s: &str| -> Result<()> {
        if s.contains('\0') {
            Err(ctx.invalid(key, format!("string {s:?} contains a NUL character")))
        } else {
            Ok(())
        }
    };
    let name = |key: &str, s: &str| -> Result<()> {
        if s.contains('/') || s.is_empty() {
            return Err(ctx.invalid(key, format!("name {s:?} is empty or contains `/`")));
        }
        nul(key, s)
    };
    let values = |key: &str, v: &Values| -> Result<()> {
        if let Values::Strings(s) = v {
            s.iter().try_for_each(|s| nul(key, s))?;
        }
        Ok(())
    };
    let column = |key: &str, c: &Column| -> Result<()> {
        match c {
            Column::Numeric(_) => Ok(()),
            Column::Strings(s) => s.iter().try_for_each(|s| nul(key, s)),
            Column::Categorical(c) => values(key, &c.categories),
            Column::Nullable { values: v, .. } => values(key, v),
        }
    };
    let frame = |key: &str, f: &Frame| -> Result<()> {
        name(key, &f.index_name)?;
        f.index.iter().try_for_each(|s| nul(key, s))?;
        for (n, c) in &f.columns {
            let key = join(key, n);
            name(&key, n)?;
            column(&key, c)?;
        }
        Ok(())
    };
    fn uns(
        key: &str,
        v: &UnsValue,
        nul: &dyn Fn(&str, &str) -> Result<()>,
        name: &dyn Fn(&str, &str) -> Result<()>,
        frame: &dyn Fn(&str, &Frame) -> Result<()>,
        column: &dyn Fn(&str, &Column) -> Result<()>,
    ) -> Result<()> {
        match v {
            UnsValue::Mapping(m) => m.iter().try_for_each(|(k, v)| {
                let key = join(key, k);
                name(&key, k)?;
                uns(&key, v, nul, name, frame, column)
            }),
            UnsValue::String(s) => nul(key, s),
            UnsValue::StringArray { values, .. } => values.iter().try_for_each(|s| nul(key, s)),
            UnsValue::Frame(f) => frame(key, f),
            UnsValue::Column(c) => column(key, c),
            UnsValue::Records(fields) => fields.iter().try_for_each(|(n, v)| {
                let key = join(key, n);
                name(&key, n)?;
                match v {
                    Values::Strings(s) => s.iter().try_for_each(|s| nul(&key, s)),
                    Values::Numbers(_) => Ok(()),
                }
            }),
            UnsValue::Array(_) | UnsValue::Sparse(_) => Ok(()),
        }
    }

    frame("obs", &data.obs)?;
    frame("var", &data.var)?;
    for (group, map) in [
        ("layers", &data.layers),
        ("obsm", &data.obsm),
        ("varm", &data.varm),
        ("obsp", &data.obsp),
        ("varp", &data.varp),
    ] {
        map.keys().try_for_each(|k| name(&join(group, k), k))?;
    }
    for (k, v) in &data.uns {
        let key = join("uns", k);
        name(&key, k)?;
        uns(&key, v, &nul, &name, &frame, &column)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Arrays and matrices
// ---------------------------------------------------------------------------

/// A dense anndata-rs array in our terms.
enum Plain {
    Numbers(DenseArray),
    Strings(Vec<usize>, Vec<String>),
}

/// The elements of `a` in row-major order, without copying when the array
/// is already contiguous.
fn array_into_vec<T: Clone>(a: ArrayD<T>) -> (Vec<usize>, Vec<T>) {
    let shape = a.shape().to_vec();
    let n = a.len();
    if a.is_standard_layout() {
        let (mut v, offset) = a.into_raw_vec_and_offset();
        let offset = offset.unwrap_or(0);
        if offset > 0 {
            v.drain(..offset.min(v.len()));
        }
        v.truncate(n);
        (shape, v)
    } else {
        (shape, a.iter().cloned().collect())
    }
}

fn dyn_to_plain(a: DynArray) -> Plain {
    macro_rules! convert {
        ($($v:ident),*) => {
            match a {
                $(DynArray::$v(x) => {
                    let (shape, data) = array_into_vec(x);
                    Plain::Numbers(DenseArray { shape, data: NumVec::$v(data) })
                })*
                DynArray::String(x) => {
                    let (shape, data) = array_into_vec(x);
                    Plain::Strings(shape, data)
                }
            }
        };
    }
    convert!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
}

fn numvec_to_dyn(shape: &[usize], data: &NumVec, ctx: &Ctx, key: &str) -> Result<DynArray> {
    macro_rules! convert {
        ($($v:ident),*) => {
            match data {
                $(NumVec::$v(v) => ArrayD::from_shape_vec(IxDyn(shape), v.clone()).map(DynArray::$v),)*
            }
        };
    }
    convert!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
        .map_err(|e| ctx.invalid(key, format!("shape {shape:?}: {e}")))
}

fn strings_to_dyn(shape: &[usize], values: &[String], ctx: &Ctx, key: &str) -> Result<DynArray> {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec())
        .map(DynArray::String)
        .map_err(|e| ctx.invalid(key, format!("shape {shape:?}: {e}")))
}

fn values_to_dyn(values: &Values, ctx: &Ctx, key: &str) -> Result<DynArray> {
    match values {
        Values::Strings(s) => strings_to_dyn(&[s.len()], s, ctx, key),
        Values::Numbers(n) => numvec_to_dyn(&[n.len()], n, ctx, key),
    }
}

/// Whether the minor indices of every major slice are sorted (`strict`:
/// strictly increasing, i.e. also free of duplicates).
fn slices_sorted(indptr: &[usize], indices: &[usize], strict: bool) -> bool {
    indptr.windows(2).all(|w| {
        indices.get(w[0]..w[1]).is_some_and(|s| {
            s.windows(2)
                .all(|p| if strict { p[0] < p[1] } else { p[0] <= p[1] })
        })
    })
}

/// Sorts the minor indices of every major slice, moving values along (a
/// stable sort: duplicates keep their order); `None` if `indptr` does not fit
/// the other two.
fn sort_slices<T: Clone>(
    indptr: &[usize],
    indices: &[usize],
    values: &[T],
) -> Option<(Vec<usize>, Vec<T>)> {
    let mut out_indices = Vec::with_capacity(indices.len());
    let mut out_values = Vec::with_capacity(values.len());
    for w in indptr.windows(2) {
        let mut slice: Vec<(usize, T)> = indices
            .get(w[0]..w[1])?
            .iter()
            .copied()
            .zip(values.get(w[0]..w[1])?.iter().cloned())
            .collect();
        slice.sort_by_key(|(i, _)| *i);
        for (i, v) in slice {
            out_indices.push(i);
            out_values.push(v);
        }
    }
    Some((out_indices, out_values))
}

/// A sparse matrix as anndata-rs can store *and read back*: its CSR reader
/// rejects unsorted column indices (but accepts sorted duplicates, as a
/// non-canonical CSR) and it has no non-canonical CSC at all. So indices are
/// sorted within each row/column (the same matrix, in a different storage
/// order), CSR duplicates are kept and CSC duplicates are an error.
fn sparse_to_array_data(s: &SparseMatrix, ctx: &Ctx, key: &str) -> Result<ArrayData> {
    let (rows, cols) = s.shape;
    let major = match s.format {
        SparseFormat::Csr => rows,
        SparseFormat::Csc => cols,
    };
    let indptr = s
        .indptr
        .iter()
        .map(|&p| usize::try_from(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.invalid(key, format!("indptr: {e}")))?;
    if indptr.len() != major + 1 || s.indices.len() != s.data.len() {
        return Err(ctx.invalid(key, "inconsistent sparse structure"));
    }
    let indices: Vec<usize> = s.indices.iter().map(|&i| i as usize).collect();
    let sorted = slices_sorted(&indptr, &indices, false);
    let bad = |e: nalgebra_sparse::SparseFormatError| ctx.invalid(key, e.to_string());
    macro_rules! convert {
        ($($v:ident),*) => {
            match &s.data {
                $(NumVec::$v(v) => {
                    let (indices, values) = if sorted {
                        (indices, v.clone())
                    } else {
                        sort_slices(&indptr, &indices, v)
                            .ok_or_else(|| ctx.invalid(key, "inconsistent sparse structure"))?
                    };
                    let canonical = slices_sorted(&indptr, &indices, true);
                    match s.format {
                        SparseFormat::Csr if canonical => ArrayData::from(
                            CsrMatrix::try_from_csr_data(rows, cols, indptr, indices, values)
                                .map_err(bad)?,
                        ),
                        SparseFormat::Csr => ArrayData::from(CsrNonCanonical::from_csr_data(
                            rows, cols, indptr, indices, values,
                        )),
                        SparseFormat::Csc if canonical => ArrayData::from(
                            CscMatrix::try_from_csc_data(rows, cols, indptr, indices, values)
                                .map_err(bad)?,
                        ),
                        SparseFormat::Csc => {
                            return Err(ctx.invalid(
                                key,
                                "CSC matrix with duplicate entries: anndata-rs cannot store it",
                            ));
                        }
                    }
                })*
            }
        };
    }
    Ok(convert!(
        Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64
    ))
}

fn matrix_to_array_data(m: &Matrix, ctx: &Ctx, key: &str) -> Result<ArrayData> {
    match m {
        Matrix::Dense(d) => Ok(ArrayData::Array(numvec_to_dyn(
            &d.shape, &d.data, ctx, key,
        )?)),
        Matrix::Sparse(s) => sparse_to_array_data(s, ctx, key),
    }
}

fn sparse_from_parts(
    format: SparseFormat,
    shape: (usize, usize),
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: NumVec,
    ctx: &Ctx,
    key: &str,
) -> Result<SparseMatrix> {
    let indptr = indptr.into_iter().map(|p| p as u64).collect();
    let indices = indices
        .into_iter()
        .map(u32::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.invalid(key, format!("sparse index does not fit in 32 bits: {e}")))?;
    SparseMatrix::new(format, shape, indptr, indices, data).map_err(|e| ctx.core(e))
}

fn array_data_to_matrix(a: ArrayData, ctx: &Ctx, key: &str) -> Result<Matrix> {
    macro_rules! sparse {
        ($value:expr, $dyn:ident, $format:expr, $($v:ident),*) => {
            match $value {
                $($dyn::$v(m) => {
                    let shape = (m.nrows(), m.ncols());
                    let (indptr, indices, data) = m.disassemble();
                    Matrix::Sparse(sparse_from_parts(
                        $format, shape, indptr, indices, NumVec::$v(data), ctx, key,
                    )?)
                })*
                $dyn::String(_) => {
                    return Err(ctx.unsupported(key, "sparse matrix of strings", MATRIX_KINDS))
                }
            }
        };
    }
    Ok(match a {
        ArrayData::Array(d) => match dyn_to_plain(d) {
            Plain::Numbers(d) => Matrix::Dense(d),
            Plain::Strings(..) => {
                return Err(ctx.unsupported(key, "string array", MATRIX_KINDS));
            }
        },
        ArrayData::CsrMatrix(m) => sparse!(
            m,
            DynCsrMatrix,
            SparseFormat::Csr,
            Bool,
            I8,
            I16,
            I32,
            I64,
            U8,
            U16,
            U32,
            U64,
            F32,
            F64
        ),
        ArrayData::CsrNonCanonical(m) => sparse!(
            m,
            DynCsrNonCanonical,
            SparseFormat::Csr,
            Bool,
            I8,
            I16,
            I32,
            I64,
            U8,
            U16,
            U32,
            U64,
            F32,
            F64
        ),
        ArrayData::CscMatrix(m) => sparse!(
            m,
            DynCscMatrix,
            SparseFormat::Csc,
            Bool,
            I8,
            I16,
            I32,
            I64,
            U8,
            U16,
            U32,
            U64,
            F32,
            F64
        ),
        ArrayData::DataFrame(_) => {
            return Err(ctx.unsupported(key, "dataframe", MATRIX_KINDS));
        }
    })
}

fn read_axis_arrays<A: AxisArraysOp>(
    arrays: A,
    ctx: &Ctx,
    group: &str,
) -> Result<IndexMap<String, Matrix>> {
    let mut keys = arrays.keys();
    keys.sort();
    let mut out = IndexMap::with_capacity(keys.len());
    for k in keys {
        let key = join(group, &k);
        let Some(a) = arrays
            .get_item::<ArrayData>(&k)
            .map_err(|e| ctx.read(&key, e))?
        else {
            continue;
        };
        out.insert(k, array_data_to_matrix(a, ctx, &key)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

fn frame_index(frame: &Frame) -> DataFrameIndex {
    let mut index = DataFrameIndex::from(frame.index.clone());
    index.index_name = frame.index_name.clone();
    index
}

/// obs/var names, or `"0".."n-1"` when the element has none.
fn names(index: DataFrameIndex, n: usize) -> (String, Vec<String>) {
    if index.is_empty() && n > 0 {
        (
            Frame::DEFAULT_INDEX_NAME.to_owned(),
            (0..n).map(|i| i.to_string()).collect(),
        )
    } else {
        let name = index.index_name.clone();
        (name, index.into_vec())
    }
}

/// A polars `Categorical` series whose mapping lists the categories in their
/// original order (unused ones included), so that the physical ids are our
/// codes. Numeric categories are rendered as text.
fn categorical_series(name: &str, c: &Categorical) -> polars::prelude::PolarsResult<Series> {
    let cats = Categories::random(
        PlSmallStr::from_static("conceptlab"),
        CategoricalPhysical::U32,
    );
    // The dtype holds the mapping alive while the categories are inserted.
    let dtype = DataType::from_categories(cats.clone());
    let mapping = cats.mapping();
    for i in 0..c.categories.len() {
        let label = c.categories.label(i).unwrap_or_default();
        mapping.insert_cat(&label)?;
    }
    let ids = UInt32Chunked::from_iter_options(
        PlSmallStr::from(name),
        c.codes.iter().map(|&k| u32::try_from(k).ok()),
    );
    Ok(Categorical32Chunked::from_cats_and_dtype(ids, dtype).into_series())
}

fn numvec_series(name: &str, v: &NumVec, mask: Option<&[bool]>) -> Series {
    let name = PlSmallStr::from(name);
    macro_rules! convert {
        ($($v:ident),*) => {
            match (v, mask) {
                $((NumVec::$v(v), None) => Series::new(name, v.as_slice()),
                  (NumVec::$v(v), Some(mask)) => Series::new(
                      name,
                      v.iter()
                          .zip(mask)
                          .map(|(x, &m)| (!m).then_some(*x))
                          .collect::<Vec<_>>(),
                  ),)*
            }
        };
    }
    convert!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
}

fn column_series(name: &str, column: &Column) -> polars::prelude::PolarsResult<Series> {
    Ok(match column {
        Column::Numeric(v) => numvec_series(name, v, None),
        Column::Strings(s) => Series::new(PlSmallStr::from(name), s.as_slice()),
        Column::Categorical(c) => categorical_series(name, c)?,
        Column::Nullable {
            values: Values::Numbers(v),
            mask,
        } => numvec_series(name, v, Some(mask)),
        Column::Nullable {
            values: Values::Strings(s),
            mask,
        } => Series::new(
            PlSmallStr::from(name),
            s.iter()
                .zip(mask)
                .map(|(x, &m)| (!m).then_some(x.as_str()))
                .collect::<Vec<_>>(),
        ),
    })
}

fn frame_to_polars(frame: &Frame, ctx: &Ctx, key: &str) -> Result<DataFrame> {
    let columns = frame
        .columns
        .iter()
        .map(|(name, c)| {
            column_series(name, c)
                .map(IntoColumn::into_column)
                .map_err(|e| ctx.invalid(&join(key, name), e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    DataFrame::new(frame.len(), columns).map_err(|e| ctx.invalid(key, e.to_string()))
}

/// Columns whose anndata-rs encoding would lose information and that are
/// therefore rewritten exactly after anndata-rs has written the frame:
/// categoricals, and nullable integer/boolean columns (anndata-rs writes
/// those as plain arrays when nothing is missing, and zeros under the mask).
fn needs_exact_write(column: &Column) -> bool {
    match column {
        Column::Categorical(_) => true,
        Column::Nullable {
            values: Values::Numbers(v),
            ..
        } => !v.dtype().is_float(),
        _ => false,
    }
}

fn rewrite_exact_columns<B: Backend>(
    adata: &AnnData<B>,
    ctx: &Ctx,
    key: &str,
    frame: &Frame,
) -> Result<()> {
    let targets: Vec<(&String, &Column)> = frame
        .columns
        .iter()
        .filter(|(_, c)| needs_exact_write(c))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let store = B::open_rw(adata.filename()).map_err(|e| ctx.write(key, e))?;
    let group = store.open_group(key).map_err(|e| ctx.write(key, e))?;
    for (name, column) in targets {
        let col_key = join(key, name);
        write_exact_column::<B>(&group, name, column, ctx, &col_key)?;
    }
    store.close().map_err(|e| ctx.write(key, e))
}

fn write_exact_column<B: Backend>(
    group: &B::Group,
    name: &str,
    column: &Column,
    ctx: &Ctx,
    key: &str,
) -> Result<()> {
    let n = column.len();
    let (encoding, version, parts): (&str, &str, Vec<(&str, DynArray)>) = match column {
        Column::Categorical(c) => (
            "categorical",
            "0.2.0",
            vec![
                (
                    "codes",
                    numvec_to_dyn(&[n], &NumVec::I32(c.codes.clone()), ctx, key)?,
                ),
                ("categories", values_to_dyn(&c.categories, ctx, key)?),
            ],
        ),
        Column::Nullable {
            values: Values::Numbers(v),
            mask,
        } => (
            if v.dtype() == conceptlab_core::DType::Bool {
                "nullable-boolean"
            } else {
                "nullable-integer"
            },
            "0.1.0",
            vec![
                ("values", numvec_to_dyn(&[n], v, ctx, key)?),
                (
                    "mask",
                    numvec_to_dyn(&[n], &NumVec::Bool(mask.clone()), ctx, key)?,
                ),
            ],
        ),
        _ => return Ok(()),
    };
    if group.exists(name).map_err(|e| ctx.write(key, e))? {
        group.delete(name).map_err(|e| ctx.write(key, e))?;
    }
    let mut g = group.new_group(name).map_err(|e| ctx.write(key, e))?;
    let mut attrs: Vec<(&str, anndata::backend::Value)> = vec![
        ("encoding-type", encoding.into()),
        ("encoding-version", version.into()),
    ];
    if let Column::Categorical(c) = column {
        attrs.push(("ordered", c.ordered.into()));
    }
    for (attr, value) in attrs {
        g.new_json_attr(attr, &value)
            .map_err(|e| ctx.write(key, e))?;
    }
    for (part, array) in parts {
        array
            .write::<B, _>(&g, part)
            .map_err(|e| ctx.write(key, e))?;
    }
    Ok(())
}

/// A boolean attribute as anndata-hdf5 decodes it: HDF5 booleans become JSON
/// booleans, the `int8` that other writers use becomes a number.
fn attr_bool<B: Backend>(container: &DataContainer<B>, name: &str) -> bool {
    match container.get_json_attr(name) {
        Ok(anndata::backend::Value::Bool(b)) => b,
        Ok(anndata::backend::Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

fn read_values<B: Backend>(group: &B::Group, part: &str, ctx: &Ctx, key: &str) -> Result<Values> {
    let key = join(key, part);
    let dataset = group.open_dataset(part).map_err(|e| ctx.read(&key, e))?;
    let array =
        DynArray::read(&DataContainer::<B>::Dataset(dataset)).map_err(|e| ctx.read(&key, e))?;
    Ok(match dyn_to_plain(array) {
        Plain::Numbers(d) => Values::Numbers(d.data),
        Plain::Strings(_, s) => Values::Strings(s),
    })
}

fn read_column<B: Backend>(container: &DataContainer<B>, ctx: &Ctx, key: &str) -> Result<Column> {
    let encoding: String = match container {
        DataContainer::Dataset(_) => container
            .get_attr("encoding-type")
            .unwrap_or_else(|_| "array".to_owned()),
        _ => container
            .get_attr("encoding-type")
            .map_err(|e| ctx.read(key, e))?,
    };
    match encoding.as_str() {
        "array" | "string-array" => {
            let array = DynArray::read(container).map_err(|e| ctx.read(key, e))?;
            match dyn_to_plain(array) {
                Plain::Numbers(d) if d.shape.len() == 1 => Ok(Column::Numeric(d.data)),
                Plain::Strings(shape, s) if shape.len() == 1 => Ok(Column::Strings(s)),
                _ => Err(ctx.invalid(key, "a data frame column must be one-dimensional")),
            }
        }
        "categorical" => {
            let group = container.as_group().map_err(|e| ctx.read(key, e))?;
            let codes = match read_values::<B>(group, "codes", ctx, key)? {
                Values::Numbers(n) if n.dtype().is_integer() => {
                    n.to_f64().into_iter().map(|c| c as i32).collect::<Vec<_>>()
                }
                _ => return Err(ctx.invalid(&join(key, "codes"), "codes must be integers")),
            };
            let categories = read_values::<B>(group, "categories", ctx, key)?;
            let ordered = attr_bool(container, "ordered");
            Categorical::new(codes, categories, ordered)
                .map(Column::Categorical)
                .map_err(|e| ctx.core(e))
        }
        "nullable-integer" | "nullable-boolean" | "nullable-string-array" => {
            let group = container.as_group().map_err(|e| ctx.read(key, e))?;
            let values = read_values::<B>(group, "values", ctx, key)?;
            let mask = match read_values::<B>(group, "mask", ctx, key)? {
                Values::Numbers(NumVec::Bool(m)) => m,
                _ => return Err(ctx.invalid(&join(key, "mask"), "mask must be boolean")),
            };
            if mask.len() != values.len() {
                return Err(ctx.invalid(key, "values and mask differ in length"));
            }
            Ok(Column::Nullable { values, mask })
        }
        other => Err(ctx.unsupported(key, other, COLUMN_ENCODINGS)),
    }
}

/// obs or var read column by column through `store`, so that every encoding
/// comes back exactly.
fn read_frame_exact<B: Backend>(
    store: &B::Store,
    ctx: &Ctx,
    key: &str,
    index: DataFrameIndex,
    n: usize,
) -> Result<Frame> {
    let (index_name, index) = names(index, n);
    let mut frame = Frame {
        index_name,
        index,
        columns: IndexMap::new(),
    };
    if !store.exists(key).map_err(|e| ctx.read(key, e))? {
        return Ok(frame);
    }
    let group = store.open_group(key).map_err(|e| ctx.read(key, e))?;
    // Written as an empty float array by h5py when there are no columns.
    let order: Vec<String> = match group.get_json_attr("column-order") {
        Ok(anndata::backend::Value::Array(a)) if a.is_empty() => Vec::new(),
        Ok(v) => serde_json_like::strings(&v)
            .ok_or_else(|| ctx.invalid(key, "`column-order` must be a list of strings"))?,
        Err(_) => Vec::new(),
    };
    for name in order {
        let col_key = join(key, &name);
        let container =
            DataContainer::<B>::open(&group, &name).map_err(|e| ctx.read(&col_key, e))?;
        let column = read_column::<B>(&container, ctx, &col_key)?;
        frame.insert(name, column).map_err(|e| ctx.core(e))?;
    }
    Ok(frame)
}

/// Just enough JSON handling for attribute values, without a serde_json
/// dependency of our own (anndata re-exports its `Value`).
mod serde_json_like {
    use anndata::backend::Value;

    pub fn strings(v: &Value) -> Option<Vec<String>> {
        match v {
            Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
            Value::String(s) => Some(vec![s.clone()]),
            _ => None,
        }
    }
}

/// A polars column as anndata-rs's reader produces it, in our terms:
/// numbers and booleans with nulls become nullable columns (floats get NaN),
/// strings stay strings, polars categoricals are read as their labels.
fn polars_column(s: &Series, ctx: &Ctx, key: &str) -> Result<Column> {
    let err = |e: polars::prelude::PolarsError| ctx.read(key, e);
    let has_nulls = s.null_count() > 0;
    macro_rules! numeric {
        ($accessor:ident, $variant:ident, $default:expr) => {{
            let ca = s.$accessor().map_err(err)?;
            let values: Vec<_> = ca.iter().map(|x| x.unwrap_or($default)).collect();
            if has_nulls {
                let mask = ca.iter().map(|x| x.is_none()).collect();
                Column::Nullable {
                    values: Values::Numbers(NumVec::$variant(values)),
                    mask,
                }
            } else {
                Column::Numeric(NumVec::$variant(values))
            }
        }};
    }
    macro_rules! float {
        ($accessor:ident, $variant:ident, $nan:expr) => {{
            let ca = s.$accessor().map_err(err)?;
            Column::Numeric(NumVec::$variant(
                ca.iter().map(|x| x.unwrap_or($nan)).collect(),
            ))
        }};
    }
    Ok(match s.dtype() {
        DataType::Boolean => numeric!(bool, Bool, false),
        DataType::Int8 => numeric!(i8, I8, 0),
        DataType::Int16 => numeric!(i16, I16, 0),
        DataType::Int32 => numeric!(i32, I32, 0),
        DataType::Int64 => numeric!(i64, I64, 0),
        DataType::UInt8 => numeric!(u8, U8, 0),
        DataType::UInt16 => numeric!(u16, U16, 0),
        DataType::UInt32 => numeric!(u32, U32, 0),
        DataType::UInt64 => numeric!(u64, U64, 0),
        DataType::Float32 => float!(f32, F32, f32::NAN),
        DataType::Float64 => float!(f64, F64, f64::NAN),
        DataType::String | DataType::Categorical(..) | DataType::Enum(..) => {
            let s = s.cast(&DataType::String).map_err(err)?;
            let ca = s.str().map_err(err)?;
            let values: Vec<String> = ca.iter().map(|x| x.unwrap_or("").to_owned()).collect();
            if has_nulls {
                Column::Nullable {
                    mask: ca.iter().map(|x| x.is_none()).collect(),
                    values: Values::Strings(values),
                }
            } else {
                Column::Strings(values)
            }
        }
        other => {
            return Err(ctx.unsupported(key, format!("polars {other}"), COLUMN_ENCODINGS));
        }
    })
}

fn polars_to_frame(
    df: &DataFrame,
    (index_name, index): (String, Vec<String>),
    ctx: &Ctx,
    key: &str,
) -> Result<Frame> {
    let mut frame = Frame {
        index_name,
        index,
        columns: IndexMap::new(),
    };
    for c in df.columns() {
        let name = c.name().to_string();
        let column = polars_column(c.as_materialized_series(), ctx, &join(key, &name))?;
        frame.insert(name, column).map_err(|e| ctx.core(e))?;
    }
    Ok(frame)
}

// ---------------------------------------------------------------------------
// uns
// ---------------------------------------------------------------------------

fn scalar_from_numvec(v: &NumVec) -> Option<DynScalar> {
    macro_rules! convert {
        ($($v:ident),*) => {
            match v {
                $(NumVec::$v(v) => v.first().map(|x| DynScalar::$v(*x)),)*
            }
        };
    }
    convert!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
}

fn scalar_to_numvec(s: DynScalar) -> std::result::Result<NumVec, String> {
    macro_rules! convert {
        ($($v:ident),*) => {
            match s {
                $(DynScalar::$v(x) => Ok(NumVec::$v(vec![x])),)*
                DynScalar::String(s) => Err(s),
            }
        };
    }
    convert!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
}

fn uns_to_data(v: &UnsValue, ctx: &Ctx, key: &str) -> Result<Data> {
    Ok(match v {
        UnsValue::Mapping(m) => {
            let entries = m
                .iter()
                .map(|(k, v)| Ok((k.clone(), uns_to_data(v, ctx, &join(key, k))?)))
                .collect::<Result<HashMap<_, _>>>()?;
            Data::Mapping(Mapping::from(entries))
        }
        UnsValue::String(s) => Data::Scalar(DynScalar::String(s.clone())),
        UnsValue::Array(a) if a.shape.is_empty() => Data::Scalar(
            scalar_from_numvec(&a.data)
                .ok_or_else(|| ctx.invalid(key, "zero-dimensional array without a value"))?,
        ),
        UnsValue::Array(a) => Data::ArrayData(ArrayData::Array(numvec_to_dyn(
            &a.shape, &a.data, ctx, key,
        )?)),
        UnsValue::StringArray { shape, values } => {
            Data::ArrayData(ArrayData::Array(strings_to_dyn(shape, values, ctx, key)?))
        }
        UnsValue::Sparse(s) => Data::ArrayData(sparse_to_array_data(s, ctx, key)?),
        UnsValue::Frame(f) => Data::ArrayData(ArrayData::DataFrame(frame_to_polars(f, ctx, key)?)),
        UnsValue::Column(Column::Numeric(n)) => {
            Data::ArrayData(ArrayData::Array(numvec_to_dyn(&[n.len()], n, ctx, key)?))
        }
        UnsValue::Column(Column::Strings(s)) => {
            Data::ArrayData(ArrayData::Array(strings_to_dyn(&[s.len()], s, ctx, key)?))
        }
        // anndata-rs has no rec-array: the fields become data frame columns.
        UnsValue::Records(fields) => {
            let columns = fields
                .iter()
                .map(|(name, values)| {
                    let column = match values {
                        Values::Numbers(n) => numvec_series(name, n, None),
                        Values::Strings(s) => {
                            Series::new(PlSmallStr::from(name.as_str()), s.as_slice())
                        }
                    };
                    column.into_column()
                })
                .collect();
            Data::ArrayData(ArrayData::DataFrame(
                DataFrame::new_infer_height(columns)
                    .map_err(|e| ctx.invalid(key, e.to_string()))?,
            ))
        }
        UnsValue::Column(c) => {
            return Err(ctx.invalid(
                key,
                format!(
                    "a {} array outside a data frame has no anndata-rs representation",
                    c.describe()
                ),
            ));
        }
    })
}

fn data_to_uns(d: Data, ctx: &Ctx, key: &str) -> Result<UnsValue> {
    Ok(match d {
        Data::Scalar(s) => match scalar_to_numvec(s) {
            Ok(n) => UnsValue::Array(DenseArray::scalar(n).map_err(|e| ctx.core(e))?),
            Err(s) => UnsValue::String(s),
        },
        Data::Mapping(m) => {
            let mut entries: Vec<(String, Data)> = HashMap::from(m).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = IndexMap::with_capacity(entries.len());
            for (k, v) in entries {
                let value = data_to_uns(v, ctx, &join(key, &k))?;
                out.insert(k, value);
            }
            UnsValue::Mapping(out)
        }
        Data::ArrayData(ArrayData::Array(a)) => match dyn_to_plain(a) {
            Plain::Numbers(d) => UnsValue::Array(d),
            Plain::Strings(shape, values) => UnsValue::StringArray { shape, values },
        },
        Data::ArrayData(ArrayData::DataFrame(df)) => {
            let n = df.height();
            UnsValue::Frame(polars_to_frame(
                &df,
                names(DataFrameIndex::empty(), n),
                ctx,
                key,
            )?)
        }
        Data::ArrayData(sparse) => match array_data_to_matrix(sparse, ctx, key)? {
            Matrix::Sparse(s) => UnsValue::Sparse(s),
            Matrix::Dense(d) => UnsValue::Array(d),
        },
    })
}

fn read_uns<E: ElemCollectionOp>(uns: E, ctx: &Ctx) -> Result<IndexMap<String, UnsValue>> {
    let mut keys = uns.keys();
    keys.sort();
    let mut out = IndexMap::with_capacity(keys.len());
    for k in keys {
        let key = join("uns", &k);
        let Some(d) = uns.get_item::<Data>(&k).map_err(|e| ctx.read(&key, e))? else {
            continue;
        };
        let value = data_to_uns(d, ctx, &key)?;
        out.insert(k, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            path: "test".to_owned(),
        }
    }

    #[test]
    fn polars_categorical_keeps_category_order_and_unused_categories() {
        let cats = Values::Strings(vec!["z".into(), "a".into(), "unused".into()]);
        let c = Categorical::new(vec![1, -1, 0, 1], cats, false).unwrap();
        let s = categorical_series("level", &c).unwrap();
        let ca = s.cat32().unwrap();
        let labels: Vec<Option<&str>> = ca.iter_str().collect();
        assert_eq!(labels, vec![Some("a"), None, Some("z"), Some("a")]);
        // Physical ids are our codes: the mapping lists the categories in
        // their original order, the unused one included.
        let ids: Vec<Option<u32>> = ca.physical().iter().collect();
        assert_eq!(ids, vec![Some(1), None, Some(0), Some(1)]);
        let mapping = ca.get_mapping();
        let order: Vec<&str> = (0..3).filter_map(|i| mapping.cat_to_str(i)).collect();
        assert_eq!(order, vec!["z", "a", "unused"]);
    }

    #[test]
    fn polars_columns_with_nulls() {
        let ints = Series::new("n".into(), vec![Some(1i64), None, Some(3)]);
        assert_eq!(
            polars_column(&ints, &ctx(), "n").unwrap(),
            Column::Nullable {
                values: Values::Numbers(NumVec::I64(vec![1, 0, 3])),
                mask: vec![false, true, false],
            }
        );
        let floats = Series::new("f".into(), vec![Some(1.5f32), None]);
        let Column::Numeric(NumVec::F32(f)) = polars_column(&floats, &ctx(), "f").unwrap() else {
            panic!("float column")
        };
        assert_eq!(f[0], 1.5);
        assert!(f[1].is_nan());
        let strings = Series::new("s".into(), vec![Some("a"), None]);
        assert_eq!(
            polars_column(&strings, &ctx(), "s").unwrap(),
            Column::Nullable {
                values: Values::Strings(vec!["a".into(), String::new()]),
                mask: vec![false, true],
            }
        );
        let plain = Series::new("p".into(), vec!["x", "y"]);
        assert_eq!(
            polars_column(&plain, &ctx(), "p").unwrap(),
            Column::Strings(vec!["x".into(), "y".into()])
        );
        // A polars categorical is read by its labels.
        let c = Categorical::new(
            vec![0, 1],
            Values::Strings(vec!["u".into(), "v".into()]),
            false,
        )
        .unwrap();
        let cat = categorical_series("c", &c).unwrap();
        assert_eq!(
            polars_column(&cat, &ctx(), "c").unwrap(),
            Column::Strings(vec!["u".into(), "v".into()])
        );
    }

    #[test]
    fn frame_to_polars_and_back() {
        let mut frame = Frame::with_index(vec!["a".into(), "b".into()]);
        frame
            .insert("x", Column::Numeric(NumVec::U16(vec![1, 2])))
            .unwrap();
        frame
            .insert(
                "ok",
                Column::Nullable {
                    values: Values::Numbers(NumVec::Bool(vec![true, false])),
                    mask: vec![false, true],
                },
            )
            .unwrap();
        let df = frame_to_polars(&frame, &ctx(), "obs").unwrap();
        assert_eq!(df.height(), 2);
        let back = polars_to_frame(
            &df,
            (frame.index_name.clone(), frame.index.clone()),
            &ctx(),
            "obs",
        )
        .unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn slice_sorting_is_stable_and_detects_order() {
        let indptr = [0, 3, 4];
        let indices = [2, 0, 2, 1];
        assert!(!slices_sorted(&indptr, &indices, false));
        let (i, v) = sort_slices(&indptr, &indices, &["a", "b", "c", "d"]).unwrap();
        assert_eq!(i, vec![0, 2, 2, 1]);
        assert_eq!(v, vec!["b", "a", "c", "d"]);
        assert!(slices_sorted(&indptr, &i, false));
        assert!(!slices_sorted(&indptr, &i, true));
        assert!(sort_slices(&[0, 5], &indices, &[1, 2, 3, 4]).is_none());
    }
}
