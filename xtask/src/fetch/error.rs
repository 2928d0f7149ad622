//! Everything that can stop a fetch, each with the file, key or URL it is
//! about and what to do next.

use std::path::PathBuf;

/// Why a data set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The manifest is not valid TOML of the expected shape (the message
    /// names the line and the key).
    #[error("{}: {message}", file.display())]
    ManifestParse { file: PathBuf, message: String },
    /// A manifest value is out of range.
    #[error("{}: [[dataset]] {entry}: key `{key}`: expected {expected}", file.display())]
    ManifestKey {
        file: PathBuf,
        entry: String,
        key: String,
        expected: String,
    },
    /// A name on the command line is not in the manifest.
    #[error("no data set named {name:?} in {} (known: {known})", file.display())]
    UnknownName {
        name: String,
        file: PathBuf,
        known: String,
    },
    /// No connection (no network, DNS failure, refused, timed out, TLS).
    #[error("cannot reach {url}: {reason} (is this machine offline?)")]
    Unreachable { url: String, reason: String },
    /// The server answered, but not with the file.
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// The server's answer does not make sense (a bad Content-Range, an OSF
    /// listing without the file, more bytes than the manifest's size).
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    /// The connection broke mid-body; what arrived is kept for resuming.
    #[error(
        "{url}: the download stopped after {received} bytes ({reason}); run again to resume from {}",
        part.display()
    )]
    Interrupted {
        url: String,
        received: u64,
        reason: String,
        part: PathBuf,
    },
    /// The bytes are not the ones the manifest pins; they were removed.
    #[error(
        "{}: sha256 {actual} does not match the manifest's {expected}; the download was deleted, nothing was unpacked",
        path.display()
    )]
    HashMismatch {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    /// The bytes are not the size the manifest says; they were removed.
    #[error(
        "{}: {actual} bytes, the manifest says {expected}; the download was deleted, nothing was unpacked",
        path.display()
    )]
    SizeMismatch {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    /// A file that is in place already but does not verify: never replaced.
    #[error(
        "{}: already exists but does not match the manifest ({reason}); move it away to download it again",
        path.display()
    )]
    Mismatched { path: PathBuf, reason: String },
    /// The entry has no pinned hash and unverified data was not trusted.
    #[error(
        "{name}: the manifest pins no sha256; the download ({size} bytes) has sha256 {actual} and is kept as {}. \
         Check it against the source and add `sha256 = \"{actual}\"` to the entry, or rerun with --trust-unpinned to use it unverified",
        path.display()
    )]
    Unpinned {
        name: String,
        actual: String,
        size: u64,
        path: PathBuf,
    },
    /// An archive entry that would land outside the destination, a link, or
    /// more bytes than declared.
    #[error("{}: entry {entry:?}: {reason}; nothing was unpacked", archive.display())]
    UnsafeArchive {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    /// Not a zip archive the reader understands.
    #[error("{}: not a readable zip archive: {source}", archive.display())]
    Zip {
        archive: PathBuf,
        source: zip::result::ZipError,
    },
    /// Not enough free disk space for what is about to be written.
    #[error("{}: {what} needs {needed} bytes, {available} are free", path.display())]
    NoSpace {
        path: PathBuf,
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// A file an archive would unpack is already there (and not from it).
    #[error("{}: already exists; {name} would overwrite it (move it away first)", path.display())]
    Exists { path: PathBuf, name: String },
    /// Claiming or locking an output.
    #[error(transparent)]
    Fs(#[from] conceptlab_fs::FsError),
    /// A file-system operation failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the cause is the input, the network or the data rather than
    /// this machine's file system (the CLI's exit 2 against exit 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            FetchError::Io { .. } => false,
            FetchError::Fs(e) => e.is_bad_input(),
            _ => true,
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        FetchError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
