//! Writing a [`CellData`] as an `.h5ad` file in anndata's current encoding
//! (the one anndata 0.8-0.12 writes), readable by stock h5py.
//!
//! Only gzip (deflate) or no compression is ever used: any other HDF5 filter
//! (blosc, zstd, lz4) needs a plugin that stock h5py does not ship.

use std::path::Path;

use conceptlab_core::{
    CellData, Column, DType, DenseArray, Frame, Matrix, NumVec, SparseFormat, SparseMatrix,
    UnsValue, Values,
};
use hdf5_pure::{
    AttrValue, CharacterSet, CompoundTypeBuilder, DatasetBuilder, Datatype, EnumTypeBuilder,
    FileAccessProperties, FileBuilder, FileLocking, FinishedGroup, GroupBuilder, MaxExtent,
    MemoryStrategy, StringPadding, SyncPolicy, make_f32_type, make_f64_type, make_i8_type,
    make_i16_type, make_i32_type, make_i64_type, make_u8_type, make_u16_type, make_u32_type,
    make_u64_type,
};
use indexmap::IndexMap;

use crate::error::{IoError, Result};

/// Compression applied to numeric datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// Deflate at the given level (1-9); what `compression="gzip"` gives in anndata.
    Gzip(u8),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip(4)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub compression: Compression,
}

/// Target number of elements per HDF5 chunk: large enough that deflate works
/// well and per-chunk overhead is small, small enough that a backed read of a
/// few rows touches little data.
const CHUNK_ELEMENTS: usize = 1 << 16;

/// Writes `data` to `path`.
///
/// The file is first written next to the destination under a temporary name
/// and then renamed over it, so an interrupted write never leaves a truncated
/// `.h5ad` behind and never damages an existing file of the same name.
///
/// CSR matrices in `X` and `layers` are written the way
/// [`crate::H5adStream`] writes them (grown in pieces after the rest of the
/// file), so a file written whole and one streamed row block by row block
/// are the same bytes.
pub fn write_h5ad(data: &CellData, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    data.validate().map_err(|error| IoError::Data {
        path: shown.clone(),
        error,
    })?;
    crate::writable::check(data, &shown)?;
    let mut skeletons = Vec::new();
    for (slot, m) in std::iter::once((Slot::X, &data.x)).chain(
        data.layers
            .iter()
            .map(|(name, m)| (Slot::Layer(name.clone()), m)),
    ) {
        if let Matrix::Sparse(s) = m
            && s.format == SparseFormat::Csr
        {
            let max_index = s.indices.iter().copied().max().unwrap_or(0);
            skeletons.push(Skeleton::new(
                slot,
                s.shape,
                s.data.dtype(),
                s.nnz(),
                max_index,
            ));
        }
    }
    let builder = build(data, options, &skeletons, &shown)?;
    emit(path, &shown, builder, &skeletons, |sk, part, range, out| {
        let m = match &sk.slot {
            Slot::X => Some(&data.x),
            Slot::Layer(name) => data.layers.get(name),
        };
        let Some(Matrix::Sparse(s)) = m else {
            return Ok(());
        };
        match part {
            Part::Data => push_le_range(out, &s.data, range),
            Part::Indices => push_index_range(out, &s.indices[range], sk.wide_indices),
            Part::Indptr => push_index_range(out, &s.indptr[range], sk.wide_indptr),
        }
        Ok(())
    })
}

/// A matrix that the file holds whole (`X` or a layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    X,
    Layer(String),
}

impl Slot {
    pub(crate) fn key(&self) -> String {
        match self {
            Slot::X => "X".to_owned(),
            Slot::Layer(name) => format!("layers/{name}"),
        }
    }
}

/// The three datasets of a CSR matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Data,
    Indices,
    Indptr,
}

impl Part {
    pub(crate) const ALL: [Part; 3] = [Part::Data, Part::Indices, Part::Indptr];

    fn name(self) -> &'static str {
        match self {
            Part::Data => "data",
            Part::Indices => "indices",
            Part::Indptr => "indptr",
        }
    }
}

