//! Checks of what a dataset declares, made from metadata before its values
//! are read: its storage must fit in the file, its chunks in HDF5's limits,
//! and the memory a read of it takes in the [`crate::budget::Budget`].
//!
//! `hdf5-pure` sizes its output buffer from the declared shape (an unwritten
//! dataset reads as its fill value), so without these checks a file of a few
//! kilobytes declaring a terabyte array makes the reader ask for a terabyte.

use hdf5_pure::{ChunkIndex, Dataset, Layout, MaxExtent};

use crate::budget;
use crate::error::{IoError, Result};
use crate::h5::H5File;

/// HDF5 stores a chunk's size in 32 bits: no valid file has a larger chunk.
const MAX_CHUNK_BYTES: u64 = u32::MAX as u64;

/// A dataset's declared extent, from its dataspace, datatype and layout.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub(crate) shape: Vec<u64>,
    pub(crate) elements: u64,
    /// Bytes of one stored element.
    pub(crate) element_size: u64,
    /// Bytes of one chunk once decompressed (0 when not chunked): what the
    /// reader holds beside its output while it decodes.
    chunk_bytes: u64,
}

impl Declared {
    /// Elements in one row (all axes but the first).
    pub(crate) fn row_len(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }
}

/// `1000000 x 1000000`; a scalar reads `scalar`.
pub(crate) fn dims(shape: &[u64]) -> String {
    if shape.is_empty() {
        return "scalar".to_owned();
    }
    shape
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" x ")
}

