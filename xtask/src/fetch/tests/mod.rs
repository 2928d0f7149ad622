//! The fetch path end to end against [`server::Server`] on 127.0.0.1: no
//! real network is touched.

mod server;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Event, FetchError, Manifest, Observer, Options, Outcome, fetch};
use server::{Route, Server};

/// Deterministic bytes that no two offsets share a pattern of.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + i / 251) % 251) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn options() -> Options {
    Options {
        trust_unpinned: false,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        env_proxy: false,
    }
}

fn manifest(dir: &Path, body: &str) -> Manifest {
    let text = format!("version = 1\n{body}");
    Manifest::parse(&text, &dir.join("manifest.toml"), dir).unwrap()
}

/// A `file` entry named `kang` at `public/kang.h5ad`.
fn file_entry(url: &str, pin: Option<(&str, usize)>) -> String {
    let pin = pin.map_or(String::new(), |(sha, size)| {
        format!("sha256 = \"{sha}\"\nsize = {size}\n")
    });
    format!(
        "[[dataset]]\nname = \"kang\"\nformat = \"file\"\nurl = \"{url}\"\n{pin}\
         licence = \"test\"\ndescription = \"test file\"\ndest = \"public/kang.h5ad\"\n"
    )
}

/// A `zip` entry named `real` unpacking into `real/`.
fn zip_entry(url: &str, sha: &str, size: usize) -> String {
    format!(
        "[[dataset]]\nname = \"real\"\nformat = \"zip\"\nurl = \"{url}\"\nsha256 = \"{sha}\"\n\
         size = {size}\nlicence = \"test\"\ndescription = \"test archive\"\ndest = \"real\"\n"
    )
}

#[derive(Default)]
struct Record(Vec<String>);

impl Observer for Record {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Restart { reason, .. } = event {
            self.0.push(format!("restart: {reason}"));
        }
    }
}

fn run(manifest: &Manifest, options: &Options) -> (Result<super::Report, FetchError>, Record) {
    let mut record = Record::default();
    let result = fetch(manifest, &manifest.entries[0], options, &mut record);
    (result, record)
}

#[test]
fn a_good_download_is_verified_and_put_in_place_and_a_second_call_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let body = payload(300_000);
    server.route("/kang.h5ad", Route::file(body.clone()));
    let m = manifest(
        dir.path(),
        &file_entry(&server.url("/kang.h5ad"), Some((&sha(&body), body.len()))),
    );

    let (first, _) = run(&m, &options());
    let first = first.unwrap();
    assert_eq!(first.outcome, Outcome::Downloaded);
    assert_eq!(first.sha256, sha(&body));
    let dest = dir.path().join("public/kang.h5ad");
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!dir.path().join("public/kang.h5ad.part").exists());
    assert_eq!(server.seen().len(), 1);

    let (second, _) = run(&m, &options());
    assert_eq!(second.unwrap().outcome, Outcome::AlreadyThere);
    assert_eq!(
        server.seen().len(),
        1,
        "a verified file is not fetched again"
    );
}

