//! Inputs are regular files.

use std::path::Path;

use crate::FsError;
use crate::claim::describe;

/// Refuses an input that is not a regular file before anything opens it:
/// opening a FIFO blocks until a writer appears, and a device or directory
/// has no file to parse. A missing file is left to the reader, which knows
/// what the file was for.
pub fn check_input(path: &Path) -> Result<(), FsError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(FsError::refused(
            path,
            format!("is {}, not a regular file", describe(&meta.file_type())),
        )),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.h5ad");
        std::fs::write(&file, b"x").unwrap();
        check_input(&file).unwrap();
        check_input(&dir.path().join("missing.h5ad")).unwrap();
        let err = check_input(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
        #[cfg(unix)]
        {
            let err = check_input(Path::new("/dev/null")).unwrap_err().to_string();
            assert!(err.contains("character device"), "{err}");
        }
    }
}
