//! sha256 and size of a file on disk, against what the manifest pins.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Entry, FetchError};

/// A file's lower-case hex sha256 and its size, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<(String, u64), FetchError> {
    let mut file =
        std::fs::File::open(path).map_err(|e| FetchError::io(path, "open to hash", e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| FetchError::io(path, "read to hash", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a file on disk is, measured against an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Size and hash are the pinned ones (or, unpinned, whatever they are).
    Matches { sha256: String },
    /// Size differs from the manifest's.
    WrongSize { actual: u64, expected: u64 },
    /// Hash differs from the manifest's.
    WrongHash { actual: String, expected: String },
}

/// Checks `path` against `entry`: the size first (cheap, and a wrong size
/// needs no hashing), then the sha256.
pub fn check(path: &Path, entry: &Entry) -> Result<Verdict, FetchError> {
    if let Some(expected) = entry.size {
        let actual = std::fs::metadata(path)
            .map_err(|e| FetchError::io(path, "inspect", e))?
            .len();
        if actual != expected {
            return Ok(Verdict::WrongSize { actual, expected });
        }
    }
    let (sha256, _) = sha256_file(path)?;
    match &entry.sha256 {
        Some(expected) if *expected != sha256 => Ok(Verdict::WrongHash {
            actual: sha256,
            expected: expected.clone(),
        }),
        _ => Ok(Verdict::Matches { sha256 }),
    }
}
