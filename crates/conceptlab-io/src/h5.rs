//! A thin, error-annotating layer over `hdf5-pure`'s reader.
//!
//! Every call takes the HDF5 key it works on so that failures name the file
//! and the key; nothing here knows about anndata encodings.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use conceptlab_core::{DType, NumVec};
use hdf5_pure::{
    ChunkCacheConfig, DType as H5DType, Dataset, File, FileAccessProperties, FormatError, Group,
    VlenStringReadOptions,
};

use crate::attrs::Attrs;
use crate::bounds::Declared;
use crate::budget::Budget;
use crate::error::{IoError, Result};
use crate::superblock::{self, Extent};

/// What sits at an HDF5 path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NodeKind {
    Group,
    Dataset,
}

/// An open HDF5 file plus the path used to name it in errors, its size, and
/// the memory budget its reads are charged against.
pub(crate) struct H5File {
    file: File,
    pub(crate) path: String,
    /// Length of the file in bytes.
    pub(crate) size: u64,
    pub(crate) budget: Budget,
    /// A plain handle on the same file, for the global-heap reads `hdf5-pure`
    /// does not offer (variable-length strings inside compound records).
    raw: Mutex<std::fs::File>,
    /// Datasets whose chunk index has been checked against the file's size:
    /// a backed read checks each window, and walking a large index once per
    /// window would cost more than the reads.
    pub(crate) chunks_checked: Mutex<HashSet<String>>,
}