impl H5File {
    pub(crate) fn too_large(&self, key: &str, reason: impl Into<String>) -> IoError {
        IoError::TooLarge {
            path: self.path.clone(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// The declared extent of `ds`, refusing storage that cannot be in this
    /// file: contiguous data past its end, chunks larger than HDF5 allows,
    /// and virtual datasets (which read other files; anndata never writes them).
    pub(crate) fn declared(&self, key: &str, ds: &Dataset) -> Result<Declared> {
        let shape = ds.shape().map_err(|e| self.read_err(key, e))?;
        // Zero axes are left out so that no partial product (a row's length,
        // say, when there are no rows) can overflow where it is used later.
        let elements = shape
            .iter()
            .filter(|&&d| d > 0)
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .map(|nonzero| if shape.contains(&0) { 0 } else { nonzero })
            .ok_or_else(|| {
                self.too_large(
                    key,
                    format!("declares a {} array: more elements than 2^64", dims(&shape)),
                )
            })?;
        // libhdf5 refuses a dataspace whose size passes its own maximum; a
        // damaged size field is otherwise indistinguishable from a real one.
        let maxshape = ds.maxshape().map_err(|e| self.read_err(key, e))?;
        if let Some(max) = maxshape {
            let over = shape.iter().zip(&max).any(|(&d, m)| match m {
                MaxExtent::Fixed(limit) => d > *limit,
                _ => false,
            });
            if over || max.len() != shape.len() {
                let max: Vec<String> = max
                    .iter()
                    .map(|m| match m {
                        MaxExtent::Fixed(limit) => limit.to_string(),
                        _ => "unlimited".to_owned(),
                    })
                    .collect();
                return Err(self.corrupt(format!(
                    "`{key}`: the dataspace declares {} but at most {}",
                    dims(&shape),
                    max.join(" x ")
                )));
            }
        }
        let element_size = ds.element_size().map_err(|e| self.read_err(key, e))?;
        let stored = elements.checked_mul(element_size).ok_or_else(|| {
            self.too_large(
                key,
                format!(
                    "declares {} elements of {element_size} bytes: more than 2^64 bytes",
                    dims(&shape)
                ),
            )
        })?;
        let layout = ds.layout().map_err(|e| self.read_err(key, e))?;
        let chunk_bytes = match layout {
            Layout::Contiguous {
                address: Some(address),
                size,
            } => {
                let end = address.checked_add(size.max(stored));
                if end.is_none_or(|end| end > self.size) {
                    return Err(self.corrupt(format!(
                        "`{key}` declares {} of data at byte {address}, past the end of the \
                         file ({} bytes)",
                        budget::bytes(size.max(stored)),
                        self.size
                    )));
                }
                0
            }
            Layout::Chunked { chunk_shape, index } => {
                if chunk_shape.len() != shape.len() || chunk_shape.contains(&0) {
                    return Err(self.invalid(
                        key,
                        format!(
                            "chunks of {} do not fit a {} array",
                            dims(&chunk_shape),
                            dims(&shape)
                        ),
                    ));
                }
                let bytes = chunk_shape
                    .iter()
                    .try_fold(element_size, |acc, &d| acc.checked_mul(d))
                    .filter(|&b| b <= MAX_CHUNK_BYTES)
                    .ok_or_else(|| {
                        self.invalid(
                            key,
                            format!(
                                "declares chunks of {} elements of {element_size} bytes, \
                                 larger than the 4 GiB HDF5 allows",
                                dims(&chunk_shape)
                            ),
                        )
                    })?;
                // hdf5-pure sizes its read buffer from the stored sizes the
                // chunk index records before it reads the chunks, so a damaged
                // index entry would have it allocate gigabytes first.
                // (A version 2 B-tree index has no enumerator in hdf5-pure
                // 0.47; anndata, h5py and this crate's writer never use one.)
                if index != ChunkIndex::BTreeV2 {
                    self.check_chunks(key, ds)?;
                }
                bytes
            }
            Layout::Virtual => {
                return Err(self.unsupported(
                    key,
                    "virtual dataset",
                    "datasets stored in the file itself",
                ));
            }
            _ => 0,
        };
        Ok(Declared {
            shape,
            elements,
            element_size,
            chunk_bytes,
        })
    }

    /// Every allocated chunk must lie inside the file.
    fn check_chunks(&self, key: &str, ds: &Dataset) -> Result<()> {
        if self.chunks_checked.lock().is_ok_and(|c| c.contains(key)) {
            return Ok(());
        }
        let chunks = ds.chunks().map_err(|e| self.read_err(key, e))?;
        for chunk in chunks {
            if chunk
                .address
                .checked_add(chunk.storage_size)
                .is_none_or(|end| end > self.size)
            {
                return Err(self.corrupt(format!(
                    "`{key}`: a chunk declares {} at byte {}, past the end of the file ({} bytes)",
                    budget::bytes(chunk.storage_size),
                    chunk.address,
                    self.size
                )));
            }
        }
        if let Ok(mut checked) = self.chunks_checked.lock() {
            checked.insert(key.to_owned());
        }
        Ok(())
    }

    /// Charges the memory that reading `elements` elements of a dataset takes
    /// when each costs `per_element` bytes once decoded (plus one chunk being
    /// decompressed), or refuses with a message naming the declared shape,
    /// type and size and the limit it passes. `what` names the element type
    /// (`float32`, `strings`).
    pub(crate) fn charge(
        &self,
        key: &str,
        declared: &Declared,
        elements: u64,
        per_element: u64,
        what: &str,
    ) -> Result<()> {
        // The message gives the data's size; the chunk being decoded beside
        // it is charged too.
        let data = elements.saturating_mul(per_element);
        let charged = data.saturating_add(declared.chunk_bytes);
        self.refuse_over_budget(key, charged, data, || {
            let part = if elements == declared.elements {
                String::new()
            } else {
                format!("{elements} elements of ")
            };
            format!("{part}{} {what}", dims(&declared.shape))
        })
    }

    /// Charges `bytes` for the data `describe` names (`1000 x 1000 float32`).
    pub(crate) fn charge_bytes(
        &self,
        key: &str,
        bytes: u64,
        describe: impl FnOnce() -> String,
    ) -> Result<()> {
        self.refuse_over_budget(key, bytes, bytes, describe)
    }

    fn refuse_over_budget(
        &self,
        key: &str,
        charged: u64,
        shown: u64,
        describe: impl FnOnce() -> String,
    ) -> Result<()> {
        self.budget.charge(charged).map_err(|e| {
            let size = budget::bytes(shown);
            let limit = self.budget.describe();
            let reason = if e.alone || e.already == 0 {
                format!("declares {} ({size}), more than {limit}", describe())
            } else {
                format!(
                    "declares {} ({size}); with the {} this read already holds, that is more \
                     than {limit}",
                    describe(),
                    budget::bytes(e.already)
                )
            };
            self.too_large(key, reason)
        })
    }

    pub(crate) fn corrupt(&self, message: impl Into<String>) -> IoError {
        IoError::Corrupt {
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dims;

    #[test]
    fn shapes_read_like_numpy_prints_them() {
        assert_eq!(dims(&[1_000_000, 1_000_000]), "1000000 x 1000000");
        assert_eq!(dims(&[]), "scalar");
    }
}