/// A CSR matrix whose group is written empty (growable datasets) and whose
/// values are appended after the rest of the file: everything the metadata
/// needs is known before a value is written.
#[derive(Debug, Clone)]
pub(crate) struct Skeleton {
    pub(crate) slot: Slot,
    pub(crate) shape: (usize, usize),
    pub(crate) dtype: DType,
    pub(crate) nnz: usize,
    /// 64-bit index arrays: scipy uses 32-bit ones whenever the values fit.
    pub(crate) wide_indices: bool,
    pub(crate) wide_indptr: bool,
}

impl Skeleton {
    pub(crate) fn new(
        slot: Slot,
        shape: (usize, usize),
        dtype: DType,
        nnz: usize,
        max_index: u32,
    ) -> Self {
        let fits_i32 = |max: u64| max <= i32::MAX as u64;
        Skeleton {
            slot,
            shape,
            dtype,
            nnz,
            wide_indices: !fits_i32(u64::from(max_index)),
            wide_indptr: !fits_i32(nnz as u64),
        }
    }

    pub(crate) fn len(&self, part: Part) -> usize {
        match part {
            Part::Data | Part::Indices => self.nnz,
            Part::Indptr => self.shape.0 + 1,
        }
    }

    fn part_dtype(&self, part: Part) -> DType {
        let index = |wide| if wide { DType::I64 } else { DType::I32 };
        match part {
            Part::Data => self.dtype,
            Part::Indices => index(self.wide_indices),
            Part::Indptr => index(self.wide_indptr),
        }
    }
}

/// Chunks of a growable dataset appended per call: whole chunks only (but
/// the last), so no chunk is ever rewritten, and few enough calls that the
/// per-call cost is negligible.
const CHUNKS_PER_APPEND: usize = 4;

/// Writes the metadata and small elements of `builder` to `path`, then
/// grows each skeleton's datasets with the bytes `fill` gives for a range
/// of elements (little-endian, the part's on-disk type), in a fixed order
/// and in pieces fixed by the lengths alone, so the bytes of the file never
/// depend on how the caller produced the values.
pub(crate) fn emit(
    path: &Path,
    shown: &str,
    builder: FileBuilder,
    skeletons: &[Skeleton],
    mut fill: impl FnMut(&Skeleton, Part, std::ops::Range<usize>, &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let write_err = |reason: String| IoError::Write {
        path: shown.to_owned(),
        reason,
    };
    let mut file = conceptlab_fs::AtomicFile::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file.file());
    builder
        .finish_to(&mut out)
        .map_err(|e| write_err(e.to_string()))?;
    std::io::Write::flush(&mut out).map_err(|e| write_err(e.to_string()))?;
    drop(out);
    if !skeletons.is_empty() {
        let access = FileAccessProperties::new()
            .with_locking(FileLocking::Disabled)
            .with_memory_strategy(MemoryStrategy::Bounded)
            .with_sync_policy(SyncPolicy::OnClose);
        let h5 = hdf5_pure::File::open_rw_with_options(file.reopen_path(), access)
            .map_err(|e| write_err(format!("reopening to append the matrices: {e}")))?;
        let mut piece = Vec::new();
        for sk in skeletons {
            for part in Part::ALL {
                let key = format!("{}/{}", sk.slot.key(), part.name());
                let mut ds = h5
                    .dataset(&key)
                    .map_err(|e| write_err(format!("`{key}`: {e}")))?;
                let len = sk.len(part);
                let step = growable_chunk(len) * CHUNKS_PER_APPEND;
                let mut start = 0;
                while start < len {
                    let end = (start + step).min(len);
                    piece.clear();
                    fill(sk, part, start..end, &mut piece)?;
                    ds.append_raw(&piece)
                        .map_err(|e| write_err(format!("`{key}`: {e}")))?;
                    start = end;
                }
            }
        }
        h5.close().map_err(|e| write_err(e.to_string()))?;
    }
    file.commit()?;
    Ok(())
}

/// The directory `path` is in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The most bytes one append piece takes (the widest element, 8 bytes),
/// for the streaming writer's memory account.
pub(crate) const APPEND_PIECE_BYTES: usize = MAX_CHUNK_EXTENT * CHUNKS_PER_APPEND * 8;

/// The chunk length of a growable dataset that will hold `len` elements.
fn growable_chunk(len: usize) -> usize {
    len.clamp(1, CHUNK_ELEMENTS.min(MAX_CHUNK_EXTENT))
}

