//! `data/manifest.toml`: what each data set is, where it comes from, how to
//! check it and where it goes. Parsed strictly (an unknown key is an error,
//! not a silent typo) and validated before anything touches the network.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::FetchError;

/// The manifest format this code reads (`version = 1`).
pub const VERSION: u32 = 1;

/// Where the OSF API lives unless an entry says otherwise (tests do).
pub const OSF_API: &str = "https://api.osf.io/v2";

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file, for messages.
    pub file: PathBuf,
    /// The directory every `dest` is relative to (the manifest's own).
    pub root: PathBuf,
    /// The data sets, in file order.
    pub entries: Vec<Entry>,
}

/// One data set.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique, `[a-z0-9_-]+`: what `fetch-data NAME` selects.
    pub name: String,
    /// A single file, or a zip archive unpacked into a directory.
    pub format: Format,
    /// Where the bytes come from.
    pub source: Source,
    /// Lower-case hex sha256 of the downloaded bytes, when known. An entry
    /// without one is *unpinned*: its hash is reported, never trusted unless
    /// asked.
    pub sha256: Option<String>,
    /// Size of the downloaded bytes, when known.
    pub size: Option<u64>,
    /// Upper bound on the total size of an archive's unpacked files.
    pub unpacked_size: Option<u64>,
    /// Who may use the data and how.
    pub licence: String,
    /// What the data set is.
    pub description: String,
    /// Relative to the manifest's directory: the file (format `file`) or the
    /// directory an archive unpacks into (format `zip`).
    pub dest: PathBuf,
}

/// How an entry is stored once downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Kept as downloaded, at `dest`.
    File,
    /// A zip archive kept in `downloads/` and unpacked into `dest`.
    Zip,
}

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Direct URLs, tried in order (the first is the primary, the rest
    /// mirrors of the same bytes).
    Urls(Vec<String>),
    /// A file in an OSF project's storage, whose download link is looked up
    /// through the OSF API at fetch time (OSF file ids are not derivable from
    /// the project and file name).
    Osf(Osf),
}

/// A file in OSF storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Osf {
    /// The API's base URL (`https://api.osf.io/v2`).
    pub api: String,
    /// The project's five-character id (`kfqj8`).
    pub project: String,
    /// The file's name at the top of the project's `osfstorage`.
    pub file: String,
    /// The key of a view-only link, for a private project shared that way.
    pub view_only: Option<String>,
}

impl Entry {
    /// Whether the manifest pins this entry's sha256.
    pub fn is_pinned(&self) -> bool {
        self.sha256.is_some()
    }
}

impl Manifest {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Manifest, FetchError> {
        let text = std::fs::read_to_string(file).map_err(|source| FetchError::Io {
            path: file.to_path_buf(),
            action: "read the manifest",
            source,
        })?;
        let root = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Manifest::parse(&text, file, &root)
    }

    /// Validates manifest `text`; `file` names it in messages and `root` is
    /// the directory destinations are relative to.
    pub fn parse(text: &str, file: &Path, root: &Path) -> Result<Manifest, FetchError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| FetchError::ManifestParse {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let bad = |entry: &str, key: &str, expected: &str| FetchError::ManifestKey {
            file: file.to_path_buf(),
            entry: entry.to_string(),
            key: key.to_string(),
            expected: expected.to_string(),
        };
        if raw.version != VERSION {
            return Err(bad("(top level)", "version", &format!("{VERSION}")));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(raw.dataset.len());
        for (index, raw) in raw.dataset.into_iter().enumerate() {
            let label = format!("#{} ({})", index + 1, raw.name);
            let entry = raw.validate(&label, &bad)?;
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(bad(&label, "name", "a name no other data set has"));
            }
            if let Some(other) = entries.iter().find(|e| overlaps(&e.dest, &entry.dest)) {
                return Err(bad(
                    &label,
                    "dest",
                    &format!(
                        "a path apart from {:?}'s {}",
                        other.name,
                        other.dest.display()
                    ),
                ));
            }
            entries.push(entry);
        }
        Ok(Manifest {
            file: file.to_path_buf(),
            root: root.to_path_buf(),
            entries,
        })
    }

