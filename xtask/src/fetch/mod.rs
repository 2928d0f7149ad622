//! Fetching the data sets of `data/manifest.toml`: download (resumable),
//! verify (size, sha256), promote, and unpack archives, skipping what is
//! already in place and verified. Prints nothing: progress goes to an
//! [`Observer`], results come back as a [`Report`]; `fetch_data.rs` renders.
//!
//! Files, for an entry with destination `DEST` (relative to the manifest):
//! - format `file`: the data set is `DEST`, downloaded into `DEST.part`;
//! - format `zip`: the archive is `downloads/NAME.zip` (via `.part`), unpacked
//!   into the directory `DEST` with a marker `DEST/.fetch-NAME.json`;
//! - an unpinned download that was not trusted waits as `… .unverified`.

mod download;
mod error;
mod manifest;
mod osf;
mod space;
mod unpack;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use conceptlab_fs::OutputLock;

pub use error::FetchError;
pub use manifest::{Entry, Format, Manifest, Source};

use download::Http;
use verify::Verdict;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct Options {
    /// Use (promote, unpack) a download whose sha256 the manifest does not
    /// pin. Off: such a download is kept aside and its hash reported.
    pub trust_unpinned: bool,
    /// Longest wait for a name lookup and for a connection: what makes an
    /// offline machine fail fast.
    pub connect_timeout: Duration,
    /// Longest wait for any single read from the server (a stalled transfer).
    pub read_timeout: Duration,
    /// Honour `HTTP(S)_PROXY`/`ALL_PROXY`/`NO_PROXY` from the environment.
    pub env_proxy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            trust_unpinned: false,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            env_proxy: true,
        }
    }
}

/// Something happening while an entry is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Looking up the download link of an OSF file.
    Resolve { name: &'a str, url: &'a str },
    /// Bytes start to arrive; `resume_from` of them were already there.
    Download {
        name: &'a str,
        url: &'a str,
        resume_from: u64,
        total: Option<u64>,
    },
    /// `done` bytes are in the partial file.
    Progress {
        name: &'a str,
        done: u64,
        total: Option<u64>,
    },
    /// The partial file was discarded and the download starts over.
    Restart { name: &'a str, reason: &'a str },
    /// A source failed and the next mirror is tried.
    Fallback { name: &'a str, reason: &'a str },
    /// Hashing a complete file.
    Verify { name: &'a str, path: &'a Path },
    /// Unpacking a verified archive.
    Unpack { name: &'a str, dest: &'a Path },
}

/// Receives [`Event`]s (a progress bar, log lines, a test's record).
pub trait Observer {
    /// Called as things happen, from the fetching thread.
    fn event(&mut self, event: Event<'_>);
}

/// What fetching an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was in place and verified: nothing downloaded or written.
    AlreadyThere,
    /// Downloaded (or resumed), verified and put in place.
    Downloaded,
    /// The archive (downloaded now or before) was unpacked into `files` files.
    Unpacked { files: usize },
}

/// The result of fetching one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The entry's name.
    pub name: String,
    /// What was done.
    pub outcome: Outcome,
    /// sha256 of the downloaded bytes.
    pub sha256: String,
    /// Whether that hash is the manifest's (false: trusted unpinned).
    pub pinned: bool,
    /// The data set on disk: the file, or the directory it unpacked into.
    pub path: PathBuf,
}

/// The file an entry downloads into (before any unpacking).
pub fn download_target(manifest: &Manifest, entry: &Entry) -> PathBuf {
    match entry.format {
        Format::File => manifest.root.join(&entry.dest),
        Format::Zip => manifest
            .root
            .join("downloads")
            .join(format!("{}.zip", entry.name)),
    }
}

/// Where the data set ends up.
pub fn destination(manifest: &Manifest, entry: &Entry) -> PathBuf {
    manifest.root.join(&entry.dest)
}

/// Whether `entry` is in place, judged without hashing (sizes and markers):
/// what `fetch-data --list` shows.
pub fn looks_present(manifest: &Manifest, entry: &Entry) -> bool {
    let dest = destination(manifest, entry);
    match entry.format {
        Format::Zip => unpack::valid_marker(&dest, entry).is_some(),
        Format::File => std::fs::metadata(&dest)
            .is_ok_and(|m| m.is_file() && entry.size.is_none_or(|s| s == m.len())),
    }
}

/// Fetches `entry`: skips it when in place and verified, otherwise downloads
/// (resuming a partial file), verifies, and puts it in place or unpacks it.
pub fn fetch(
    manifest: &Manifest,
    entry: &Entry,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Report, FetchError> {
    let dest = destination(manifest, entry);
    if entry.format == Format::Zip
        && let Some(marker) = unpack::valid_marker(&dest, entry)
    {
        return Ok(report(entry, Outcome::AlreadyThere, marker.sha256, &dest));
    }
    let target = download_target(manifest, entry);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| FetchError::io(parent, "create the download directory", e))?;
    }
    let _lock = OutputLock::acquire(&target)?;
    let sha256 = match in_place(entry, &target, observer)? {
        Some(sha256) if entry.format == Format::File => {
            return Ok(report(entry, Outcome::AlreadyThere, sha256, &dest));
        }
        Some(sha256) => sha256,
        None => download_and_verify(entry, &target, options, observer)?,
    };
    if entry.format == Format::File {
        return Ok(report(entry, Outcome::Downloaded, sha256, &dest));
    }
    if !entry.is_pinned() && !options.trust_unpinned {
        return Err(unpinned(entry, sha256, &target)?);
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| FetchError::io(parent, "create the destination's directory", e))?;
    }
    let _dest_lock = OutputLock::acquire(&dest)?;
    observer.event(Event::Unpack {
        name: &entry.name,
        dest: &dest,
    });
    let files = unpack::unpack(entry, &target, &sha256, &dest)?;
    Ok(report(entry, Outcome::Unpacked { files }, sha256, &dest))
}