/// The file's metadata and every element of `data` except the matrices in
/// `skeletons`, whose groups are written with empty growable datasets.
pub(crate) fn build(
    data: &CellData,
    options: &WriteOptions,
    skeletons: &[Skeleton],
    shown: &str,
) -> Result<FileBuilder> {
    let mut builder = FileBuilder::new();
    builder.set_attr("encoding-type", vstr("anndata"));
    builder.set_attr("encoding-version", vstr("0.1.0"));
    let mut w = Writer {
        options,
        errors: Vec::new(),
    };
    let skeleton = |slot: &Slot| skeletons.iter().find(|s| &s.slot == slot);
    match skeleton(&Slot::X) {
        Some(sk) => w.skeleton(&mut builder, "X", sk),
        None => w.matrix(&mut builder, "X", &data.x),
    }
    w.frame(&mut builder, "obs", &data.obs);
    w.frame(&mut builder, "var", &data.var);
    let mut layers = builder.create_group("layers");
    set_encoding(&mut layers, "dict", "0.1.0");
    for (key, m) in &data.layers {
        match skeleton(&Slot::Layer(key.clone())) {
            Some(sk) => w.skeleton(&mut layers, key, sk),
            None => w.matrix(&mut layers, key, m),
        }
    }
    builder.add_group(layers.finish());
    for (name, map) in [
        ("obsm", &data.obsm),
        ("varm", &data.varm),
        ("obsp", &data.obsp),
        ("varp", &data.varp),
    ] {
        let group = w.matrix_map(&mut builder, name, map);
        builder.add_group(group);
    }
    let uns = w.uns_map(&mut builder, "uns", &data.uns);
    builder.add_group(uns);
    if let Some(raw) = &data.raw {
        let mut g = builder.create_group("raw");
        set_encoding(&mut g, "raw", "0.1.0");
        w.matrix(&mut g, "X", &raw.x);
        w.frame(&mut g, "var", &raw.var);
        let varm = w.matrix_map(&mut g, "varm", &raw.varm);
        g.add_group(varm);
        builder.add_group(g.finish());
    }
    if let Some(first) = w.errors.into_iter().next() {
        return Err(IoError::Write {
            path: shown.to_owned(),
            reason: first,
        });
    }
    Ok(builder)
}

/// Elements `range` of `v`, little-endian (booleans as one byte).
pub(crate) fn push_le_range(out: &mut Vec<u8>, v: &NumVec, range: std::ops::Range<usize>) {
    macro_rules! bytes {
        ($($variant:ident),*) => {
            match v {
                NumVec::Bool(x) => out.extend(x[range].iter().map(|&b| u8::from(b))),
                NumVec::U8(x) => out.extend_from_slice(&x[range]),
                $(NumVec::$variant(x) => {
                    for e in &x[range] {
                        out.extend_from_slice(&e.to_le_bytes());
                    }
                })*
            }
        };
    }
    bytes!(I8, I16, I32, I64, U16, U32, U64, F32, F64);
}

/// Index values as little-endian i64 (`wide`) or i32 (the caller checked
/// that they fit).
pub(crate) fn push_index_range<T: Copy + Into<u64>>(out: &mut Vec<u8>, values: &[T], wide: bool) {
    for &v in values {
        let v: u64 = v.into();
        if wide {
            out.extend_from_slice(&(v as i64).to_le_bytes());
        } else {
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
    }
}

fn vstr(s: &str) -> AttrValue {
    AttrValue::VarLenString(s.to_owned())
}

/// The two builders an element can be written into: the file root and a group.
trait Parent {
    fn dataset(&mut self, name: &str) -> &mut DatasetBuilder;
    fn group(&mut self, name: &str) -> GroupBuilder;
    fn add(&mut self, group: FinishedGroup);
}

/// hdf5-pure gives both builders the same inherent methods but no shared trait.
macro_rules! impl_parent {
    ($($builder:ty),*) => {$(
        impl Parent for $builder {
            fn dataset(&mut self, name: &str) -> &mut DatasetBuilder {
                self.create_dataset(name)
            }
            fn group(&mut self, name: &str) -> GroupBuilder {
                self.create_group(name)
            }
            fn add(&mut self, group: FinishedGroup) {
                self.add_group(group)
            }
        }
    )*};
}
impl_parent!(FileBuilder, GroupBuilder);

fn set_encoding(group: &mut GroupBuilder, kind: &str, version: &str) {
    group.set_attr("encoding-type", vstr(kind));
    group.set_attr("encoding-version", vstr(version));
}

fn set_dataset_encoding(ds: &mut DatasetBuilder, kind: &str, version: &str) {
    ds.set_attr("encoding-type", vstr(kind));
    ds.set_attr("encoding-version", vstr(version));
}

struct Writer<'a> {
    options: &'a WriteOptions,
    /// Problems found while building (e.g. a name HDF5 cannot hold); the
    /// builder API is infallible, so they are collected and reported at the end.
    errors: Vec<String>,
}