    /// The entries called `names`, in the order given (all when empty).
    pub fn select(&self, names: &[String]) -> Result<Vec<&Entry>, FetchError> {
        if names.is_empty() {
            return Ok(self.entries.iter().collect());
        }
        names
            .iter()
            .map(|name| {
                self.entries
                    .iter()
                    .find(|e| &e.name == name)
                    .ok_or_else(|| FetchError::UnknownName {
                        name: name.clone(),
                        file: self.file.clone(),
                        known: self
                            .entries
                            .iter()
                            .map(|e| e.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            })
            .collect()
    }
}

/// Whether one destination contains the other (or they are equal).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    version: u32,
    #[serde(default)]
    dataset: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    format: String,
    url: Option<String>,
    #[serde(default)]
    mirrors: Vec<String>,
    osf: Option<RawOsf>,
    sha256: Option<String>,
    size: Option<u64>,
    unpacked_size: Option<u64>,
    licence: String,
    description: String,
    dest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOsf {
    project: String,
    file: String,
    view_only: Option<String>,
    api: Option<String>,
}

type Bad<'a> = &'a dyn Fn(&str, &str, &str) -> FetchError;

impl RawEntry {
    fn validate(self, label: &str, bad: Bad<'_>) -> Result<Entry, FetchError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(bad(
                label,
                "name",
                "1 to 64 characters from a-z, 0-9, '-' and '_'",
            ));
        }
        let format = match self.format.as_str() {
            "file" => Format::File,
            "zip" => Format::Zip,
            _ => return Err(bad(label, "format", "\"file\" or \"zip\"")),
        };
        let source = match (self.url, self.osf) {
            (Some(url), None) => {
                let mut urls = vec![url];
                urls.extend(self.mirrors);
                for (i, url) in urls.iter().enumerate() {
                    if !is_http_url(url) {
                        let key = if i == 0 { "url" } else { "mirrors" };
                        return Err(bad(label, key, "an http:// or https:// URL with a host"));
                    }
                }
                Source::Urls(urls)
            }
            (None, Some(osf)) => {
                if !self.mirrors.is_empty() {
                    return Err(bad(
                        label,
                        "mirrors",
                        "no mirrors next to `osf` (only with `url`)",
                    ));
                }
                Source::Osf(osf.validate(label, bad)?)
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    label,
                    "url",
                    "either `url` or an `osf` table, not both",
                ));
            }
            (None, None) => return Err(bad(label, "url", "a `url` or an `osf` table")),
        };
        if let Some(sha) = &self.sha256
            && !(sha.len() == 64
                && sha
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            return Err(bad(
                label,
                "sha256",
                "64 lower-case hexadecimal digits (or no key at all for an unpinned entry)",
            ));
        }
        if self.size == Some(0) {
            return Err(bad(label, "size", "a positive number of bytes"));
        }
        match (format, self.unpacked_size) {
            (_, Some(0)) => return Err(bad(label, "unpacked_size", "a positive number of bytes")),
            (Format::File, Some(_)) => {
                return Err(bad(
                    label,
                    "unpacked_size",
                    "no unpacked_size on a `file` entry",
                ));
            }
            _ => {}
        }
        for (key, value) in [
            ("licence", &self.licence),
            ("description", &self.description),
        ] {
            if value.trim().is_empty() {
                return Err(bad(label, key, "a non-empty string"));
            }
        }
        let dest = PathBuf::from(&self.dest);
        let dest_ok = !self.dest.is_empty()
            && dest.components().all(|c| matches!(c, Component::Normal(_)))
            && !dest.starts_with("downloads");
        if !dest_ok {
            return Err(bad(
                label,
                "dest",
                "a relative path below the manifest's directory (no '..', not absolute, not under downloads/)",
            ));
        }
        Ok(Entry {
            name: self.name,
            format,
            source,
            sha256: self.sha256,
            size: self.size,
            unpacked_size: self.unpacked_size,
            licence: self.licence,
            description: self.description,
            dest,
        })
    }
}

impl RawOsf {
    fn validate(self, label: &str, bad: Bad<'_>) -> Result<Osf, FetchError> {
        if self.project.is_empty() || !self.project.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(
                label,
                "osf.project",
                "an OSF project id such as \"kfqj8\"",
            ));
        }
        if self.file.is_empty() || self.file.contains('/') {
            return Err(bad(label, "osf.file", "a file name without '/'"));
        }
        if let Some(key) = &self.view_only
            && (key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(bad(
                label,
                "osf.view_only",
                "the hexadecimal key of a view-only link",
            ));
        }
        let api = self.api.unwrap_or_else(|| OSF_API.to_string());
        if !is_http_url(&api) {
            return Err(bad(
                label,
                "osf.api",
                "an http:// or https:// URL with a host",
            ));
        }
        Ok(Osf {
            api: api.trim_end_matches('/').to_string(),
            project: self.project,
            file: self.file,
            view_only: self.view_only,
        })
    }
}

/// `http(s)://HOST...` with a non-empty host and no whitespace.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(char::is_whitespace)
        }
        None => false,
    }
}
