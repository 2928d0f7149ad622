//! Unpacking a verified zip archive into its destination directory, safely:
//! every entry's path must stay inside the destination (no `..`, no absolute
//! path, no link), the declared sizes must fit the manifest's bound and the
//! free disk before a byte is written, no entry may inflate past its
//! declared size, and files not from this archive are never overwritten.
//! Everything is unpacked into a hidden staging directory next to the
//! destination first and moved into place only once complete; a marker file
//! then records what was unpacked, so the next run can skip it.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use zip::ZipArchive;

use super::{Entry, FetchError, space};

/// More entries than any data archive has: a bound on the planning work.
const MAX_ENTRIES: usize = 200_000;

/// What a completed unpack left behind: `DEST/.fetch-NAME.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    /// The manifest entry.
    pub name: String,
    /// sha256 of the archive the files came from.
    pub sha256: String,
    /// Every unpacked file, relative to the destination, with its size.
    pub files: Vec<MarkedFile>,
}

/// One unpacked file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MarkedFile {
    /// Relative to the destination, '/'-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
}

/// Where the marker of `entry` lives.
pub fn marker_path(dest: &Path, entry: &Entry) -> PathBuf {
    dest.join(format!(".fetch-{}.json", entry.name))
}

/// The marker of an earlier unpack of `entry`, if there is one.
fn read_marker(dest: &Path, entry: &Entry) -> Option<Marker> {
    let text = std::fs::read_to_string(marker_path(dest, entry)).ok()?;
    let marker: Marker = serde_json::from_str(&text).ok()?;
    (marker.name == entry.name).then_some(marker)
}

/// The marker of an earlier unpack when it still holds: the archive's hash is
/// the pinned one (any, for an unpinned entry) and every file it lists is
/// there with its size.
pub fn valid_marker(dest: &Path, entry: &Entry) -> Option<Marker> {
    let marker = read_marker(dest, entry)?;
    if entry
        .sha256
        .as_ref()
        .is_some_and(|pinned| *pinned != marker.sha256)
    {
        return None;
    }
    let intact = marker.files.iter().all(|f| {
        std::fs::symlink_metadata(dest.join(&f.path))
            .is_ok_and(|m| m.is_file() && m.len() == f.size)
    });
    intact.then_some(marker)
}

struct Planned {
    index: usize,
    relative: PathBuf,
    is_dir: bool,
    size: u64,
}

