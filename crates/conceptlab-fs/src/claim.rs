//! Deciding whether an output may be written, before any work is done.

use std::path::{Path, PathBuf};

use crate::atomic::parent_of;
use crate::{FsError, OutputLock};

/// What an output is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A single regular file (an .h5ad, a JSON report).
    File,
    /// A directory written whole (a model); its parent is created if needed.
    Directory,
}

/// A request to write `target`, checked by [`Claim::acquire`] against the
/// run's inputs. Commands claim every output before reading or training,
/// so a refusal costs nothing and nothing is left behind.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    target: &'a Path,
    kind: OutputKind,
    force: bool,
    inputs: Vec<&'a Path>,
}

impl<'a> Claim<'a> {
    pub fn new(target: &'a Path, kind: OutputKind) -> Self {
        Claim {
            target,
            kind,
            force: false,
            inputs: Vec::new(),
        }
    }

    /// Whether an existing output may be replaced.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// A file or directory the run reads, which the output must never touch.
    pub fn input(mut self, input: &'a Path) -> Self {
        self.inputs.push(input);
        self
    }

    /// Checks the claim and locks the output for this process.
    pub fn acquire(self) -> Result<OutputLock, FsError> {
        let target = self.target;
        let dir = parent_of(target);
        match self.kind {
            OutputKind::Directory => std::fs::create_dir_all(dir)
                .map_err(|e| FsError::failed(dir, "create the output's directory", e))?,
            OutputKind::File if !dir.is_dir() => {
                return Err(FsError::refused(
                    target,
                    format!("the directory {} does not exist", dir.display()),
                ));
            }
            OutputKind::File => {}
        }
        let resolved = resolved(target)?;
        for input in &self.inputs {
            // An input that does not exist cannot be damaged; its reader
            // reports it.
            let Ok(input_path) = input.canonicalize() else {
                continue;
            };
            if resolved == input_path {
                return Err(FsError::refused(
                    target,
                    format!(
                        "refusing to overwrite the input {} (choose another output)",
                        input.display()
                    ),
                ));
            }
            if input_path.is_dir() && resolved.starts_with(&input_path) {
                return Err(FsError::refused(
                    target,
                    format!(
                        "is inside the input directory {}; refusing to write into an input (choose another output)",
                        input.display()
                    ),
                ));
            }
            if self.kind == OutputKind::Directory && input_path.starts_with(&resolved) {
                return Err(FsError::refused(
                    target,
                    format!(
                        "holds the input {}; replacing the directory would delete it (choose another output)",
                        input.display()
                    ),
                ));
            }
        }
        self.check_existing(target)?;
        OutputLock::acquire(target)
    }

    fn check_existing(&self, target: &Path) -> Result<(), FsError> {
        // Follows a symbolic link: what matters is what would be replaced.
        let meta = match std::fs::metadata(target) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FsError::failed(target, "inspect the output", e)),
        };
        let found = describe(&meta.file_type());
        let fits = match self.kind {
            OutputKind::File => meta.is_file(),
            OutputKind::Directory => meta.is_dir(),
        };
        if !fits {
            let wanted = match self.kind {
                OutputKind::File => "a regular file",
                OutputKind::Directory => "a directory",
            };
            return Err(FsError::refused(
                target,
                format!("is {found}; this output is written as {wanted} (choose another path)"),
            ));
        }
        // An empty directory holds nothing to lose (`mkdir out && fit -o out`).
        let empty_dir = meta.is_dir()
            && std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_none());
        if !self.force && !empty_dir {
            return Err(FsError::refused(
                target,
                "already exists (pass --force to replace it)",
            ));
        }
        Ok(())
    }
}

/// The absolute path `path` names, also when it does not exist yet (its
/// directory resolved, the file name appended).
fn resolved(path: &Path) -> Result<PathBuf, FsError> {
    if let Ok(p) = path.canonicalize() {
        return Ok(p);
    }
    let name = path
        .file_name()
        .ok_or_else(|| FsError::refused(path, "an output needs a file name"))?;
    let dir = parent_of(path);
    let dir = dir
        .canonicalize()
        .map_err(|e| FsError::failed(dir, "resolve the output's directory", e))?;
    Ok(dir.join(name))
}

/// "a directory", "a FIFO", ... for messages.
pub(crate) fn describe(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(claim: Claim) -> String {
        match claim.acquire() {
            Err(e @ FsError::Refused { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_output_is_never_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.h5ad");
        std::fs::write(&data, b"cells").unwrap();
        let msg = refused(Claim::new(&data, OutputKind::File).force(true).input(&data));
        assert!(msg.contains("input"), "{msg}");
        // Through a symbolic link too.
        #[cfg(unix)]
        {
            let link = dir.path().join("link.h5ad");
            std::os::unix::fs::symlink(&data, &link).unwrap();
            refused(Claim::new(&link, OutputKind::File).force(true).input(&data));
        }
        assert_eq!(std::fs::read(&data).unwrap(), b"cells");
    }

    #[test]
    fn an_output_is_never_inside_an_input_directory_nor_holds_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        std::fs::create_dir(&model).unwrap();
        std::fs::write(model.join("weights.safetensors"), b"w").unwrap();
        let inside = model.join("weights.safetensors");
        refused(
            Claim::new(&inside, OutputKind::File)
                .force(true)
                .input(&model),
        );
        let data = model.join("data.h5ad");
        std::fs::write(&data, b"cells").unwrap();
        let msg = refused(
            Claim::new(&model, OutputKind::Directory)
                .force(true)
                .input(&data),
        );
        assert!(msg.contains("delete"), "{msg}");
    }

    #[test]
    fn existing_outputs_need_force_and_the_right_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.h5ad");
        std::fs::write(&file, b"x").unwrap();
        let msg = refused(Claim::new(&file, OutputKind::File));
        assert!(msg.contains("--force"), "{msg}");
        Claim::new(&file, OutputKind::File)
            .force(true)
            .acquire()
            .unwrap();
        let msg = refused(Claim::new(dir.path(), OutputKind::File).force(true));
        assert!(msg.contains("a directory"), "{msg}");
        let msg = refused(Claim::new(&file, OutputKind::Directory).force(true));
        assert!(msg.contains("a regular file"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_never_outputs() {
        let msg = refused(Claim::new(Path::new("/dev/null"), OutputKind::File).force(true));
        assert!(msg.contains("character device"), "{msg}");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no/such/out.h5ad");
        let msg = refused(Claim::new(&target, OutputKind::File));
        assert!(msg.contains("does not exist"), "{msg}");
        // Model directories get their parents created.
        let model = dir.path().join("models/m1");
        Claim::new(&model, OutputKind::Directory).acquire().unwrap();
        assert!(dir.path().join("models").is_dir());
    }
}
