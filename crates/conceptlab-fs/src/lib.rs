//! Safe outputs and inputs on the file system, shared by every crate that
//! writes a file (the h5ad writer, checkpoints, the CLI, xtask).
//!
//! The rules, each enforced here once:
//! - an output is never one of the run's inputs, never inside an input
//!   directory, and an output directory never holds an input;
//! - an output is a regular file (or, for model directories, a directory):
//!   `-o /dev/null --force` is refused rather than replacing the device node;
//! - an existing output is replaced only when asked (`force`);
//! - one writer per output at a time ([`OutputLock`], an advisory lock on a
//!   hidden sibling file); the lock holder also removes the temporary files
//!   of earlier writers that were killed;
//! - a file appears whole or not at all ([`AtomicFile`]: an unnamed
//!   `O_TMPFILE` inode on Linux, so even `kill -9` leaves nothing behind,
//!   linked and renamed into place once complete);
//! - inputs are regular files: a FIFO or a device is refused instead of
//!   blocking forever ([`check_input`]).
//!
//! It also says how much memory the machine has ([`memory`]), so that
//! sizes an input declares are refused before anything is allocated.
//!
//! The crate knows no file format and prints nothing.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod atomic;
mod claim;
mod error;
mod input;
mod lock;
pub mod memory;

pub use atomic::{AtomicFile, TEMPORARY_MARK, temporary_name, write_atomic};
pub use claim::{Claim, OutputKind};
pub use error::FsError;
pub use input::check_input;
pub use lock::OutputLock;
