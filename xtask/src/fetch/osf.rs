//! The download link of a file in an OSF project, looked up through the OSF
//! API v2: `GET {api}/nodes/{project}/files/osfstorage/` lists the top-level
//! files (JSON:API, paged through `links.next`), each with `attributes.name`,
//! `attributes.kind` and `links.download`. A view-only key travels on every
//! request, the download included, as `?view_only=KEY`.

use serde_json::Value;

use super::FetchError;
use super::download::Http;
use super::manifest::Osf;

/// Listing pages followed before giving up (OSF pages hold 10 files).
const MAX_PAGES: usize = 50;

/// The URL `osf.file` downloads from.
pub fn resolve(http: &Http, osf: &Osf) -> Result<String, FetchError> {
    let first = format!("{}/nodes/{}/files/osfstorage/", osf.api, osf.project);
    let mut url = with_view_only(&first, osf.view_only.as_deref());
    for _ in 0..MAX_PAGES {
        let text = http.get_text(&url)?;
        let page: Value = serde_json::from_str(&text).map_err(|e| FetchError::Protocol {
            url: url.clone(),
            reason: format!("the OSF listing is not JSON: {e}"),
        })?;
        let Some(items) = page["data"].as_array() else {
            return Err(FetchError::Protocol {
                url,
                reason: "the OSF listing has no `data` array".to_string(),
            });
        };
        let found = items.iter().find(|item| {
            item["attributes"]["name"].as_str() == Some(osf.file.as_str())
                && item["attributes"]["kind"].as_str() == Some("file")
        });
        if let Some(item) = found {
            return match item["links"]["download"].as_str() {
                Some(link) => Ok(with_view_only(link, osf.view_only.as_deref())),
                None => Err(FetchError::Protocol {
                    url,
                    reason: format!("the OSF entry for {:?} has no download link", osf.file),
                }),
            };
        }
        match page["links"]["next"].as_str() {
            Some(next) => url = with_view_only(next, osf.view_only.as_deref()),
            None => break,
        }
    }
    Err(FetchError::Protocol {
        url: first,
        reason: format!(
            "project {}'s OSF storage lists no file named {:?}",
            osf.project, osf.file
        ),
    })
}

/// `url` with `view_only=KEY` in its query, unless it has one already.
fn with_view_only(url: &str, key: Option<&str>) -> String {
    match key {
        Some(key) if !url.contains("view_only=") => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}view_only={key}")
        }
        _ => url.to_string(),
    }
}
