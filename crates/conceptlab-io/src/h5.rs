//! A thin, error-annotating layer over `hdf5-pure`'s reader.
//!
//! Every call takes the HDF5 key it works on so that failures name the file
//! and the key; nothing here knows about anndata encodings.

use std::collections::HashMap;
use std::path::Path;

use conceptlab_core::{DType, NumVec};
use hdf5_pure::{
    AttrValue, ChunkCacheConfig, DType as H5DType, Dataset, File, FileAccessProperties, Group,
};

use crate::error::{IoError, Result};

/// What sits at an HDF5 path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NodeKind {
    Group,
    Dataset,
}

/// An open HDF5 file plus the path used to name it in errors.
pub(crate) struct H5File {
    file: File,
    pub(crate) path: String,
}

pub(crate) type Attrs = HashMap<String, AttrValue>;

impl H5File {
    /// Opens `path` for streaming reads: metadata and chunks are fetched on
    /// demand, so opening a 10 GB file does not read 10 GB.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| IoError::Open {
            path: shown.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Err(IoError::Open {
                path: shown,
                source: std::io::Error::other("is a directory"),
            });
        }
        match hdf5_pure::is_hdf5(path) {
            Ok(true) => {}
            Ok(false) => return Err(IoError::NotHdf5 { path: shown }),
            Err(source) => {
                return Err(IoError::Open {
                    path: shown,
                    source,
                });
            }
        }
        // Backed reads of scattered rows revisit the same compressed chunks;
        // a per-dataset cache of 32 MiB decompresses each chunk once.
        let properties = FileAccessProperties::new().with_chunk_cache(
            ChunkCacheConfig::new()
                .with_max_bytes(32 << 20)
                .with_max_slots(512),
        );
        let file =
            File::open_streaming_with_options(path, properties).map_err(|e| IoError::Corrupt {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        Ok(Self { file, path: shown })
    }

    pub(crate) fn read_err(&self, key: &str, e: impl std::fmt::Display) -> IoError {
        IoError::Read {
            path: self.path.clone(),
            key: key.to_owned(),
            message: e.to_string(),
        }
    }

    pub(crate) fn invalid(&self, key: &str, reason: impl Into<String>) -> IoError {
        IoError::Invalid {
            path: self.path.clone(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(&self, key: &str, expected: impl Into<String>) -> IoError {
        IoError::Missing {
            path: self.path.clone(),
            key: key.to_owned(),
            expected: expected.into(),
        }
    }

    pub(crate) fn unsupported(
        &self,
        key: &str,
        encoding: &str,
        supported: &'static str,
    ) -> IoError {
        IoError::Unsupported {
            path: self.path.clone(),
            key: key.to_owned(),
            encoding: encoding.to_owned(),
            supported,
        }
    }

    /// Whether `key` names a group, a dataset, or nothing.
    pub(crate) fn kind(&self, key: &str) -> Result<Option<NodeKind>> {
        let (parent, name) = match key.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", key),
        };
        let group = if parent.is_empty() {
            self.file.root()
        } else {
            match self.kind(parent)? {
                Some(NodeKind::Group) => self.group(parent)?,
                _ => return Ok(None),
            }
        };
        let groups = group
            .groups()
            .map_err(|e| self.read_err(parent_or_root(parent), e))?;
        if groups.iter().any(|g| g == name) {
            return Ok(Some(NodeKind::Group));
        }
        let datasets = group
            .datasets()
            .map_err(|e| self.read_err(parent_or_root(parent), e))?;
        Ok(datasets
            .iter()
            .any(|d| d == name)
            .then_some(NodeKind::Dataset))
    }

    pub(crate) fn group(&self, key: &str) -> Result<Group> {
        if key.is_empty() {
            return Ok(self.file.root());
        }
        self.file.group(key).map_err(|e| self.read_err(key, e))
    }

    pub(crate) fn dataset(&self, key: &str) -> Result<Dataset> {
        self.file.dataset(key).map_err(|e| self.read_err(key, e))
    }

    /// Names of the members of group `key`, sorted, groups and datasets together.
    pub(crate) fn members(&self, key: &str) -> Result<Vec<(String, NodeKind)>> {
        let group = self.group(key)?;
        let mut out: Vec<(String, NodeKind)> = group
            .groups()
            .map_err(|e| self.read_err(key, e))?
            .into_iter()
            .map(|g| (g, NodeKind::Group))
            .collect();
        out.extend(
            group
                .datasets()
                .map_err(|e| self.read_err(key, e))?
                .into_iter()
                .map(|d| (d, NodeKind::Dataset)),
        );
        out.sort();
        Ok(out)
    }

    /// Attributes of the group or dataset at `key`.
    pub(crate) fn attrs(&self, key: &str, kind: NodeKind) -> Result<Attrs> {
        match kind {
            NodeKind::Group => self.group(key)?.attrs(),
            NodeKind::Dataset => self.dataset(key)?.attrs(),
        }
        .map_err(|e| self.read_err(key, e))
    }

    pub(crate) fn shape(&self, key: &str, ds: &Dataset) -> Result<Vec<usize>> {
        Ok(ds
            .shape()
            .map_err(|e| self.read_err(key, e))?
            .into_iter()
            .map(|d| d as usize)
            .collect())
    }

    pub(crate) fn h5_dtype(&self, key: &str, ds: &Dataset) -> Result<H5DType> {
        ds.dtype().map_err(|e| self.read_err(key, e))
    }

    /// The numeric element type of a dataset, or `None` for strings,
    /// compounds and other non-numeric types.
    pub(crate) fn numeric_dtype(&self, key: &str, ds: &Dataset) -> Result<Option<DType>> {
        Ok(numeric_dtype(&self.h5_dtype(key, ds)?))
    }

    /// Reads a whole numeric or boolean dataset, keeping its element type.
    pub(crate) fn read_numeric(&self, key: &str, ds: &Dataset) -> Result<NumVec> {
        let dtype = self
            .numeric_dtype(key, ds)?
            .ok_or_else(|| self.invalid(key, "expected a numeric or boolean dataset"))?;
        self.read_numeric_window(key, ds, dtype, None)
    }

    /// Reads rows `start..start+count` (first axis) of a numeric dataset, or
    /// all of it when `window` is `None`.
    pub(crate) fn read_numeric_window(
        &self,
        key: &str,
        ds: &Dataset,
        dtype: DType,
        window: Option<(u64, u64)>,
    ) -> Result<NumVec> {
        macro_rules! read {
            ($whole:ident, $rows:ident) => {
                match window {
                    None => ds.$whole(),
                    Some((start, count)) => ds.$rows(start, count),
                }
                .map_err(|e| self.read_err(key, e))?
            };
        }
        Ok(match dtype {
            DType::Bool => NumVec::Bool(
                read!(read_u8, read_u8_rows)
                    .into_iter()
                    .map(|b| b != 0)
                    .collect(),
            ),
            DType::I8 => NumVec::I8(read!(read_i8, read_i8_rows)),
            DType::I16 => NumVec::I16(read!(read_i16, read_i16_rows)),
            DType::I32 => NumVec::I32(read!(read_i32, read_i32_rows)),
            DType::I64 => NumVec::I64(read!(read_i64, read_i64_rows)),
            DType::U8 => NumVec::U8(read!(read_u8, read_u8_rows)),
            DType::U16 => NumVec::U16(read!(read_u16, read_u16_rows)),
            DType::U32 => NumVec::U32(read!(read_u32, read_u32_rows)),
            DType::U64 => NumVec::U64(read!(read_u64, read_u64_rows)),
            DType::F32 => NumVec::F32(read!(read_f32, read_f32_rows)),
            DType::F64 => NumVec::F64(read!(read_f64, read_f64_rows)),
        })
    }

    /// Reads a string dataset (fixed- or variable-length).
    pub(crate) fn read_strings(&self, key: &str, ds: &Dataset) -> Result<Vec<String>> {
        let values = ds.read_string().map_err(|e| self.read_err(key, e))?;
        // Fixed-length strings written by numpy are NUL-padded.
        Ok(values
            .into_iter()
            .map(|s| s.trim_end_matches('\0').to_owned())
            .collect())
    }
}

fn parent_or_root(parent: &str) -> &str {
    if parent.is_empty() { "/" } else { parent }
}

/// Maps an HDF5 type to a numeric element type; h5py stores numpy booleans as
/// an enum over `int8` with members `FALSE` and `TRUE`.
pub(crate) fn numeric_dtype(dtype: &H5DType) -> Option<DType> {
    Some(match dtype {
        H5DType::F32 => DType::F32,
        H5DType::F64 => DType::F64,
        H5DType::I8 => DType::I8,
        H5DType::I16 => DType::I16,
        H5DType::I32 => DType::I32,
        H5DType::I64 => DType::I64,
        H5DType::U8 => DType::U8,
        H5DType::U16 => DType::U16,
        H5DType::U32 => DType::U32,
        H5DType::U64 => DType::U64,
        H5DType::Enum(names) if is_bool_enum(names) => DType::Bool,
        _ => return None,
    })
}

pub(crate) fn is_bool_enum(names: &[String]) -> bool {
    names.len() == 2 && names.iter().any(|n| n == "FALSE") && names.iter().any(|n| n == "TRUE")
}

pub(crate) fn is_string_dtype(dtype: &H5DType) -> bool {
    matches!(dtype, H5DType::String | H5DType::VariableLengthString)
}

/// A string-valued attribute, whichever string encoding it uses.
pub(crate) fn attr_string(attrs: &Attrs, name: &str) -> Option<String> {
    match attrs.get(name)? {
        AttrValue::VarLenString(s) | AttrValue::String(s) | AttrValue::AsciiString(s) => {
            Some(s.clone())
        }
        other => other.as_str().map(str::to_owned),
    }
}

/// A list-of-strings attribute. An empty list is often written as an empty
/// float array by h5py, which reads here as an empty list too.
pub(crate) fn attr_strings(attrs: &Attrs, name: &str) -> Option<Vec<String>> {
    let value = attrs.get(name)?;
    if let Some(s) = value.as_strings() {
        return Some(s.to_vec());
    }
    match value {
        AttrValue::VarLenStringArray(v) => Some(v.clone()),
        AttrValue::F64Array(v) if v.is_empty() => Some(Vec::new()),
        AttrValue::F32Array(v) if v.is_empty() => Some(Vec::new()),
        other => other.as_str().map(|s| vec![s.to_owned()]),
    }
}

pub(crate) fn attr_integers(attrs: &Attrs, name: &str) -> Option<Vec<i64>> {
    let value = attrs.get(name)?;
    value.to_i64s().or_else(|| value.as_i64().map(|v| vec![v]))
}

pub(crate) fn attr_bool(attrs: &Attrs, name: &str) -> Option<bool> {
    attrs.get(name)?.as_i64().map(|v| v != 0)
}

/// The anndata `encoding-type` of an element, if it declares one.
pub(crate) fn encoding(attrs: &Attrs) -> Option<String> {
    attr_string(attrs, "encoding-type")
}
