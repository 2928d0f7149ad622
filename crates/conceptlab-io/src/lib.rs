//! `.h5ad` reading and writing for conceptlab, on the pure-Rust `hdf5-pure`
//! crate: no C library, no CMake, nothing outside crates.io.
//!
//! * [`read_h5ad`] / [`H5ad::read`] load a whole file into a
//!   [`conceptlab_core::CellData`]; [`H5ad::read_rows`] reads a subset of
//!   cells without loading the whole matrix; [`H5ad::summary`] describes a
//!   file from its metadata.
//! * [`write_h5ad`] writes anndata's current encoding (what anndata 0.8-0.12
//!   write), with gzip or no compression, atomically (temporary file + rename);
//!   [`H5adStream`] writes the same bytes with X and layers pushed a block of
//!   rows at a time, in memory bounded by a block (for CSR matrices).
//! * Files in the pre-0.7 layout (compound `obs`/`var`, `uns/<col>_categories`,
//!   `h5sparse_format` matrices) are read too.
//! * Hostile input is refused from metadata, before anything of the declared
//!   size is allocated: every matrix's shape against the obs/var indices,
//!   sparse structure, storage against the file's size, and the total a read
//!   takes against a memory budget ([`H5ad::with_memory_limit`]; by default
//!   the memory the machine has available). The writer refuses what anndata
//!   could not read back.
//! * [`read_gene_sets`] reads gene-set files (GMT, Reactome TSV, GO GAF).
//!
//! This crate is a leaf of the workspace: models and metrics never depend on it.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(feature = "anndata-rs")]
pub mod anndata_rs;
mod attrs;
mod backed;
mod bounds;
mod budget;
mod compound;
mod error;
mod file;
mod frame;
mod gene_sets;
mod h5;
mod heap;
mod legacy;
mod read;
mod stream;
mod superblock;
mod writable;
mod write;

pub use error::{IoError, Result};
pub use file::{ColumnSummary, H5ad, Summary, read_h5ad};
pub use gene_sets::{
    GeneSetFormat, MAX_LINE_BYTES, MAX_LINES, MAX_SETS, parse_gene_sets, read_gene_sets,
};
pub use read::MatrixInfo;
pub use stream::{H5adStream, RowFormat};
pub use write::{Compression, WriteOptions, write_h5ad};
