//! Free disk space, checked before a download or an unpack writes anything.

use std::path::Path;

use super::FetchError;

/// Bytes an unprivileged writer may still use on the file system holding
/// `path` (or its nearest existing ancestor); `None` when it cannot be told.
pub fn available(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    let stats = rustix::fs::statvfs(existing).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Refuses when `needed` bytes will not fit next to `path`.
pub fn ensure(path: &Path, needed: u64, what: &'static str) -> Result<(), FetchError> {
    match available(path) {
        Some(available) if available < needed => Err(FetchError::NoSpace {
            path: path.to_path_buf(),
            what,
            needed,
            available,
        }),
        _ => Ok(()),
    }
}
