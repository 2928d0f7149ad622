//! `conceptlab-cli evaluate` on synthetic data with known answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"))
        .args(args)
        .output()
        .unwrap()
}

fn synth(dir: &Path) -> (PathBuf, PathBuf) {
    let (base, cf) = (dir.join("base.h5ad"), dir.join("cf.h5ad"));
    let o = cli(&[
        "-q",
        "--seed",
        "2",
        "synth",
        "--cells",
        "600",
        "--genes",
        "40",
        "--hold-out",
        "2",
        // Dense X: the NaN test writes into its values.
        "--dense",
        "-o",
        base.to_str().unwrap(),
        "--counterfactuals",
        cf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (base, cf)
}

#[test]
fn a_perfect_prediction_scores_zero_and_json_has_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cf) = synth(dir.path());
    let o = cli(&[
        "evaluate",
        "--pred",
        cf.to_str().unwrap(),
        "--target",
        cf.to_str().unwrap(),
        "--train",
        base.to_str().unwrap(),
        "--group-by",
        "cell_type",
        "--source",
        base.to_str().unwrap(),
        "--paired-by",
        "original_index",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for metric in [
        "mmd2_rbf",
        "e_distance",
        "frechet",
        "w2_squared",
        "sinkhorn_divergence",
    ] {
        let x = v["distance_to_target"][metric].as_f64().unwrap();
        assert!(x.abs() < 1e-9, "{metric} = {x}");
    }
    assert_eq!(v["cell_level_mse"].as_f64(), Some(0.0));
    assert!(v["ratio_to_nearest_cell_type"]["e_distance"]["nearest_group"].is_string());
    assert!(v["means"]["r2_pearson_means"].is_number());
    assert!(v["de_recall"]["n_true_up"].is_number());
}

#[test]
fn source_cells_are_farther_from_the_twins_than_the_twins_themselves() {
    // The cells before the edit (the source) against their true counterfactuals.
    let dir = tempfile::tempdir().unwrap();
    let (_, cf) = synth(dir.path());
    let o = cli(&[
        "evaluate",
        "--pred",
        cf.to_str().unwrap(),
        "--target",
        cf.to_str().unwrap(),
        "--json",
    ]);
    let same: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(same["distance_to_target"]["e_distance"].as_f64(), Some(0.0));
    assert!(
        same.get("means").is_none(),
        "no source given, no mean metrics"
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cf) = synth(dir.path());
    let o = cli(&[
        "evaluate",
        "--pred",
        cf.to_str().unwrap(),
        "--target",
        cf.to_str().unwrap(),
        "--rep",
        "obsm:X_pca",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no `obsm/X_pca` (available: concepts)"));
    let o = cli(&[
        "evaluate",
        "--pred",
        cf.to_str().unwrap(),
        "--target",
        cf.to_str().unwrap(),
        "--paired-by",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));

    // NaN in the prediction: an error naming the file, not a NaN metric.
    let mut data = conceptlab_io::read_h5ad(&base).unwrap();
    if let conceptlab_core::Matrix::Dense(d) = &mut data.x
        && let conceptlab_core::NumVec::F32(v) = &mut d.data
    {
        v[5] = f32::NAN;
    }
    let bad = dir.path().join("nan.h5ad");
    conceptlab_io::write_h5ad(&data, &bad, &Default::default()).unwrap();
    let o = cli(&[
        "evaluate",
        "--pred",
        bad.to_str().unwrap(),
        "--target",
        cf.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nan.h5ad") && err.contains("non-finite"),
        "{err}"
    );
}