/// Unpacks `archive` (whose sha256 is `sha256`) into `dest` and returns the
/// number of files written. The caller holds the lock on `dest`.
pub fn unpack(
    entry: &Entry,
    archive: &Path,
    sha256: &str,
    dest: &Path,
) -> Result<usize, FetchError> {
    let file = File::open(archive).map_err(|e| FetchError::io(archive, "open the archive", e))?;
    let mut zip = ZipArchive::new(file).map_err(|source| FetchError::Zip {
        archive: archive.to_path_buf(),
        source,
    })?;
    let unsafe_entry = |name: &str, reason: String| FetchError::UnsafeArchive {
        archive: archive.to_path_buf(),
        entry: name.to_string(),
        reason,
    };
    if zip.len() > MAX_ENTRIES {
        return Err(unsafe_entry(
            "(all)",
            format!("{} entries, more than {MAX_ENTRIES}", zip.len()),
        ));
    }
    let mut plan = Vec::with_capacity(zip.len());
    let mut total = 0u64;
    for index in 0..zip.len() {
        let item = zip.by_index_raw(index).map_err(|source| FetchError::Zip {
            archive: archive.to_path_buf(),
            source,
        })?;
        let name = String::from_utf8_lossy(item.name_raw()).into_owned();
        let relative = item
            .enclosed_name()
            .filter(|p| {
                p.components().next().is_some()
                    && p.components().all(|c| matches!(c, Component::Normal(_)))
            })
            .ok_or_else(|| unsafe_entry(&name, "its path leaves the destination".to_string()))?;
        if item.is_symlink() {
            return Err(unsafe_entry(&name, "a symbolic link".to_string()));
        }
        if relative
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".fetch-"))
        {
            return Err(unsafe_entry(
                &name,
                "the name of a fetch marker".to_string(),
            ));
        }
        total = total
            .checked_add(item.size())
            .ok_or_else(|| unsafe_entry(&name, "sizes that overflow".to_string()))?;
        plan.push(Planned {
            index,
            relative,
            is_dir: item.is_dir(),
            size: item.size(),
        });
    }
    if let Some(limit) = entry.unpacked_size
        && total > limit
    {
        return Err(unsafe_entry(
            "(all)",
            format!(
                "declares {total} unpacked bytes, more than the manifest's unpacked_size of {limit}"
            ),
        ));
    }
    space::ensure(dest, total, "unpacking")?;

    // Files of an earlier unpack of this entry may be replaced; nothing else.
    let ours: HashSet<String> = read_marker(dest, entry)
        .map(|m| m.files.into_iter().map(|f| f.path).collect())
        .unwrap_or_default();
    for planned in plan.iter().filter(|p| !p.is_dir) {
        let target = dest.join(&planned.relative);
        if std::fs::symlink_metadata(&target).is_ok() && !ours.contains(&slashed(&planned.relative))
        {
            return Err(FetchError::Exists {
                path: target,
                name: entry.name.clone(),
            });
        }
    }

    let staging = Staging::create(dest)?;
    for planned in &plan {
        let staged = staging.path.join(&planned.relative);
        if planned.is_dir {
            std::fs::create_dir_all(&staged)
                .map_err(|e| FetchError::io(&staged, "create a directory", e))?;
            continue;
        }
        if let Some(parent) = staged.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| FetchError::io(parent, "create a directory", e))?;
        }
        let item = zip
            .by_index(planned.index)
            .map_err(|source| FetchError::Zip {
                archive: archive.to_path_buf(),
                source,
            })?;
        let mut out = File::create(&staged).map_err(|e| FetchError::io(&staged, "create", e))?;
        // One byte past the declared size is enough to catch a liar.
        let written = std::io::copy(&mut item.take(planned.size + 1), &mut out).map_err(|e| {
            unsafe_entry(&slashed(&planned.relative), format!("cannot be read: {e}"))
        })?;
        if written != planned.size {
            return Err(unsafe_entry(
                &slashed(&planned.relative),
                format!(
                    "declares {} bytes but holds {written} or more",
                    planned.size
                ),
            ));
        }
        out.sync_all()
            .map_err(|e| FetchError::io(&staged, "flush to disk", e))?;
    }

    let mut files = Vec::new();
    for planned in &plan {
        let target = dest.join(&planned.relative);
        if planned.is_dir {
            std::fs::create_dir_all(&target)
                .map_err(|e| FetchError::io(&target, "create a directory", e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| FetchError::io(parent, "create a directory", e))?;
        }
        let staged = staging.path.join(&planned.relative);
        std::fs::rename(&staged, &target)
            .map_err(|e| FetchError::io(&target, "move into place", e))?;
        files.push(MarkedFile {
            path: slashed(&planned.relative),
            size: planned.size,
        });
    }
    drop(staging);
    let count = files.len();
    let marker = Marker {
        name: entry.name.clone(),
        sha256: sha256.to_string(),
        files,
    };
    let json = serde_json::to_vec_pretty(&marker)
        .map_err(|e| FetchError::io(dest, "encode the marker", std::io::Error::other(e)))?;
    conceptlab_fs::write_atomic(&marker_path(dest, entry), &json)?;
    Ok(count)
}

fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The hidden sibling `.DEST.tmp-PID` an archive is unpacked into, removed
/// when dropped (and, after a crash, by the next holder of DEST's lock).
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(dest: &Path) -> Result<Staging, FetchError> {
        let path = conceptlab_fs::temporary_name(dest);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| FetchError::io(&path, "remove an old staging directory", e))?;
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| FetchError::io(&path, "create the staging directory", e))?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
