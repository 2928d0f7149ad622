use std::path::PathBuf;

/// Why an output or input was refused, or the file system failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The request itself is unsafe or impossible (the user can fix it).
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    /// A plan needs more memory than the machine has.
    #[error("{what}: needs about {needed} of memory; this machine has {available} available")]
    Memory {
        what: String,
        needed: String,
        available: String,
    },
    /// Another process is writing the same output.
    #[error(
        "{}: another process is writing it (it holds the lock {}); wait for it or choose another output",
        path.display(),
        lock.display()
    )]
    Busy { path: PathBuf, lock: PathBuf },
    /// The operating system failed an operation.
    // The cause is part of the message and deliberately not a `source`:
    // binaries print the whole chain, which would repeat it.
    #[error("{}: cannot {action}: {cause}", path.display())]
    Failed {
        path: PathBuf,
        action: &'static str,
        cause: std::io::Error,
    },
}

impl FsError {
    /// True when the user's request caused the error (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            FsError::Refused { .. } | FsError::Busy { .. } | FsError::Memory { .. } => true,
            // A missing directory or a read-only target are the user's to fix too.
            FsError::Failed { cause, .. } => matches!(
                cause.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotADirectory
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::StorageFull
            ),
        }
    }

    pub(crate) fn refused(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        FsError::Refused {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn failed(
        path: impl Into<PathBuf>,
        action: &'static str,
        cause: std::io::Error,
    ) -> Self {
        FsError::Failed {
            path: path.into(),
            action,
            cause,
        }
    }
}
