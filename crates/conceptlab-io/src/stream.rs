//! Writing an `.h5ad` file whose big matrices arrive a block of rows at a
//! time, in memory bounded by a block rather than by the file.
//!
//! hdf5-pure's `FileBuilder` takes every dataset's values before it writes a
//! byte, so the matrices cannot come from it: the small elements and a
//! skeleton of each CSR matrix (growable, empty datasets) are written with
//! it, and the values are then appended in place through hdf5-pure's
//! read-write session (`File::open_rw`, bounded memory). Until then the rows
//! pushed wait in anonymous spool files next to the output, so memory holds
//! one pushed block and the spool buffers. See `docs/architecture.md`
//! ("Streaming h5ad writer") for why this and not a hand-written HDF5 writer.
//!
//! Dense matrices have no growable form hdf5-pure can append to (appends are
//! for one-dimensional datasets), so a dense matrix pushed here is gathered
//! in memory and written whole; sparse input stays bounded.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use conceptlab_core::{CellData, DType, DenseArray, Matrix, NumVec, SparseFormat};

use crate::error::{IoError, Result};
use crate::write::{
    Part, Skeleton, Slot, WriteOptions, build, emit, push_index_range, push_le_range,
};

/// How the rows of a streamed matrix are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// A dense two-dimensional array (gathered in memory; see the module docs).
    Dense,
    /// CSR: written in bounded memory.
    Csr,
}

/// Bytes each spool file buffers before writing.
const SPOOL_BUFFER: usize = 1 << 16;

/// An `.h5ad` being written with `X` and chosen layers pushed row block by
/// row block ([`H5adStream::push`]); [`H5adStream::finish`] writes the file
/// (atomically, like [`crate::write_h5ad`]). Its bytes are those
/// [`crate::write_h5ad`] writes for the same data, however the rows were
/// split into blocks.
#[derive(Debug)]
pub struct H5adStream {
    path: PathBuf,
    shown: String,
    options: WriteOptions,
    head: CellData,
    streams: Vec<RowStream>,
    /// The most bytes of rows this writer held at once (pushed blocks while
    /// converted, dense gathers, spool and append buffers).
    peak: usize,
}

#[derive(Debug)]
struct RowStream {
    slot: Slot,
    shape: (usize, usize),
    dtype: DType,
    rows: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Dense(NumVec),
    Csr {
        data: Spool,
        indices: Spool,
        indptr: Spool,
        nnz: u64,
        max_index: u32,
    },
}

/// An anonymous temporary file written once and read back once.
#[derive(Debug)]
struct Spool(BufWriter<File>);

impl Spool {
    fn new(dir: &Path, shown: &str) -> Result<Spool> {
        let file = tempfile::tempfile_in(dir).map_err(|e| IoError::Write {
            path: shown.to_owned(),
            reason: format!("cannot create a spool file in {}: {e}", dir.display()),
        })?;
        Ok(Spool(BufWriter::with_capacity(SPOOL_BUFFER, file)))
    }

    fn reader(self) -> std::io::Result<BufReader<File>> {
        let mut file = self.0.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(BufReader::with_capacity(SPOOL_BUFFER, file))
    }
}

