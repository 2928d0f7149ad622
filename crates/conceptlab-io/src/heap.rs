//! Variable-length strings stored inside compound records, read from the
//! HDF5 global heap directly.
//!
//! anndata writes a record array's text fields (`uns/interventions` after a
//! Python re-save) as variable-length strings. `hdf5-pure` 0.47 resolves
//! variable-length data only for whole string datasets: its global-heap
//! reader is private, so the references inside a record are resolved here.
//!
//! A reference is `length: u32`, `collection address: offset-size bytes`,
//! `object index: u32`. A collection is `"GCOL"`, version 1, three reserved
//! bytes and its total size, followed by objects: `index: u16`,
//! `reference count: u16`, four reserved bytes, `size: length-size bytes` and
//! the data padded to a multiple of 8. Object 0 is the free space that ends
//! the collection.

use std::collections::HashMap;

use crate::error::Result;
use crate::h5::H5File;

const SIGNATURE: &[u8; 4] = b"GCOL";

/// Bytes of one reference inside a record.
pub(crate) fn reference_size(offset_size: u8) -> usize {
    8 + usize::from(offset_size)
}

fn le(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(buf)
}

/// One collection's objects: index -> (absolute data offset, size).
type Objects = HashMap<u16, (u64, u64)>;

/// Resolves references against the global heap of one file, reading each
/// collection once.
pub(crate) struct GlobalHeap<'a> {
    h5: &'a H5File,
    key: &'a str,
    offset_size: u8,
    length_size: u8,
    base: u64,
    collections: HashMap<u64, Objects>,
}

impl<'a> GlobalHeap<'a> {
    pub(crate) fn new(h5: &'a H5File, key: &'a str) -> Self {
        let (offset_size, length_size, base) = h5.address_format();
        Self {
            h5,
            key,
            offset_size,
            length_size,
            base,
            collections: HashMap::new(),
        }
    }

    pub(crate) fn reference_size(&self) -> usize {
        reference_size(self.offset_size)
    }

    /// The string a reference (`reference_size` bytes) names; a null
    /// reference (length 0) is the empty string, as h5py writes `""`.
    pub(crate) fn string(&mut self, reference: &[u8]) -> Result<String> {
        let width = usize::from(self.offset_size);
        if reference.len() < 8 + width {
            return Err(self
                .h5
                .invalid(self.key, "variable-length reference is cut short"));
        }
        let length = le(&reference[..4]);
        if length == 0 {
            return Ok(String::new());
        }
        let stored = le(&reference[4..4 + width]);
        let index = le(&reference[4 + width..8 + width]);
        let collection = self.base.checked_add(stored).ok_or_else(|| {
            self.h5
                .corrupt(format!("`{}`: global heap address overflows", self.key))
        })?;
        let index = u16::try_from(index).map_err(|_| {
            self.h5.invalid(
                self.key,
                format!("global heap object index {index} is out of range"),
            )
        })?;
        let (at, size) = self.object(collection, index)?;
        if length > size {
            return Err(self.h5.invalid(
                self.key,
                format!("string of {length} bytes in a global heap object of {size}"),
            ));
        }
        self.h5
            .charge_bytes(self.key, length, || "variable-length string".to_owned())?;
        let bytes = self.h5.bytes_at(self.key, at, length)?;
        String::from_utf8(bytes).map_err(|_| {
            self.h5
                .invalid(self.key, "variable-length string is not UTF-8")
        })
    }

    fn object(&mut self, collection: u64, index: u16) -> Result<(u64, u64)> {
        if !self.collections.contains_key(&collection) {
            let objects = self.read_collection(collection)?;
            self.collections.insert(collection, objects);
        }
        self.collections
            .get(&collection)
            .and_then(|objects| objects.get(&index))
            .copied()
            .ok_or_else(|| {
                self.h5.invalid(
                    self.key,
                    format!("global heap collection at byte {collection} has no object {index}"),
                )
            })
    }

    fn read_collection(&self, at: u64) -> Result<Objects> {
        let lengths = usize::from(self.length_size);
        let header = 8 + lengths;
        let head = self.h5.bytes_at(self.key, at, header as u64)?;
        if &head[..4] != SIGNATURE {
            return Err(self
                .h5
                .invalid(self.key, format!("no global heap collection at byte {at}")));
        }
        let size = le(&head[8..]);
        if size < header as u64 {
            return Err(self.h5.invalid(
                self.key,
                format!("global heap collection at byte {at} declares {size} bytes"),
            ));
        }
        // The collection lies in the file (checked by `bytes_at`), so reading
        // it costs at most the file's size; it is charged like any other read.
        self.h5
            .charge_bytes(self.key, size, || "a global heap collection".to_owned())?;
        let body = self.h5.bytes_at(self.key, at, size)?;
        let mut objects = Objects::new();
        let mut pos = header;
        let object_header = 8 + lengths;
        while pos + object_header <= body.len() {
            let index = le(&body[pos..pos + 2]) as u16;
            let object_size = le(&body[pos + 8..pos + object_header]);
            if index == 0 {
                break;
            }
            let data = pos + object_header;
            let end = (data as u64)
                .checked_add(object_size)
                .filter(|&end| end <= body.len() as u64)
                .ok_or_else(|| {
                    self.h5.invalid(
                        self.key,
                        format!("global heap object {index} at byte {at} runs past its collection"),
                    )
                })?;
            objects.insert(index, (at + data as u64, object_size));
            // Objects are padded to eight bytes.
            pos = usize::try_from(end.div_ceil(8) * 8).unwrap_or(usize::MAX);
        }
        Ok(objects)
    }
}
