//! End-to-end behaviour of the `conceptlab-cli` binary: output, exit codes,
//! configuration layering and the handling of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hdf5_pure::{AttrValue, FileBuilder};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"));
    // Keep the environment from leaking settings into the tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("CONCEPTLAB_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn pbmc() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/pbmc68k_reduced.h5ad")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Bad input: exit code 2 and exactly one `error:` line naming the file.
fn assert_bad_input(o: &Output, file: &Path, also: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        lines[0].contains(&file.display().to_string()),
        "file not named: {err}"
    );
    assert!(lines[0].contains(also), "expected `{also}` in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

fn vstr(s: &str) -> AttrValue {
    AttrValue::VarLenString(s.to_owned())
}

/// A minimal modern h5ad; `with_x` and `obs_column_encoding` make it broken.
fn write_minimal(path: &Path, with_x: bool, obs_column_encoding: Option<&str>) {
    let mut b = FileBuilder::new();
    b.set_attr("encoding-type", vstr("anndata"));
    b.set_attr("encoding-version", vstr("0.1.0"));
    if with_x {
        let x = b.create_dataset("X");
        x.with_f32_data(&[1.0, 2.0, 3.0, 4.0]).with_shape(&[2, 2]);
        x.set_attr("encoding-type", vstr("array"));
        x.set_attr("encoding-version", vstr("0.2.0"));
    }
    for (name, index, column) in [
        ("obs", ["c1", "c2"], obs_column_encoding),
        ("var", ["g1", "g2"], None),
    ] {
        let mut g = b.create_group(name);
        g.set_attr("encoding-type", vstr("dataframe"));
        g.set_attr("encoding-version", vstr("0.2.0"));
        g.set_attr("_index", vstr("_index"));
        match column {
            Some(enc) => {
                g.set_attr(
                    "column-order",
                    AttrValue::VarLenStringArray(vec!["weird".into()]),
                );
                let mut c = g.create_group("weird");
                c.set_attr("encoding-type", vstr(enc));
                c.set_attr("encoding-version", vstr("0.1.0"));
                c.create_dataset("values").with_f64_data(&[1.0, 2.0]);
                g.add_group(c.finish());
            }
            None => g.set_attr("column-order", AttrValue::F64Array(vec![])),
        }
        g.create_dataset("_index").with_vlen_strings(&index);
        b.add_group(g.finish());
    }
    b.write(path).unwrap();
}

#[test]
fn inspect_prints_legacy_pbmc_categories() {
    let o = run(&["inspect", pbmc().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("700 obs x 765 vars"), "{out}");
    assert!(out.contains("X       700 x 765 dense float32"), "{out}");
    assert!(out.contains("bulk_labels   categorical[10]"), "{out}");
    assert!(out.contains("CD14+ Monocyte (129)"), "{out}");
    assert!(out.contains("Dendritic (240)"), "{out}");
    assert!(out.contains("phase         categorical[3]"), "{out}");
    for phase in ["G1 (501)", "G2M (17)", "S (182)"] {
        assert!(out.contains(phase), "{phase} missing: {out}");
    }
    assert!(out.contains("X_pca   700 x 50 dense float32"), "{out}");
}

#[test]
fn inspect_json_is_complete() {
    let o = run(&["-q", "inspect", "--json", pbmc().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n_obs"], 700);
    assert_eq!(v["n_vars"], 765);
    assert_eq!(v["X"]["storage"], "array");
    assert_eq!(v["raw"]["storage"], "csr_matrix");
    let obs = v["obs"].as_array().unwrap();
    let bulk = obs.iter().find(|c| c["name"] == "bulk_labels").unwrap();
    assert_eq!(bulk["n_categories"], 10);
    let phase = obs.iter().find(|c| c["name"] == "phase").unwrap();
    let names: Vec<&str> = phase["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["G1", "G2M", "S"]);
    assert_eq!(v["obsm"]["X_umap"]["shape"], serde_json::json!([700, 2]));
    assert!(v["uns"].as_object().unwrap().contains_key("neighbors"));
}

#[test]
fn convert_upgrades_legacy_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pbmc.h5ad");
    let o = run(&[
        "-q",
        "convert",
        pbmc().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["-q", "inspect", "--json", out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["layout"], "anndata>=0.8");
    assert_eq!(v["n_obs"], 700);

    // Existing output without --force, and the input itself even with --force.
    let before = std::fs::read(&out).unwrap();
    let o = run(&[
        "convert",
        pbmc().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_bad_input(&o, &out, "already exists");
    let o = run(&[
        "convert",
        out.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert_bad_input(&o, &out, "refusing to overwrite the input");
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.h5ad");
    assert_bad_input(
        &run(&["inspect", path.to_str().unwrap()]),
        &path,
        "cannot open",
    );
}

#[test]
fn not_an_hdf5_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.h5ad");
    std::fs::write(&path, "cell,gene\n1,2\n".repeat(100)).unwrap();
    assert_bad_input(
        &run(&["inspect", path.to_str().unwrap()]),
        &path,
        "not an HDF5 file",
    );
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(pbmc()).unwrap();
    for (name, keep) in [
        ("head.h5ad", 4096),
        ("half.h5ad", full.len() / 2),
        ("most.h5ad", full.len() - 1000),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &full[..keep]).unwrap();
        let out = dir.path().join(format!("out_{name}"));
        // A full read must notice the damage wherever it is (-qq: only the error).
        let o = run(&[
            "-qq",
            "convert",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_bad_input(&o, &path, "");
        assert!(!out.exists(), "no output may be left behind");
    }
}

#[test]
fn file_without_x() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nox.h5ad");
    write_minimal(&path, false, None);
    assert_bad_input(
        &run(&["inspect", path.to_str().unwrap()]),
        &path,
        "missing `X`",
    );
}

#[test]
fn unsupported_obs_column_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weird.h5ad");
    write_minimal(&path, true, Some("awkward-array"));
    let o = run(&["inspect", path.to_str().unwrap()]);
    assert_bad_input(
        &o,
        &path,
        "`obs/weird` has unsupported encoding `awkward-array`",
    );
    // The well-formed variant of the same file is fine.
    let good = dir.path().join("good.h5ad");
    write_minimal(&good, true, None);
    assert!(run(&["inspect", good.to_str().unwrap()]).status.success());
}

#[test]
fn configuration_layers_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "seed = 5\nthreads = 1\n[io]\ngzip_level = 7\ncompression = \"gzip\"\n",
    )
    .unwrap();
    let show = |extra_env: &[(&str, &str)], args: &[&str]| -> toml::Table {
        let mut cmd = bin();
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let o = cmd
            .args(["--config", cfg.to_str().unwrap()])
            .args(args)
            .arg("config")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        toml::from_str(&stdout(&o)).unwrap()
    };
    // File over defaults.
    let t = show(&[], &[]);
    assert_eq!(t["seed"].as_integer(), Some(5));
    assert_eq!(t["io"]["gzip_level"].as_integer(), Some(7));
    // Environment over file.
    let t = show(
        &[("CONCEPTLAB_IO__GZIP_LEVEL", "3"), ("CONCEPTLAB_SEED", "9")],
        &[],
    );
    assert_eq!(t["io"]["gzip_level"].as_integer(), Some(3));
    assert_eq!(t["seed"].as_integer(), Some(9));
    // --override over environment, --seed over everything.
    let t = show(
        &[("CONCEPTLAB_IO__GZIP_LEVEL", "3")],
        &[
            "--override",
            "io.gzip_level=2",
            "--override",
            "io.compression=none",
            "--seed",
            "11",
        ],
    );
    assert_eq!(t["io"]["gzip_level"].as_integer(), Some(2));
    assert_eq!(t["io"]["compression"].as_str(), Some("none"));
    assert_eq!(t["seed"].as_integer(), Some(11));
}

#[test]
fn bad_configuration_is_bad_input() {
    let o = run(&["--override", "io.compresion=none", "config"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("compresion"));
    let o = run(&["--config", "/nonexistent/conceptlab.toml", "config"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/conceptlab.toml"));
}

#[test]
fn help_is_complete() {
    for args in [
        &["--help"][..],
        &["inspect", "--help"],
        &["convert", "--help"],
        &["config", "--help"],
    ] {
        let o = run(args);
        assert!(o.status.success());
        let out = stdout(&o);
        for flag in [
            "--seed",
            "--threads",
            "--verbose",
            "--quiet",
            "--config",
            "--override",
        ] {
            assert!(out.contains(flag), "{args:?} help lacks {flag}");
        }
    }
    let o = run(&["convert", "--help"]);
    assert!(stdout(&o).contains("--compression"));
}