#[test]
fn a_corrupted_archive_is_refused_and_nothing_is_unpacked() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let good = zip_of(&[("kang.h5ad", &payload(50_000)), ("liver/a.csv", b"1,2\n")]);
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x40;
    server.route("/real.zip", Route::file(bad.clone()));
    let m = manifest(
        dir.path(),
        &zip_entry(&server.url("/real.zip"), &sha(&good), good.len()),
    );

    let (result, _) = run(&m, &options());
    match result {
        Err(FetchError::HashMismatch {
            actual, expected, ..
        }) => {
            assert_eq!(actual, sha(&bad));
            assert_eq!(expected, sha(&good));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(!dir.path().join("real").exists(), "nothing unpacked");
    assert!(
        !dir.path().join("downloads/real.zip").exists(),
        "not promoted"
    );
    assert!(
        !dir.path().join("downloads/real.zip.part").exists(),
        "partial file deleted"
    );

    // Served correctly, the next run downloads afresh and unpacks.
    server.update("/real.zip", |r| r.body = good.clone());
    let (result, _) = run(&m, &options());
    assert_eq!(result.unwrap().outcome, Outcome::Unpacked { files: 2 });
    assert_eq!(
        std::fs::read(dir.path().join("real/liver/a.csv")).unwrap(),
        b"1,2\n"
    );
}

#[test]
fn an_interrupted_download_resumes_from_the_part_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let inner = payload(400_000);
    let archive = zip_of(&[("kang.h5ad", &inner)]);
    let cut = archive.len() * 2 / 5;
    server.route(
        "/real.zip",
        Route {
            cut_once: Some(cut),
            ..Route::file(archive.clone())
        },
    );
    let m = manifest(
        dir.path(),
        &zip_entry(&server.url("/real.zip"), &sha(&archive), archive.len()),
    );

    let (first, _) = run(&m, &options());
    let part = dir.path().join("downloads/real.zip.part");
    match first {
        Err(FetchError::Interrupted { received, .. }) => assert_eq!(received, cut as u64),
        other => panic!("expected an interrupted download, got {other:?}"),
    }
    assert_eq!(std::fs::read(&part).unwrap(), archive[..cut]);
    assert!(!dir.path().join("real").exists());

    let (second, record) = run(&m, &options());
    let second = second.unwrap();
    assert_eq!(second.outcome, Outcome::Unpacked { files: 1 });
    assert!(
        record.0.is_empty(),
        "resumed, not restarted: {:?}",
        record.0
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.path == "/real.zip"));
    assert_eq!(seen[0].range, None);
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={cut}-").as_str())
    );
    assert_eq!(
        std::fs::read(dir.path().join("real/kang.h5ad")).unwrap(),
        inner
    );
    assert!(!part.exists());

    let (third, _) = run(&m, &options());
    assert_eq!(third.unwrap().outcome, Outcome::AlreadyThere);
    assert_eq!(
        server.seen().len(),
        2,
        "an unpacked archive is not fetched again"
    );
}

#[test]
fn a_server_that_ignores_range_restarts_the_download_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let body = payload(250_000);
    server.route(
        "/kang.h5ad",
        Route {
            ranges: false,
            cut_once: Some(100_000),
            ..Route::file(body.clone())
        },
    );
    let m = manifest(
        dir.path(),
        &file_entry(&server.url("/kang.h5ad"), Some((&sha(&body), body.len()))),
    );
    let (first, _) = run(&m, &options());
    assert!(
        matches!(first, Err(FetchError::Interrupted { .. })),
        "{first:?}"
    );

    let (second, record) = run(&m, &options());
    assert_eq!(second.unwrap().outcome, Outcome::Downloaded);
    assert_eq!(record.0, ["restart: the server ignored the Range request"]);
    assert_eq!(server.seen()[1].range.as_deref(), Some("bytes=100000-"));
    // Appending the full body to the partial one would fail the hash; the
    // file is exactly the body.
    assert_eq!(
        std::fs::read(dir.path().join("public/kang.h5ad")).unwrap(),
        body
    );
}

#[test]
fn an_unpinned_download_is_kept_aside_until_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let body = payload(10_000);
    server.route("/kang.h5ad", Route::file(body.clone()));
    let m = manifest(dir.path(), &file_entry(&server.url("/kang.h5ad"), None));
    let dest = dir.path().join("public/kang.h5ad");

    let (first, _) = run(&m, &options());
    match &first {
        Err(e @ FetchError::Unpinned { actual, size, .. }) => {
            assert_eq!(*actual, sha(&body));
            assert_eq!(*size, body.len() as u64);
            assert!(e.to_string().contains("--trust-unpinned"), "{e}");
            assert!(e.is_bad_input());
        }
        other => panic!("expected an unpinned refusal, got {other:?}"),
    }
    assert!(
        !dest.exists(),
        "unverified data never appears under its name"
    );
    assert!(dir.path().join("public/kang.h5ad.unverified").exists());

    let trusting = Options {
        trust_unpinned: true,
        ..options()
    };
    let (second, _) = run(&m, &trusting);
    let second = second.unwrap();
    assert_eq!(second.outcome, Outcome::Downloaded);
    assert!(!second.pinned);
    assert_eq!(second.sha256, sha(&body));
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(
        server.seen().len(),
        1,
        "the kept download is used, not fetched again"
    );
}

#[test]
fn the_next_mirror_is_tried_when_a_source_fails() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let body = payload(5_000);
    server.route(
        "/gone.h5ad",
        Route {
            status: Some(503),
            ..Route::default()
        },
    );
    server.route("/kang.h5ad", Route::file(body.clone()));
    let entry = file_entry(&server.url("/gone.h5ad"), Some((&sha(&body), body.len()))).replace(
        "licence",
        &format!("mirrors = [\"{}\"]\nlicence", server.url("/kang.h5ad")),
    );
    let m = manifest(dir.path(), &entry);
    let (result, _) = run(&m, &options());
    assert_eq!(result.unwrap().outcome, Outcome::Downloaded);
    assert_eq!(
        std::fs::read(dir.path().join("public/kang.h5ad")).unwrap(),
        body
    );
}

