//! Files that appear whole or not at all.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::FsError;

/// What marks a temporary sibling: `DIR/.NAME.tmp-…` stands for `DIR/NAME`.
pub const TEMPORARY_MARK: &str = ".tmp-";

/// The directory `path` is in (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `DIR/.NAME.tmp-<pid>`: hidden, in the target's directory (so renaming it
/// over the target is atomic), and recognised as stale by [`crate::OutputLock`].
pub fn temporary_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}{TEMPORARY_MARK}{}", std::process::id()))
}

/// A file being written for `target`. Until [`AtomicFile::commit`] nothing
/// exists at `target` that was not there before; dropping it uncommitted
/// leaves no trace. On Linux the data goes to an unnamed `O_TMPFILE` inode,
/// so even a killed process leaves nothing behind; elsewhere to a named
/// temporary sibling that the next writer's lock removes.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    file: File,
    /// Where the data is while being written, when it has a name.
    named: Option<PathBuf>,
}

impl AtomicFile {
    /// Starts writing `target` (its directory must exist).
    pub fn create(target: &Path) -> Result<AtomicFile, FsError> {
        let dir = parent_of(target);
        if let Some(file) = unnamed_in(dir) {
            return Ok(AtomicFile {
                target: target.to_path_buf(),
                file,
                named: None,
            });
        }
        let tmp = temporary_name(target);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| FsError::failed(&tmp, "create a temporary file", e))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            file,
            named: Some(tmp),
        })
    }

    /// The file to write into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// A path that opens the file being written a second time (its
    /// temporary name, or on Linux its `/proc/self/fd` entry when it has no
    /// name), for a library that edits a file by path rather than through
    /// an open handle. Valid until [`AtomicFile::commit`] or drop.
    pub fn reopen_path(&self) -> PathBuf {
        if let Some(named) = &self.named {
            return named.clone();
        }
        reopen_unnamed(&self.file)
    }

    /// Flushes the data to disk and puts the file at its target, replacing
    /// whatever file was there in one rename.
    pub fn commit(mut self) -> Result<(), FsError> {
        let target = self.target.clone();
        self.file
            .sync_all()
            .map_err(|e| FsError::failed(&target, "write", e))?;
        let staged = match self.named.take() {
            Some(path) => path,
            None => {
                let path = temporary_name(&target);
                link_unnamed(&self.file, &path)?;
                path
            }
        };
        if let Err(e) = std::fs::rename(&staged, &target) {
            let _ = std::fs::remove_file(&staged);
            return Err(FsError::failed(
                &target,
                "rename the finished file into place",
                e,
            ));
        }
        sync_dir(parent_of(&target));
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(path) = &self.named {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `bytes` to `target` whole (see [`AtomicFile`]).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let mut file = AtomicFile::create(target)?;
    file.file()
        .write_all(bytes)
        .map_err(|e| FsError::failed(target, "write", e))?;
    file.commit()
}

/// An unnamed file in `dir`, when the kernel and file system offer one and
/// /proc lets us give it a name later.
#[cfg(target_os = "linux")]
fn unnamed_in(dir: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags};
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    let flags = OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC;
    // The umask applies as for any created file.
    let mode = Mode::from_raw_mode(0o666);
    rustix::fs::open(dir, flags, mode).ok().map(File::from)
}

#[cfg(target_os = "linux")]
fn reopen_unnamed(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

// Only Linux creates unnamed files, so elsewhere every file has a name.
#[cfg(not(target_os = "linux"))]
fn reopen_unnamed(_file: &File) -> PathBuf {
    PathBuf::new()
}

#[cfg(not(target_os = "linux"))]
fn unnamed_in(_dir: &Path) -> Option<File> {
    None
}

#[cfg(target_os = "linux")]
fn link_unnamed(file: &File, at: &Path) -> Result<(), FsError> {
    use rustix::fs::{AtFlags, CWD};
    use std::os::fd::AsRawFd;
    // A leftover of a killed writer with our pid would make linkat fail.
    let _ = std::fs::remove_file(at);
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(CWD, proc_path.as_str(), CWD, at, AtFlags::SYMLINK_FOLLOW)
        .map_err(|e| FsError::failed(at, "name the finished file", e.into()))
}

#[cfg(not(target_os = "linux"))]
fn link_unnamed(_file: &File, at: &Path) -> Result<(), FsError> {
    Err(FsError::failed(
        at,
        "name the finished file",
        std::io::ErrorKind::Unsupported.into(),
    ))
}

/// Makes the rename itself durable; a failure only weakens durability.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_appears_before_commit_and_nothing_stays_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&target).unwrap();
        f.file().write_all(b"partial").unwrap();
        #[cfg(target_os = "linux")]
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
        drop(f);
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn commit_replaces_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        std::fs::write(&target, b"old contents").unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(entries(dir.path()), vec!["out.bin".to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn committed_files_get_the_usual_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        write_atomic(&target, b"x").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        // 0o666 less whatever umask the test runs under: readable by others
        // unless the umask says otherwise, never executable.
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_eq!(mode & 0o111, 0, "{mode:o}");
    }
}