impl Writer<'_> {
    fn check_name(&mut self, name: &str) {
        if name.is_empty() || name.contains('/') || name == "." {
            self.errors.push(format!(
                "`{name}` cannot be written as an HDF5 name (it is empty or contains `/`)"
            ));
        }
    }

    /// Numeric data with its shape, chunked and compressed when asked to.
    fn numeric(&self, ds: &mut DatasetBuilder, data: &NumVec, shape: &[usize]) {
        macro_rules! typed {
            ($($variant:ident => $with:ident),*) => {
                match data {
                    NumVec::Bool(v) => {
                        if let Some(dt) = bool_datatype() {
                            let bytes: Vec<u8> = v.iter().map(|&b| u8::from(b)).collect();
                            ds.with_enum_u8_data(dt, &bytes);
                        }
                    }
                    $(NumVec::$variant(v) => {
                        ds.$with(v);
                    })*
                }
            };
        }
        typed!(
            I8 => with_i8_data, I16 => with_i16_data, I32 => with_i32_data, I64 => with_i64_data,
            U8 => with_u8_data, U16 => with_u16_data, U32 => with_u32_data, U64 => with_u64_data,
            F32 => with_f32_data, F64 => with_f64_data
        );
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        ds.with_shape(&dims);
        if let Compression::Gzip(level) = self.options.compression
            && !shape.is_empty()
            && !data.is_empty()
        {
            ds.with_chunks(&chunk_shape(shape));
            ds.with_deflate(u32::from(level.clamp(1, 9)));
        }
    }

    fn dense(&mut self, parent: &mut impl Parent, name: &str, array: &DenseArray, encoding: &str) {
        self.check_name(name);
        let ds = parent.dataset(name);
        self.numeric(ds, &array.data, &array.shape);
        set_dataset_encoding(ds, encoding, "0.2.0");
    }

    fn strings(
        &mut self,
        parent: &mut impl Parent,
        name: &str,
        values: &[String],
        shape: &[usize],
        encoding: &str,
    ) {
        self.check_name(name);
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let ds = parent.dataset(name);
        ds.with_vlen_strings(&refs);
        ds.with_shape(&shape.iter().map(|&d| d as u64).collect::<Vec<_>>());
        set_dataset_encoding(ds, encoding, "0.2.0");
    }

    fn values(&mut self, parent: &mut impl Parent, name: &str, values: &Values) {
        match values {
            Values::Strings(s) => self.strings(parent, name, s, &[s.len()], "string-array"),
            Values::Numbers(n) => self.dense(
                parent,
                name,
                &DenseArray {
                    shape: vec![n.len()],
                    data: n.clone(),
                },
                "array",
            ),
        }
    }

    fn matrix(&mut self, parent: &mut impl Parent, name: &str, m: &Matrix) {
        match m {
            Matrix::Dense(d) => self.dense(parent, name, d, "array"),
            Matrix::Sparse(s) => self.sparse(parent, name, s),
        }
    }

    fn sparse(&mut self, parent: &mut impl Parent, name: &str, s: &SparseMatrix) {
        self.check_name(name);
        let mut g = parent.group(name);
        set_encoding(&mut g, s.format.encoding(), "0.1.0");
        g.set_attr(
            "shape",
            AttrValue::I64Array(vec![s.shape.0 as i64, s.shape.1 as i64]),
        );
        let nnz = s.nnz();
        self.numeric(g.dataset("data"), &s.data, &[nnz]);
        // scipy uses 32-bit index arrays whenever the values fit; so do we.
        let fits_i32 = |max: u64| max <= i32::MAX as u64;
        let max_index = s.indices.iter().copied().max().unwrap_or(0) as u64;
        let indices = if fits_i32(max_index) {
            NumVec::I32(s.indices.iter().map(|&i| i as i32).collect())
        } else {
            NumVec::I64(s.indices.iter().map(|&i| i64::from(i)).collect())
        };
        let indptr = if fits_i32(nnz as u64) {
            NumVec::I32(s.indptr.iter().map(|&i| i as i32).collect())
        } else {
            NumVec::I64(s.indptr.iter().map(|&i| i as i64).collect())
        };
        self.numeric(g.dataset("indices"), &indices, &[nnz]);
        let len = indptr.len();
        self.numeric(g.dataset("indptr"), &indptr, &[len]);
        parent.add(g.finish());
    }

    /// A CSR group whose datasets are empty and growable, sized for
    /// `sk` (see [`emit`]).
    fn skeleton(&mut self, parent: &mut impl Parent, name: &str, sk: &Skeleton) {
        self.check_name(name);
        let mut g = parent.group(name);
        set_encoding(&mut g, SparseFormat::Csr.encoding(), "0.1.0");
        g.set_attr(
            "shape",
            AttrValue::I64Array(vec![sk.shape.0 as i64, sk.shape.1 as i64]),
        );
        for part in Part::ALL {
            let ds = g.dataset(part.name());
            let empty = NumVec::empty(sk.part_dtype(part));
            self.numeric(ds, &empty, &[0]);
            ds.with_maxshape(&[MaxExtent::Unlimited]);
            ds.with_chunks(&[growable_chunk(sk.len(part)) as u64]);
            if let Compression::Gzip(level) = self.options.compression {
                ds.with_deflate(u32::from(level.clamp(1, 9)));
            }
        }
        parent.add(g.finish());
    }

    fn matrix_map(
        &mut self,
        parent: &mut impl Parent,
        name: &str,
        map: &IndexMap<String, Matrix>,
    ) -> FinishedGroup {
        let mut g = parent.group(name);
        set_encoding(&mut g, "dict", "0.1.0");
        for (key, m) in map {
            self.matrix(&mut g, key, m);
        }
        g.finish()
    }

    fn frame(&mut self, parent: &mut impl Parent, name: &str, frame: &Frame) {
        self.check_name(name);
        let mut g = parent.group(name);
        set_encoding(&mut g, "dataframe", "0.2.0");
        g.set_attr("_index", vstr(&frame.index_name));
        let order: Vec<String> = frame.columns.keys().cloned().collect();
        // h5py writes an empty list attribute as an empty float64 array; anndata reads it back as [].
        g.set_attr(
            "column-order",
            if order.is_empty() {
                AttrValue::F64Array(Vec::new())
            } else {
                AttrValue::VarLenStringArray(order)
            },
        );
        if frame.columns.contains_key(&frame.index_name) {
            self.errors.push(format!(
                "{name}: a column is named like the index (`{}`)",
                frame.index_name
            ));
        }
        self.strings(
            &mut g,
            &frame.index_name,
            &frame.index,
            &[frame.len()],
            "string-array",
        );
        for (col_name, column) in &frame.columns {
            self.column(&mut g, col_name, column);
        }
        parent.add(g.finish());
    }

    fn column(&mut self, parent: &mut impl Parent, name: &str, column: &Column) {
        match column {
            Column::Numeric(v) => self.dense(
                parent,
                name,
                &DenseArray {
                    shape: vec![v.len()],
                    data: v.clone(),
                },
                "array",
            ),
            Column::Strings(s) => self.strings(parent, name, s, &[s.len()], "string-array"),
            Column::Categorical(c) => {
                self.check_name(name);
                let mut g = parent.group(name);
                set_encoding(&mut g, "categorical", "0.2.0");
                g.set_attr("ordered", AttrValue::I8(i8::from(c.ordered)));
                // pandas picks the narrowest signed type that holds every code.
                let n = c.categories.len();
                let codes = if n < i8::MAX as usize {
                    NumVec::I8(c.codes.iter().map(|&x| x as i8).collect())
                } else if n < i16::MAX as usize {
                    NumVec::I16(c.codes.iter().map(|&x| x as i16).collect())
                } else {
                    NumVec::I32(c.codes.clone())
                };
                self.dense(
                    &mut g,
                    "codes",
                    &DenseArray {
                        shape: vec![codes.len()],
                        data: codes,
                    },
                    "array",
                );
                self.values(&mut g, "categories", &c.categories);
                parent.add(g.finish());
            }
            Column::Nullable { values, mask } => {
                self.check_name(name);
                let kind = match values {
                    Values::Strings(_) => "nullable-string-array",
                    Values::Numbers(NumVec::Bool(_)) => "nullable-boolean",
                    Values::Numbers(_) => "nullable-integer",
                };
                let mut g = parent.group(name);
                set_encoding(&mut g, kind, "0.1.0");
                self.values(&mut g, "values", values);
                let mask = NumVec::Bool(mask.clone());
                self.dense(
                    &mut g,
                    "mask",
                    &DenseArray {
                        shape: vec![mask.len()],
                        data: mask,
                    },
                    "array",
                );
                parent.add(g.finish());
            }
        }
    }

    fn uns_map(
        &mut self,
        parent: &mut impl Parent,
        name: &str,
        map: &IndexMap<String, UnsValue>,
    ) -> FinishedGroup {
        self.check_name(name);
        let mut g = parent.group(name);
        set_encoding(&mut g, "dict", "0.1.0");
        for (key, value) in map {
            self.uns_value(&mut g, key, value);
        }
        g.finish()
    }

    fn uns_value(&mut self, parent: &mut impl Parent, name: &str, value: &UnsValue) {
        match value {
            UnsValue::Mapping(m) => {
                let g = self.uns_map(parent, name, m);
                parent.add(g);
            }
            UnsValue::String(s) => {
                self.strings(parent, name, std::slice::from_ref(s), &[], "string")
            }
            UnsValue::Array(a) if a.shape.is_empty() => {
                self.dense(parent, name, a, "numeric-scalar")
            }
            UnsValue::Array(a) => self.dense(parent, name, a, "array"),
            UnsValue::StringArray { shape, values } => {
                self.strings(parent, name, values, shape, "string-array")
            }
            UnsValue::Sparse(s) => self.sparse(parent, name, s),
            UnsValue::Frame(f) => self.frame(parent, name, f),
            UnsValue::Column(c) => self.column(parent, name, c),
            UnsValue::Records(fields) => self.records(parent, name, fields),
        }
    }

    /// A record array (anndata `rec-array`): one compound dataset. String
    /// fields are stored as fixed-length ASCII strings: anndata stores them as
    /// variable-length strings inside the compound, which hdf5-pure cannot
    /// write, and anndata 0.12 reads fixed-length fields back as unicode only
    /// when their charset is ASCII. Records holding non-ASCII text are written
    /// as a `dataframe` with one column per field instead, which keeps every
    /// value and the `records[field]` access in Python.
    fn records(&mut self, parent: &mut impl Parent, name: &str, fields: &[(String, Values)]) {
        self.check_name(name);
        let n = fields.first().map_or(0, |(_, v)| v.len());
        if fields.is_empty() || fields.iter().any(|(_, v)| v.len() != n) {
            self.errors.push(format!(
                "record array `{name}` is empty or its fields differ in length"
            ));
            return;
        }
        let non_ascii = fields.iter().any(|(_, v)| match v {
            Values::Strings(s) => s.iter().any(|x| !x.is_ascii()),
            Values::Numbers(_) => false,
        });
        if non_ascii {
            let mut frame = Frame::with_index((0..n).map(|i| i.to_string()).collect());
            for (field, values) in fields {
                let column = match values {
                    Values::Strings(s) => Column::Strings(s.clone()),
                    Values::Numbers(v) => Column::Numeric(v.clone()),
                };
                frame.columns.insert(field.clone(), column);
            }
            self.frame(parent, name, &frame);
            return;
        }
        let mut builder = CompoundTypeBuilder::new();
        let mut widths = Vec::with_capacity(fields.len());
        for (field, values) in fields {
            let (datatype, width) = match values {
                Values::Strings(s) => {
                    let width = s.iter().map(String::len).max().unwrap_or(0).max(1);
                    let datatype = Datatype::String {
                        size: width as u32,
                        padding: StringPadding::NullPad,
                        charset: CharacterSet::Ascii,
                    };
                    (datatype, width)
                }
                Values::Numbers(v) => match element_datatype(v.dtype()) {
                    Some(datatype) => (datatype, v.dtype().size_of()),
                    None => {
                        self.errors.push(format!(
                            "record array `{name}`: cannot encode field `{field}`"
                        ));
                        return;
                    }
                },
            };
            builder = builder.field(field, datatype);
            widths.push(width);
        }
        let datatype = match builder.build() {
            Ok(dt) => dt,
            Err(e) => {
                self.errors.push(format!("record array `{name}`: {e}"));
                return;
            }
        };
        let mut raw = Vec::with_capacity(widths.iter().sum::<usize>() * n);
        for i in 0..n {
            for ((_, values), &width) in fields.iter().zip(&widths) {
                match values {
                    Values::Strings(s) => {
                        let bytes = s[i].as_bytes();
                        raw.extend_from_slice(bytes);
                        raw.resize(raw.len() + width - bytes.len(), 0);
                    }
                    Values::Numbers(v) => push_le(&mut raw, v, i),
                }
            }
        }
        let ds = parent.dataset(name);
        ds.with_compound_data(datatype, raw, n as u64);
        set_dataset_encoding(ds, "rec-array", "0.2.0");
    }
}

