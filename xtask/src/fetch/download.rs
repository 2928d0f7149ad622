//! HTTP downloads into `NAME.part`, resumed with a Range request when a
//! previous run was cut off, restarted from zero when the server ignores
//! the Range or answers for other bytes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use ureq::Agent;

use super::{Event, FetchError, Observer, Options, space};

/// Most bytes of JSON accepted from an API (the OSF file listing).
const MAX_TEXT: u64 = 4 << 20;

/// Bytes read from the network per write to disk.
const CHUNK: usize = 256 << 10;

/// A configured HTTP client.
pub struct Http {
    agent: Agent,
}

impl Http {
    /// A client with the timeouts of `options`; HTTP error statuses are
    /// answers to handle, not transport errors.
    pub fn new(options: &Options) -> Http {
        let mut config = Agent::config_builder()
            .timeout_resolve(Some(options.connect_timeout))
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .http_status_as_error(false)
            .user_agent(concat!("conceptlab-xtask/", env!("CARGO_PKG_VERSION")));
        if !options.env_proxy {
            config = config.proxy(None);
        }
        Http {
            agent: config.build().into(),
        }
    }

    /// The body of `url` as text, at most [`MAX_TEXT`] bytes.
    pub fn get_text(&self, url: &str) -> Result<String, FetchError> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| unreachable(url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(MAX_TEXT)
            .read_to_string()
            .map_err(|e| FetchError::Protocol {
                url: url.to_string(),
                reason: format!("cannot read the answer: {e}"),
            })
    }

    /// Downloads `url` into `part`, continuing from its current length, and
    /// returns the complete length. `expected` (the manifest's size) bounds
    /// what is accepted. On a broken connection the bytes received so far
    /// stay in `part` and [`FetchError::Interrupted`] says so.
    pub fn download(
        &self,
        name: &str,
        url: &str,
        part: &Path,
        expected: Option<u64>,
        observer: &mut dyn Observer,
    ) -> Result<u64, FetchError> {
        let mut have = match std::fs::metadata(part) {
            Ok(m) => m.len(),
            Err(_) => 0,
        };
        if let Some(size) = expected {
            if have > size {
                observer.event(Event::Restart {
                    name,
                    reason: "the partial file is longer than the manifest's size",
                });
                truncate(part)?;
                have = 0;
            } else if have == size {
                return Ok(have);
            }
        }
        // One restart at most: a server that answers a fresh GET with a
        // partial or unsatisfiable range is broken, not resumable.
        for _ in 0..2 {
            let mut request = self.agent.get(url);
            if have > 0 {
                request = request.header("Range", format!("bytes={have}-"));
            }
            let mut response = request.call().map_err(|e| unreachable(url, e))?;
            let status = response.status().as_u16();
            let range = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let total = match (status, have > 0) {
                (206, true) => match range.as_deref().and_then(parse_content_range) {
                    Some(ContentRange::Bytes { start, total }) if start == have => total,
                    _ => {
                        observer.event(Event::Restart {
                            name,
                            reason: "the server answered the Range request with other bytes",
                        });
                        truncate(part)?;
                        have = 0;
                        continue;
                    }
                },
                (200, _) => {
                    if have > 0 {
                        observer.event(Event::Restart {
                            name,
                            reason: "the server ignored the Range request",
                        });
                    }
                    truncate(part)?;
                    have = 0;
                    response.body().content_length()
                }
                (416, true) => {
                    if let Some(ContentRange::Unsatisfied { total }) =
                        range.as_deref().and_then(parse_content_range)
                        && total == have
                    {
                        return Ok(have);
                    }
                    observer.event(Event::Restart {
                        name,
                        reason: "the server cannot resume from the partial file",
                    });
                    truncate(part)?;
                    have = 0;
                    continue;
                }
                _ => {
                    return Err(FetchError::Status {
                        url: url.to_string(),
                        status,
                    });
                }
            };
            if let (Some(size), Some(total)) = (expected, total)
                && size != total
            {
                return Err(FetchError::Protocol {
                    url: url.to_string(),
                    reason: format!("the server offers {total} bytes, the manifest says {size}"),
                });
            }
            let total = total.or(expected);
            if let Some(total) = total {
                space::ensure(part, total.saturating_sub(have), "the download")?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(part)
                .map_err(|e| FetchError::io(part, "open the partial download", e))?;
            observer.event(Event::Download {
                name,
                url,
                resume_from: have,
                total,
            });
            let reader = response.body_mut().as_reader();
            return copy_body(name, url, reader, &mut file, part, have, total, observer);
        }
        Err(FetchError::Protocol {
            url: url.to_string(),
            reason: "the server keeps answering with a partial range to a full request".to_string(),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn copy_body(
    name: &str,
    url: &str,
    mut reader: impl Read,
    file: &mut File,
    part: &Path,
    mut have: u64,
    total: Option<u64>,
    observer: &mut dyn Observer,
) -> Result<u64, FetchError> {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush().map_err(|e| FetchError::io(part, "write", e))?;
                return Err(FetchError::Interrupted {
                    url: url.to_string(),
                    received: have,
                    reason: e.to_string(),
                    part: part.to_path_buf(),
                });
            }
        };
        if let Some(total) = total
            && have + n as u64 > total
        {
            let _ = std::fs::remove_file(part);
            return Err(FetchError::Protocol {
                url: url.to_string(),
                reason: format!(
                    "more than the {total} bytes announced; the partial file was deleted"
                ),
            });
        }
        file.write_all(&buffer[..n])
            .map_err(|e| FetchError::io(part, "write", e))?;
        have += n as u64;
        observer.event(Event::Progress {
            name,
            done: have,
            total,
        });
    }
    file.sync_all()
        .map_err(|e| FetchError::io(part, "flush to disk", e))?;
    if let Some(total) = total
        && have != total
    {
        return Err(FetchError::Interrupted {
            url: url.to_string(),
            received: have,
            reason: format!("the connection closed {} bytes early", total - have),
            part: part.to_path_buf(),
        });
    }
    Ok(have)
}

fn truncate(part: &Path) -> Result<(), FetchError> {
    File::create(part)
        .map(drop)
        .map_err(|e| FetchError::io(part, "truncate the partial download", e))
}

/// Any failure before a response: no route, no name, no TLS, a timeout.
fn unreachable(url: &str, error: ureq::Error) -> FetchError {
    FetchError::Unreachable {
        url: url.to_string(),
        reason: error.to_string(),
    }
}

/// A parsed `Content-Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentRange {
    /// `bytes START-END/TOTAL` (`TOTAL` may be `*`).
    Bytes { start: u64, total: Option<u64> },
    /// `bytes */TOTAL`, sent with 416.
    Unsatisfied { total: u64 },
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    if range == "*" {
        return Some(ContentRange::Unsatisfied {
            total: total.parse().ok()?,
        });
    }
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.parse().ok()?;
    let end: u64 = end.parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if total.is_some_and(|t| end >= t) {
        return None;
    }
    Some(ContentRange::Bytes { start, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_and_nonsense_is_refused() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some(ContentRange::Bytes {
                start: 100,
                total: Some(200)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange::Bytes {
                start: 5,
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */200"),
            Some(ContentRange::Unsatisfied { total: 200 })
        );
        for bad in [
            "bytes 9-5/20",
            "bytes 0-20/20",
            "items 0-1/2",
            "bytes x-1/2",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }
}