impl H5adStream {
    /// Starts writing `path`. `head` holds everything but the rows of the
    /// matrices named in `streamed` (`"X"` or `"layers/NAME"`): there it
    /// holds a placeholder (an empty CSR matrix costs nothing) whose shape
    /// and value type the pushed rows must have. `head` is checked as
    /// [`crate::write_h5ad`] checks a whole data set.
    pub fn create(
        path: impl AsRef<Path>,
        head: CellData,
        streamed: &[(&str, RowFormat)],
        options: &WriteOptions,
    ) -> Result<H5adStream> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        head.validate().map_err(|error| IoError::Data {
            path: shown.clone(),
            error,
        })?;
        crate::writable::check(&head, &shown)?;
        let dir = crate::write::parent_dir(&path);
        let mut streams = Vec::new();
        for &(key, format) in streamed {
            let (slot, placeholder) = match key.strip_prefix("layers/") {
                None if key == "X" => (Slot::X, Some(&head.x)),
                Some(name) => (Slot::Layer(name.to_owned()), head.layers.get(name)),
                None => (Slot::Layer(key.to_owned()), None),
            };
            let Some(placeholder) = placeholder else {
                return Err(IoError::Invalid {
                    path: shown,
                    key: key.to_owned(),
                    reason: "only X and layers/NAME (a layer of the data) can be streamed".into(),
                });
            };
            if streams.iter().any(|s: &RowStream| s.slot == slot) {
                return Err(IoError::Invalid {
                    path: shown,
                    key: key.to_owned(),
                    reason: "named twice".into(),
                });
            }
            let (shape, dtype) = (placeholder.shape(), placeholder.dtype());
            let kind = match format {
                RowFormat::Dense => Kind::Dense(NumVec::empty(dtype)),
                RowFormat::Csr => {
                    let mut indptr = Spool::new(dir, &shown)?;
                    write_spool(&mut indptr.0, &0u64.to_le_bytes(), &shown)?;
                    Kind::Csr {
                        data: Spool::new(dir, &shown)?,
                        indices: Spool::new(dir, &shown)?,
                        indptr,
                        nnz: 0,
                        max_index: 0,
                    }
                }
            };
            streams.push(RowStream {
                slot,
                shape,
                dtype,
                rows: 0,
                kind,
            });
        }
        // Reading the spools back at the end takes their buffers and two
        // append pieces (the bytes read, the bytes converted).
        let peak = 3 * SPOOL_BUFFER * streams.len() + 2 * crate::write::APPEND_PIECE_BYTES;
        Ok(H5adStream {
            path,
            shown,
            options: *options,
            head,
            streams,
            peak,
        })
    }

    /// The most bytes of matrix values this writer has held at once so far:
    /// what its memory use grows with (a pushed block while it is converted,
    /// dense matrices gathered whole, spool and append buffers).
    pub fn peak_buffered_bytes(&self) -> usize {
        self.peak
    }

    /// Appends `rows` (the next rows, in order) to the matrix `key`. They
    /// must have its columns and value type, and be stored as it was
    /// declared (dense rows, or a CSR block).
    pub fn push(&mut self, key: &str, rows: &Matrix) -> Result<()> {
        let shown = self.shown.clone();
        let invalid = |reason: String| IoError::Invalid {
            path: shown.clone(),
            key: key.to_owned(),
            reason,
        };
        let spools = 3 * SPOOL_BUFFER * self.streams.len();
        let gathered: usize = self.streams.iter().map(RowStream::gathered_bytes).sum();
        let Some(stream) = self.streams.iter_mut().find(|s| s.slot.key() == key) else {
            return Err(invalid(
                "not one of the matrices this writer streams".into(),
            ));
        };
        let (n, cols) = rows.shape();
        if cols != stream.shape.1 || rows.dtype() != stream.dtype {
            return Err(invalid(format!(
                "rows of {cols} {} columns pushed to a matrix of {} {} columns",
                rows.dtype().name(),
                stream.shape.1,
                stream.dtype.name()
            )));
        }
        if stream.rows + n > stream.shape.0 {
            return Err(invalid(format!(
                "{} rows pushed to a matrix of {}",
                stream.rows + n,
                stream.shape.0
            )));
        }
        let write = |spool: &mut Spool, bytes: &[u8]| write_spool(&mut spool.0, bytes, &shown);
        let held = match (&mut stream.kind, rows) {
            (Kind::Dense(all), Matrix::Dense(d)) if d.shape.len() == 2 => {
                all.extend_from(&d.data)
                    .map_err(|e| invalid(e.to_string()))?;
                0
            }
            (
                Kind::Csr {
                    data,
                    indices,
                    indptr,
                    nnz,
                    max_index,
                },
                Matrix::Sparse(s),
            ) if s.format == SparseFormat::Csr => {
                let mut bytes = Vec::new();
                push_le_range(&mut bytes, &s.data, 0..s.nnz());
                write(data, &bytes)?;
                let mut held = bytes.len();
                bytes.clear();
                for &i in &s.indices {
                    bytes.extend_from_slice(&i.to_le_bytes());
                }
                write(indices, &bytes)?;
                held = held.max(bytes.len());
                bytes.clear();
                for &p in &s.indptr[1..] {
                    bytes.extend_from_slice(&(*nnz + p).to_le_bytes());
                }
                write(indptr, &bytes)?;
                held = held.max(bytes.len());
                *nnz += s.nnz() as u64;
                *max_index = (*max_index).max(s.indices.iter().copied().max().unwrap_or(0));
                held
            }
            _ => {
                return Err(invalid(format!(
                    "{} rows pushed to a matrix streamed as {}",
                    rows.encoding(),
                    match stream.kind {
                        Kind::Dense(_) => "dense rows",
                        Kind::Csr { .. } => "CSR blocks",
                    }
                )));
            }
        };
        stream.rows += n;
        let now = spools + gathered.max(stream.gathered_bytes()) + held;
        self.peak = self.peak.max(now);
        Ok(())
    }

    /// Replaces everything but the streamed rows with `head` (checked as
    /// [`H5adStream::create`] checks it; its placeholders must have the
    /// shapes and element types the rows were pushed with), then
    /// [`H5adStream::finish`]es: for a caller that knows the small elements
    /// only once the rows have gone through.
    pub fn finish_with(mut self, head: CellData) -> Result<()> {
        head.validate().map_err(|error| IoError::Data {
            path: self.shown.clone(),
            error,
        })?;
        crate::writable::check(&head, &self.shown)?;
        for stream in &self.streams {
            let placeholder = match &stream.slot {
                Slot::X => Some(&head.x),
                Slot::Layer(name) => head.layers.get(name),
            };
            if placeholder.map(|m| (m.shape(), m.dtype())) != Some((stream.shape, stream.dtype)) {
                return Err(IoError::Invalid {
                    path: self.shown,
                    key: stream.slot.key(),
                    reason: format!(
                        "the final data has no {} {:?} matrix here to stand for the rows",
                        stream.dtype.name(),
                        stream.shape
                    ),
                });
            }
        }
        self.head = head;
        self.finish()
    }

    /// Writes the file: every streamed matrix must have all its rows.
    pub fn finish(mut self) -> Result<()> {
        let mut skeletons = Vec::new();
        let mut readers = Vec::new();
        for stream in std::mem::take(&mut self.streams) {
            if stream.rows != stream.shape.0 {
                return Err(IoError::Invalid {
                    path: self.shown,
                    key: stream.slot.key(),
                    reason: format!(
                        "{} of its {} rows were written",
                        stream.rows, stream.shape.0
                    ),
                });
            }
            match stream.kind {
                Kind::Dense(values) => {
                    let array = DenseArray::new(vec![stream.shape.0, stream.shape.1], values)
                        .map_err(|error| IoError::Data {
                            path: self.shown.clone(),
                            error,
                        })?;
                    let m = Matrix::Dense(array);
                    match &stream.slot {
                        Slot::X => self.head.x = m,
                        Slot::Layer(name) => {
                            self.head.layers.insert(name.clone(), m);
                        }
                    }
                }
                Kind::Csr {
                    data,
                    indices,
                    indptr,
                    nnz,
                    max_index,
                } => {
                    let nnz = usize::try_from(nnz).map_err(|_| IoError::Write {
                        path: self.shown.clone(),
                        reason: "more stored values than this machine can address".into(),
                    })?;
                    skeletons.push(Skeleton::new(
                        stream.slot,
                        stream.shape,
                        stream.dtype,
                        nnz,
                        max_index,
                    ));
                    let spool_err = |e: std::io::Error| IoError::Write {
                        path: self.shown.clone(),
                        reason: format!("reading back a spool file: {e}"),
                    };
                    readers.push([
                        data.reader().map_err(spool_err)?,
                        indices.reader().map_err(spool_err)?,
                        indptr.reader().map_err(spool_err)?,
                    ]);
                }
            }
        }
        let builder = build(&self.head, &self.options, &skeletons, &self.shown)?;
        let shown = self.shown.clone();
        let mut raw = Vec::new();
        emit(
            &self.path,
            &self.shown,
            builder,
            &skeletons,
            |sk, part, range, out| {
                let at = skeletons
                    .iter()
                    .position(|s| s.slot == sk.slot)
                    .unwrap_or_default();
                let (index, width) = match part {
                    Part::Data => (0, sk.dtype.size_of()),
                    Part::Indices => (1, 4),
                    Part::Indptr => (2, 8),
                };
                raw.resize(range.len() * width, 0);
                readers[at][index]
                    .read_exact(&mut raw)
                    .map_err(|e| IoError::Write {
                        path: shown.clone(),
                        reason: format!("reading back a spool file: {e}"),
                    })?;
                match part {
                    Part::Data => out.extend_from_slice(&raw),
                    Part::Indices => {
                        let v: Vec<u32> = raw
                            .chunks_exact(4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect();
                        push_index_range(out, &v, sk.wide_indices);
                    }
                    Part::Indptr => {
                        let v: Vec<u64> = raw
                            .chunks_exact(8)
                            .map(|b| {
                                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                            })
                            .collect();
                        push_index_range(out, &v, sk.wide_indptr);
                    }
                }
                Ok(())
            },
        )
    }
}

impl RowStream {
    fn gathered_bytes(&self) -> usize {
        match &self.kind {
            Kind::Dense(v) => v.len() * self.dtype.size_of(),
            Kind::Csr { .. } => 0,
        }
    }
}

fn write_spool(spool: &mut BufWriter<File>, bytes: &[u8], shown: &str) -> Result<()> {
    spool.write_all(bytes).map_err(|e| IoError::Write {
        path: shown.to_owned(),
        reason: format!("writing a spool file: {e}"),
    })
}
