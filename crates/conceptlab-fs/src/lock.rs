//! One writer per output.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::FsError;
use crate::atomic::{TEMPORARY_MARK, parent_of};

/// An advisory lock on `DIR/.NAME.lock`, held while a command produces
/// `DIR/NAME`. A second writer of the same output is refused at once
/// instead of racing the first (both would "succeed", the last rename
/// winning). The kernel drops the lock when its holder dies, so a killed
/// writer never blocks the next one; that next one removes the killed
/// writer's temporary files and, when it finishes, the lock file.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    // Held open for the lock; dropped after the lock file is unlinked.
    _file: File,
}

/// Attempts before giving up on a lock file that keeps being replaced
/// under us (each replacement means another writer came and went).
const ATTEMPTS: usize = 8;

impl OutputLock {
    /// Locks `target` for writing, or says who holds it.
    pub fn acquire(target: &Path) -> Result<OutputLock, FsError> {
        let name = file_name(target)?;
        let dir = parent_of(target);
        let path = dir.join(format!(".{name}.lock"));
        for _ in 0..ATTEMPTS {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| FsError::failed(&path, "create the lock file", e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(FsError::Busy {
                        path: target.to_path_buf(),
                        lock: path,
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(FsError::failed(&path, "lock", e));
                }
            }
            // The previous holder unlinks the file as it finishes; a lock on
            // an unlinked (or since re-created) file protects nothing.
            if same_file(&file, &path) {
                let lock = OutputLock { path, _file: file };
                remove_stale_temporaries(dir, &name)?;
                return Ok(lock);
            }
        }
        Err(FsError::Busy {
            path: target.to_path_buf(),
            lock: path,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock (see `acquire`).
        let _ = std::fs::remove_file(&self.path);
    }
}

fn file_name(target: &Path) -> Result<String, FsError> {
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| FsError::refused(target, "an output needs a file name"))
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Removes `.NAME.tmp-*` files and directories of writers that died before
/// renaming them into place. Only the lock holder calls this, and every
/// writer of NAME holds the lock, so none of them is in use.
fn remove_stale_temporaries(dir: &Path, name: &str) -> Result<(), FsError> {
    let prefix = format!(".{name}{TEMPORARY_MARK}");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(FsError::failed(dir, "list the directory", e)),
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        if !file_name.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(e) = removed
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(FsError::failed(path, "remove a stale temporary file", e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.h5ad");
        let first = OutputLock::acquire(&target).unwrap();
        let err = OutputLock::acquire(&target).unwrap_err();
        assert!(matches!(err, FsError::Busy { .. }), "{err}");
        assert!(err.is_bad_input());
        drop(first);
        assert!(!dir.path().join(".out.h5ad.lock").exists());
        OutputLock::acquire(&target).unwrap();
    }

    #[test]
    fn other_outputs_in_the_same_directory_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let _a = OutputLock::acquire(&dir.path().join("a.h5ad")).unwrap();
        let _b = OutputLock::acquire(&dir.path().join("b.h5ad")).unwrap();
    }

    #[test]
    fn stale_temporaries_of_the_same_output_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stale_file = dir.path().join(".out.h5ad.tmp-123");
        let stale_dir = dir.path().join(".out.h5ad.tmp-abc");
        let other = dir.path().join(".other.h5ad.tmp-123");
        std::fs::write(&stale_file, b"half").unwrap();
        std::fs::create_dir(&stale_dir).unwrap();
        std::fs::write(stale_dir.join("weights"), b"half").unwrap();
        std::fs::write(&other, b"someone else's").unwrap();
        let _lock = OutputLock::acquire(&dir.path().join("out.h5ad")).unwrap();
        assert!(!stale_file.exists() && !stale_dir.exists());
        assert!(other.exists());
    }
}