impl H5File {
    /// Opens `path` for streaming reads: metadata and chunks are fetched on
    /// demand, so opening a 10 GB file does not read 10 GB.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let open_err = |error| IoError::Open {
            path: shown.clone(),
            error,
        };
        // A FIFO would block the open forever; a directory or device has
        // nothing to parse.
        conceptlab_fs::check_input(path)?;
        let meta = std::fs::metadata(path).map_err(open_err)?;
        match hdf5_pure::is_hdf5(path) {
            Ok(true) => {}
            Ok(false) => return Err(IoError::NotHdf5 { path: shown }),
            Err(error) => return Err(open_err(error)),
        }
        let mut raw = std::fs::File::open(path).map_err(open_err)?;
        let size = meta.len();
        // Checked first: past a cut, hdf5-pure reports whichever object it
        // reaches first as missing or damaged, not the truncation.
        if let Extent::Truncated { size, eof } =
            superblock::extent(&mut raw, size).map_err(open_err)?
        {
            return Err(IoError::Truncated {
                path: shown,
                size,
                eof,
            });
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
        Ok(Self {
            file,
            path: shown,
            size,
            budget: Budget::machine(),
            raw: Mutex::new(raw),
            chunks_checked: Mutex::new(HashSet::new()),
        })
    }

    /// `len` bytes at absolute offset `at`, read directly from the file;
    /// refused (without allocating) when they would run past its end.
    pub(crate) fn bytes_at(&self, key: &str, at: u64, len: u64) -> Result<Vec<u8>> {
        if at.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(self.corrupt(format!(
                "`{key}` refers to {len} bytes at byte {at}, past the end of the file ({} bytes)",
                self.size
            )));
        }
        let mut buf = vec![0u8; len as usize];
        let mut file = self
            .raw
            .lock()
            .map_err(|_| self.read_err(key, "an earlier read of this file failed"))?;
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| self.read_err(key, e))?;
        Ok(buf)
    }

    /// Sizes of file addresses and lengths, and the base address they are
    /// relative to, from the superblock.
    pub(crate) fn address_format(&self) -> (u8, u8, u64) {
        let sb = self.file.superblock();
        (sb.offset_size, sb.length_size, sb.base_address.get())
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
        // A link name HDF5 cannot resolve back to this member: `a//b` and
        // `a/./b` both name `a/b`, so such a member would be the group itself.
        if let Some((bad, _)) = out
            .iter()
            .find(|(n, _)| n.is_empty() || n == "." || n.contains('/'))
        {
            return Err(self.invalid(
                key,
                format!("group has a member with the impossible name {bad:?}"),
            ));
        }
        out.sort();
        Ok(out)
    }

    /// Attributes of the group or dataset at `key`, with the names of those
    /// whose type `hdf5-pure` cannot decode: it leaves them out of its map,
    /// and a damaged `column-order` would otherwise read as an absent one.
    pub(crate) fn attrs(&self, key: &str, kind: NodeKind) -> Result<Attrs> {
        let (values, types) = match kind {
            NodeKind::Group => {
                let g = self.group(key)?;
                (g.attrs(), g.attr_datatypes())
            }
            NodeKind::Dataset => {
                let d = self.dataset(key)?;
                (d.attrs(), d.attr_datatypes())
            }
        };
        let values = values.map_err(|e| self.read_err(key, e))?;
        let types = types.map_err(|e| self.read_err(key, e))?;
        Ok(Attrs::new(values, types.into_keys()))
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
    /// all of it when `window` is `None`, after charging the memory it takes.
    pub(crate) fn read_numeric_window(
        &self,
        key: &str,
        ds: &Dataset,
        dtype: DType,
        window: Option<(u64, u64)>,
    ) -> Result<NumVec> {
        let declared = self.declared(key, ds)?;
        let elements = match window {
            None => declared.elements,
            Some((_, count)) => count.saturating_mul(declared.row_len()),
        };
        // Booleans are read as bytes and then converted: both live at once.
        let per_element = match dtype {
            DType::Bool => 2,
            other => other.size_of() as u64,
        };
        self.charge(key, &declared, elements, per_element, dtype.name())?;
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

    /// Reads a string dataset (fixed- or variable-length), charging the
    /// stored bytes, one `String` per element and the text itself.
    pub(crate) fn read_strings(&self, key: &str, ds: &Dataset) -> Result<Vec<String>> {
        let declared = self.declared(key, ds)?;
        let mut values = if self.h5_dtype(key, ds)? == H5DType::VariableLengthString {
            self.read_vlen_strings(key, ds, &declared)?
        } else {
            // Raw bytes, then a `String` per element of at most the same length.
            let per_element = 2 * declared.element_size + STRING_BYTES;
            self.charge(key, &declared, declared.elements, per_element, "strings")?;
            ds.read_string().map_err(|e| self.read_err(key, e))?
        };
        // Fixed-length strings written by numpy are NUL-padded.
        for s in &mut values {
            let kept = s.trim_end_matches('\0').len();
            s.truncate(kept);
        }
        Ok(values)
    }

    /// The text of variable-length strings lives in the global heap, where
    /// several elements may name the same object, so the file's size does not
    /// bound it: its total is held to what the budget has left, which
    /// `hdf5-pure` checks before reading any of it.
    fn read_vlen_strings(
        &self,
        key: &str,
        ds: &Dataset,
        declared: &Declared,
    ) -> Result<Vec<String>> {
        let per_element = declared.element_size + STRING_BYTES;
        self.charge(key, declared, declared.elements, per_element, "strings")?;
        let payload = usize::try_from(self.budget.remaining()).unwrap_or(usize::MAX);
        let options = VlenStringReadOptions::new().with_max_payload_bytes(payload);
        // Reserved once at the declared (and charged) count: growing by
        // doubling would hold up to twice that.
        let count = usize::try_from(declared.elements).unwrap_or(usize::MAX);
        let mut values: Vec<String> = Vec::new();
        values
            .try_reserve_exact(count)
            .map_err(|e| self.too_large(key, format!("{count} strings: {e}")))?;
        ds.visit_vlen_strings(options, |s| values.push(s.to_owned()))
            .map_err(|e| match e {
                hdf5_pure::Error::Format(FormatError::VariableLengthByteLimitExceeded {
                    required,
                    ..
                }) => self.too_large(
                    key,
                    format!(
                        "its {} strings hold {} of text, more than {}",
                        declared.elements,
                        crate::budget::bytes(required),
                        self.budget.describe()
                    ),
                ),
                other => self.read_err(key, other),
            })?;
        let text: u64 = values.iter().map(|s| s.len() as u64).sum();
        self.charge_bytes(key, text, || format!("{} strings", declared.elements))?;
        Ok(values)
    }
}

/// Bytes of one `String` besides its text.
const STRING_BYTES: u64 = std::mem::size_of::<String>() as u64;

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
