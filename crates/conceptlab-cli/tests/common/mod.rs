//! What the CLI's integration tests share: running the binary with a clean
//! environment, the bundled data, and exit-code assertions.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use conceptlab_core::Matrix;

/// Runs `conceptlab-cli` with `args`, without the caller's CONCEPTLAB_* or
/// RUST_LOG settings.
pub fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONCEPTLAB_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).output().unwrap()
}

/// scanpy's pbmc68k_reduced (700 cells × 765 genes).
pub fn pbmc() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/pbmc68k_reduced.h5ad")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        stderr(o)
    );
}

/// Exit 2 with one `error:` line containing every fragment.
pub fn assert_bad_input(o: &Output, fragments: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for f in fragments {
        assert!(lines[0].contains(f), "expected `{f}` in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// A matrix's values as dense row-major f32.
pub fn dense(m: &Matrix) -> Vec<f32> {
    conceptlab_core::preprocess::to_dense_f32(m)
        .unwrap()
        .into_raw_vec_and_offset()
        .0
}