#[test]
fn osf_files_are_found_through_the_api_listing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let archive = zip_of(&[("synthetic_1.h5ad", &payload(20_000))]);
    let page = |items: &str, next: &str| {
        format!("{{\"data\": [{items}], \"links\": {{\"next\": {next}}}}}")
    };
    let item = |name: &str, link: &str| {
        format!(
            "{{\"attributes\": {{\"name\": \"{name}\", \"kind\": \"file\"}}, \"links\": {{\"download\": \"{link}\"}}}}"
        )
    };
    server.route(
        "/v2/nodes/abcde/files/osfstorage/?view_only=f00d",
        Route::file(
            page(
                &item("real.zip", &server.url("/download/real")),
                &format!("\"{}\"", server.url("/v2/page2")),
            )
            .into_bytes(),
        ),
    );
    server.route(
        "/v2/page2?view_only=f00d",
        Route::file(
            page(
                &item("synthetic.zip", &server.url("/download/synth")),
                "null",
            )
            .into_bytes(),
        ),
    );
    server.route(
        "/download/synth?view_only=f00d",
        Route::file(archive.clone()),
    );
    let entry = format!(
        "[[dataset]]\nname = \"synthetic\"\nformat = \"zip\"\nsha256 = \"{}\"\nlicence = \"t\"\n\
         description = \"t\"\ndest = \"synthetic\"\n[dataset.osf]\nproject = \"abcde\"\n\
         file = \"synthetic.zip\"\nview_only = \"f00d\"\napi = \"{}\"\n",
        sha(&archive),
        server.url("/v2")
    );
    let m = manifest(dir.path(), &entry);
    let (result, _) = run(&m, &options());
    assert_eq!(result.unwrap().outcome, Outcome::Unpacked { files: 1 });
    assert!(dir.path().join("synthetic/synthetic_1.h5ad").is_file());
}

#[test]
fn archives_that_escape_or_overflow_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let escaping = zip_of(&[("fine.txt", b"ok"), ("../evil.txt", b"gotcha")]);
    server.route("/real.zip", Route::file(escaping.clone()));
    let m = manifest(
        dir.path(),
        &zip_entry(&server.url("/real.zip"), &sha(&escaping), escaping.len()),
    );
    let (result, _) = run(&m, &options());
    match result {
        Err(FetchError::UnsafeArchive { entry, .. }) => assert_eq!(entry, "../evil.txt"),
        other => panic!("expected a refused archive, got {other:?}"),
    }
    assert!(!dir.path().join("evil.txt").exists());
    assert!(!dir.path().join("real/fine.txt").exists());

    // Declares more than the manifest allows: refused before any byte.
    let big = zip_of(&[("a.bin", &vec![0u8; 100_000])]);
    server.route("/big.zip", Route::file(big.clone()));
    let entry = zip_entry(&server.url("/big.zip"), &sha(&big), big.len())
        .replace("name = \"real\"", "name = \"big\"")
        .replace("dest = \"real\"", "dest = \"big\"\nunpacked_size = 1000");
    let m = manifest(dir.path(), &entry);
    let (result, _) = run(&m, &options());
    match result {
        Err(e @ FetchError::UnsafeArchive { .. }) => {
            assert!(e.to_string().contains("unpacked_size"), "{e}")
        }
        other => panic!("expected a refused archive, got {other:?}"),
    }
    assert!(!dir.path().join("big").exists());
}

#[test]
fn files_not_from_the_archive_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let archive = zip_of(&[("kang.h5ad", b"from the archive")]);
    server.route("/real.zip", Route::file(archive.clone()));
    std::fs::create_dir_all(dir.path().join("real")).unwrap();
    std::fs::write(dir.path().join("real/kang.h5ad"), b"mine").unwrap();
    let m = manifest(
        dir.path(),
        &zip_entry(&server.url("/real.zip"), &sha(&archive), archive.len()),
    );
    let (result, _) = run(&m, &options());
    assert!(
        matches!(result, Err(FetchError::Exists { .. })),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("real/kang.h5ad")).unwrap(),
        b"mine"
    );
}