/// The HDF5 type of one element (booleans as h5py's int8 enum).
fn element_datatype(dtype: DType) -> Option<Datatype> {
    Some(match dtype {
        DType::Bool => bool_datatype()?,
        DType::I8 => make_i8_type(),
        DType::I16 => make_i16_type(),
        DType::I32 => make_i32_type(),
        DType::I64 => make_i64_type(),
        DType::U8 => make_u8_type(),
        DType::U16 => make_u16_type(),
        DType::U32 => make_u32_type(),
        DType::U64 => make_u64_type(),
        DType::F32 => make_f32_type(),
        DType::F64 => make_f64_type(),
    })
}

/// h5py's representation of numpy bool: an int8 enum FALSE=0, TRUE=1.
fn bool_datatype() -> Option<Datatype> {
    EnumTypeBuilder::with_base(make_i8_type())
        .value("FALSE", 0)
        .value("TRUE", 1)
        .build()
        .ok()
}

/// Appends element `i` of `v` in little-endian byte order.
fn push_le(out: &mut Vec<u8>, v: &NumVec, i: usize) {
    match v {
        NumVec::Bool(x) => out.push(u8::from(x[i])),
        NumVec::I8(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::I16(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::I32(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::I64(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::U8(x) => out.push(x[i]),
        NumVec::U16(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::U32(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::U64(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::F32(x) => out.extend_from_slice(&x[i].to_le_bytes()),
        NumVec::F64(x) => out.extend_from_slice(&x[i].to_le_bytes()),
    }
}

/// Largest chunk extent along any axis. libhdf5 (and so h5py) rejects chunk
/// dimensions that need exactly three bytes to encode (65,536 to 16,777,215):
/// hdf5-pure 0.47 encodes those with four, and libhdf5 refuses to open the
/// dataset ("stored chunk dimension encoding length does not match"). Keeping
/// every extent below 2^16 avoids the disagreement.
const MAX_CHUNK_EXTENT: usize = 65_535;

/// Chunk dimensions: whole trailing axes where they fit (else capped at
/// [`MAX_CHUNK_EXTENT`]), and as many leading rows as fit in
/// [`CHUNK_ELEMENTS`] (at least one).
fn chunk_shape(shape: &[usize]) -> Vec<u64> {
    let trailing: Vec<usize> = shape[1..]
        .iter()
        .map(|&d| d.clamp(1, MAX_CHUNK_EXTENT))
        .collect();
    let row: usize = trailing.iter().product::<usize>().max(1);
    let rows = (CHUNK_ELEMENTS / row).clamp(1, shape[0].clamp(1, MAX_CHUNK_EXTENT));
    std::iter::once(rows)
        .chain(trailing)
        .map(|d| d as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::chunk_shape;

    #[test]
    fn chunks_cover_whole_rows() {
        assert_eq!(chunk_shape(&[10]), vec![10]);
        assert_eq!(chunk_shape(&[1_000_000]), vec![65_535]);
        assert_eq!(chunk_shape(&[50_000, 2_000]), vec![32, 2_000]);
        assert_eq!(chunk_shape(&[3, 100_000]), vec![1, 65_535]);
        assert_eq!(chunk_shape(&[0, 5]), vec![1, 5]);
    }
}