fn report(entry: &Entry, outcome: Outcome, sha256: String, path: &Path) -> Report {
    Report {
        name: entry.name.clone(),
        outcome,
        sha256,
        pinned: entry.is_pinned(),
        path: path.to_path_buf(),
    }
}

/// The sha256 of `target` when it is already there and verifies. A data
/// file that does not verify is never replaced (it may be someone's own); a
/// stale archive in `downloads/` is ours and is deleted to be fetched again.
fn in_place(
    entry: &Entry,
    target: &Path,
    observer: &mut dyn Observer,
) -> Result<Option<String>, FetchError> {
    if std::fs::symlink_metadata(target).is_err() {
        return Ok(None);
    }
    observer.event(Event::Verify {
        name: &entry.name,
        path: target,
    });
    let reason = match verify::check(target, entry)? {
        Verdict::Matches { sha256 } => return Ok(Some(sha256)),
        Verdict::WrongSize { actual, expected } => {
            format!("{actual} bytes, expected {expected}")
        }
        Verdict::WrongHash { actual, .. } => format!("sha256 {actual}"),
    };
    match entry.format {
        Format::File => Err(FetchError::Mismatched {
            path: target.to_path_buf(),
            reason,
        }),
        Format::Zip => {
            observer.event(Event::Restart {
                name: &entry.name,
                reason: "the archive in downloads/ does not match the manifest",
            });
            std::fs::remove_file(target)
                .map_err(|e| FetchError::io(target, "remove a stale archive", e))?;
            Ok(None)
        }
    }
}

/// `target` with `suffix` appended to its file name.
fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    target.with_file_name(name)
}

/// Downloads (or takes the kept unverified download), verifies and renames
/// into `target`; returns the sha256.
fn download_and_verify(
    entry: &Entry,
    target: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<String, FetchError> {
    let part = sibling(target, ".part");
    let unverified = sibling(target, ".unverified");
    let downloaded = if unverified.is_file() {
        unverified.clone()
    } else {
        download_any(entry, &part, options, observer)?;
        part.clone()
    };
    observer.event(Event::Verify {
        name: &entry.name,
        path: &downloaded,
    });
    let sha256 = match verify::check(&downloaded, entry)? {
        Verdict::Matches { sha256 } => sha256,
        Verdict::WrongSize { actual, expected } => {
            remove(&downloaded)?;
            return Err(FetchError::SizeMismatch {
                path: downloaded,
                actual,
                expected,
            });
        }
        Verdict::WrongHash { actual, expected } => {
            remove(&downloaded)?;
            return Err(FetchError::HashMismatch {
                path: downloaded,
                actual,
                expected,
            });
        }
    };
    // A zip entry's archive may always sit in downloads/ (unpacking is what
    // trust decides); a data file must not appear under its real name
    // unverified.
    if !entry.is_pinned() && !options.trust_unpinned && entry.format == Format::File {
        if downloaded != unverified {
            rename(&downloaded, &unverified)?;
        }
        return Err(unpinned(entry, sha256, &unverified)?);
    }
    rename(&downloaded, target)?;
    Ok(sha256)
}

/// Tries the entry's sources in order; a cut-off transfer is not retried
/// elsewhere (the next run resumes it).
fn download_any(
    entry: &Entry,
    part: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<u64, FetchError> {
    let http = Http::new(options);
    let urls = match &entry.source {
        Source::Urls(urls) => urls.clone(),
        Source::Osf(osf) => {
            observer.event(Event::Resolve {
                name: &entry.name,
                url: &osf.api,
            });
            vec![osf::resolve(&http, osf)?]
        }
    };
    let mut last = None;
    for (i, url) in urls.iter().enumerate() {
        match http.download(&entry.name, url, part, entry.size, observer) {
            Ok(size) => return Ok(size),
            Err(e @ FetchError::Interrupted { .. }) => return Err(e),
            Err(e) if i + 1 < urls.len() => {
                observer.event(Event::Fallback {
                    name: &entry.name,
                    reason: &e.to_string(),
                });
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| FetchError::Protocol {
        url: String::new(),
        reason: format!("{} has no source", entry.name),
    }))
}

fn unpinned(entry: &Entry, sha256: String, path: &Path) -> Result<FetchError, FetchError> {
    let size = std::fs::metadata(path)
        .map_err(|e| FetchError::io(path, "inspect", e))?
        .len();
    Ok(FetchError::Unpinned {
        name: entry.name.clone(),
        actual: sha256,
        size,
        path: path.to_path_buf(),
    })
}

fn rename(from: &Path, to: &Path) -> Result<(), FetchError> {
    std::fs::rename(from, to).map_err(|e| FetchError::io(to, "move the download into place", e))
}

fn remove(path: &Path) -> Result<(), FetchError> {
    std::fs::remove_file(path).map_err(|e| FetchError::io(path, "remove a bad download", e))
}