#[test]
fn no_server_is_one_unreachable_error() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/kang.h5ad");
    let m = manifest(dir.path(), &file_entry(&url, None));
    let (result, _) = run(&m, &options());
    match result {
        Err(e @ FetchError::Unreachable { .. }) => {
            assert!(e.is_bad_input());
            assert!(
                e.to_string().starts_with(&format!("cannot reach {url}")),
                "{e}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(!dir.path().join("public/kang.h5ad").exists());
}

#[test]
fn bad_manifest_entries_are_refused_naming_the_key() {
    let good = file_entry("https://example.org/k.h5ad", None);
    let cases: &[(&str, &str, &str)] = &[
        ("sha256 = \"xyz\"\n", "", "key `sha256`"),
        (
            "",
            "dest = \"public/kang.h5ad\"|dest = \"../kang.h5ad\"",
            "key `dest`",
        ),
        (
            "",
            "dest = \"public/kang.h5ad\"|dest = \"/tmp/kang.h5ad\"",
            "key `dest`",
        ),
        ("", "format = \"file\"|format = \"tar\"", "key `format`"),
        ("", "https://example.org|ftp://example.org", "key `url`"),
        ("size = 0\n", "", "key `size`"),
        ("sha265 = \"00\"\n", "", "sha265"),
        ("", "licence = \"test\"\n|", "licence"),
        ("", "name = \"kang\"|name = \"Kang 2018\"", "key `name`"),
        ("unpacked_size = 5\n", "", "key `unpacked_size`"),
    ];
    for (extra, replace, expected) in cases {
        let mut entry = good.replacen("licence", &format!("{extra}licence"), 1);
        if let Some((from, to)) = replace.split_once('|') {
            entry = entry.replacen(from, to, 1);
        }
        let text = format!("version = 1\n{entry}");
        let err = Manifest::parse(&text, Path::new("data/manifest.toml"), Path::new("data"))
            .expect_err(expected);
        let message = err.to_string();
        assert!(message.starts_with("data/manifest.toml: "), "{message}");
        assert!(message.contains(expected), "{expected:?} not in {message}");
        assert!(err.is_bad_input());
    }
    let twice = format!(
        "version = 1\n{good}{}",
        good.replace("public/kang.h5ad", "other.h5ad")
    );
    let err = Manifest::parse(&twice, Path::new("m.toml"), Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("key `name`"), "{err}");
    let err = Manifest::parse(
        &format!("version = 2\n{good}"),
        Path::new("m.toml"),
        Path::new("."),
    )
    .unwrap_err();
    assert!(err.to_string().contains("key `version`"), "{err}");
}

#[test]
fn the_shipped_manifest_is_valid_and_pins_what_it_can() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/manifest.toml");
    let m = Manifest::load(&file).unwrap();
    let names: Vec<&str> = m.entries.iter().map(|e| e.name.as_str()).collect();
    for name in ["real", "synthetic", "kang2018"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let kang = m.select(&["kang2018".to_string()]).unwrap()[0];
    assert!(kang.is_pinned() && kang.size.is_some());
    let err = m.select(&["nope".to_string()]).unwrap_err();
    assert!(err.to_string().contains("kang2018"), "{err}");
}

/// Rewrites the declared uncompressed size of a one-entry archive (local
/// header and central directory), as a zip bomb would.
fn declare_size(mut archive: Vec<u8>, size: u32) -> Vec<u8> {
    let find = |signature: &[u8]| {
        archive
            .windows(4)
            .position(|w| w == signature)
            .expect("zip signature")
    };
    let local = find(b"PK\x03\x04");
    let central = find(b"PK\x01\x02");
    archive[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
    archive[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
    archive
}

#[test]
fn an_entry_inflating_past_its_declared_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let bomb = declare_size(zip_of(&[("zeros.bin", &vec![0u8; 1 << 20])]), 1000);
    server.route("/real.zip", Route::file(bomb.clone()));
    let m = manifest(
        dir.path(),
        &zip_entry(&server.url("/real.zip"), &sha(&bomb), bomb.len()),
    );
    let (result, _) = run(&m, &options());
    match result {
        Err(FetchError::UnsafeArchive { entry, .. }) => assert_eq!(entry, "zeros.bin"),
        other => panic!("expected a refused archive, got {other:?}"),
    }
    assert!(!dir.path().join("real/zeros.bin").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}
