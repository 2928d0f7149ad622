//! `--device` and the `device` setting: layering, refusal of CUDA in a
//! build without the `cuda` feature, the CPU fallback of `auto`, and the
//! device a checkpoint records.

mod common;

use common::{assert_bad_input, assert_ok, run, stdout};
#[cfg(not(feature = "cuda"))]
use common::{p, pbmc};

fn shown_device(args: &[&str]) -> String {
    let o = run(&[args, &["config"]].concat());
    assert_ok(&o);
    let t: toml::Table = toml::from_str(&stdout(&o)).unwrap();
    t["device"].as_str().unwrap().to_string()
}

#[test]
fn the_flag_and_the_setting_layer_like_the_others() {
    assert_eq!(shown_device(&[]), "cpu");
    assert_eq!(shown_device(&["--override", "device=auto"]), "auto");
    assert_eq!(
        shown_device(&["--override", "device=cpu", "--device", "auto"]),
        "auto"
    );
}

#[test]
fn a_bad_device_name_is_bad_input() {
    let o = run(&["--device", "tpu", "config"]);
    assert_bad_input(&o, &["--device", "tpu", "cpu, cuda, cuda:N or auto"]);
    let o = run(&["--override", "device=cuda:x", "config"]);
    assert_bad_input(&o, &["device", "cuda:x"]);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_refused_naming_it() {
    for args in [
        &["--device", "cuda", "config"][..],
        &["--device", "cuda:1", "models"],
        &["--override", "device=cuda", "config"],
    ] {
        let o = run(args);
        assert_bad_input(&o, &["`cuda` feature", "--features cuda"]);
    }
}

/// `auto` in a CPU-only build trains on the CPU, says so, and the
/// checkpoint records it; the model then loads and edits on the CPU.
#[cfg(not(feature = "cuda"))]
#[test]
fn auto_falls_back_to_the_cpu_and_meta_json_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let o = run(&[
        "--device",
        "auto",
        "--override",
        "train.max_epochs=2",
        "--override",
        "model.sccbgm.hidden_dim=16",
        "fit",
        p(&pbmc()),
        "--concepts",
        "phase",
        "-o",
        p(&model),
    ]);
    assert_ok(&o);
    let err = common::stderr(&o);
    assert!(err.contains("running on the CPU"), "{err}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["device"], "cpu");
    let out = dir.path().join("edited.h5ad");
    let o = run(&[
        "--device",
        "auto",
        "edit",
        p(&pbmc()),
        "--model",
        p(&model),
        "--set",
        "phase=S",
        "-o",
        p(&out),
    ]);
    assert_ok(&o);
    assert!(out.is_file());
}
