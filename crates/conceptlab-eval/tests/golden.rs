//! conceptlab-eval against scipy / scikit-learn (scripts/python/golden_metrics.py).
//! CI regenerates the fixture with the Python packages and points
//! CONCEPTLAB_GOLDEN_METRICS at it; otherwise the committed copy is used.

use conceptlab_eval::{
    MIN_GROUP_SIZE, Points, cell_level_mse, e_distance, frechet_distance, mean_metrics,
    mmd2_rbf_default, nearest_group_ratio,
};
use serde_json::Value;

fn golden() -> Value {
    let path = std::env::var("CONCEPTLAB_GOLDEN_METRICS").unwrap_or_else(|_| {
        format!(
            "{}/tests/fixtures/golden_metrics.json",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn flat(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-12),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn distances_match_scipy_and_sklearn() {
    let g = golden();
    let d = g["dims"].as_u64().unwrap() as usize;
    let (t, p) = (flat(&g["target"]), flat(&g["prediction"]));
    let target = Points::new("target", &t, d).unwrap();
    let prediction = Points::new("prediction", &p, d).unwrap();
    close(
        mmd2_rbf_default(&target, &prediction).unwrap(),
        g["mmd2"].as_f64().unwrap(),
        1e-9,
        "MMD²",
    );
    close(
        e_distance(&target, &prediction).unwrap(),
        g["e_distance"].as_f64().unwrap(),
        1e-9,
        "E-distance",
    );
    close(
        frechet_distance(&target, &prediction).unwrap(),
        g["frechet"].as_f64().unwrap(),
        1e-8,
        "Fréchet",
    );

    let tr = flat(&g["train"]);
    let train = Points::new("train", &tr, d).unwrap();
    let labels = strings(&g["train_labels"]);
    let r = nearest_group_ratio(
        mmd2_rbf_default,
        &target,
        &prediction,
        &train,
        &labels,
        MIN_GROUP_SIZE,
    )
    .unwrap();
    close(r.ratio, g["rmmd"]["ratio"].as_f64().unwrap(), 1e-9, "rMMD");
    close(
        r.nearest_group_distance,
        g["rmmd"]["nearest_group_distance"].as_f64().unwrap(),
        1e-9,
        "rMMD denominator",
    );
    assert_eq!(
        r.nearest_group,
        g["rmmd"]["nearest_group"].as_str().unwrap()
    );
}

#[test]
fn mean_metrics_match_scipy_and_sklearn() {
    let g = golden();
    let d = g["dims"].as_u64().unwrap() as usize;
    let (t, p, c) = (
        flat(&g["target"]),
        flat(&g["prediction"]),
        flat(&g["control"]),
    );
    let m = mean_metrics(
        &Points::new("truth", &t, d).unwrap(),
        &Points::new("prediction", &p, d).unwrap(),
        &Points::new("control", &c, d).unwrap(),
    )
    .unwrap();
    for (got, key) in [
        (m.r2_pearson_means, "r2_pearson_means"),
        (m.r2_score_means, "r2_score_means"),
        (m.pearson_delta, "pearson_delta"),
        (m.mse_means, "mse_means"),
        (m.mae_means, "mae_means"),
        (m.mse_delta, "mse_means"),
        (m.mae_delta, "mae_means"),
    ] {
        close(got, g[key].as_f64().unwrap(), 1e-9, key);
    }
}

#[test]
fn cell_level_mse_pairs_by_key() {
    let g = golden();
    let d = g["dims"].as_u64().unwrap() as usize;
    let cl = &g["cell_level"];
    let (p, t) = (flat(&cl["prediction"]), flat(&cl["truth"]));
    let got = cell_level_mse(
        &Points::new("prediction", &p, d).unwrap(),
        &strings(&cl["prediction_keys"]),
        &Points::new("truth", &t, d).unwrap(),
        &strings(&cl["truth_keys"]),
    )
    .unwrap();
    close(got, cl["mse"].as_f64().unwrap(), 1e-12, "cell-level MSE");
}
