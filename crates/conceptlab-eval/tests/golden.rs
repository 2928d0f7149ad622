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

#[test]
fn wilcoxon_bh_and_de_recall_match_scipy() {
    use conceptlab_eval::{DeThresholds, benjamini_hochberg, de_recall, wilcoxon_rank_sum};
    let g = golden();
    let de = &g["de"];
    let genes = de["log2_fold_change"].as_array().unwrap().len();
    let (b, t, p) = (
        flat(&de["base"]),
        flat(&de["target"]),
        flat(&de["prediction"]),
    );
    let base = Points::new("base", &b, genes).unwrap();
    let target = Points::new("target", &t, genes).unwrap();
    let prediction = Points::new("prediction", &p, genes).unwrap();
    let list = |key: &str| -> Vec<f64> {
        de[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };

    let plain = wilcoxon_rank_sum(&target, &base, false).unwrap();
    let tied = wilcoxon_rank_sum(&target, &base, true).unwrap();
    for (i, ((a, b), (z, (p0, p1)))) in plain
        .iter()
        .zip(&tied)
        .zip(
            list("z_no_tie_correction").iter().zip(
                list("p_no_tie_correction")
                    .iter()
                    .zip(list("p_tie_corrected")),
            ),
        )
        .enumerate()
    {
        close(a.z, *z, 1e-9, &format!("z gene {i}"));
        close(a.p, *p0, 1e-6, &format!("p gene {i}"));
        close(b.p, p1, 1e-6, &format!("tie-corrected p gene {i}"));
    }
    for (i, (x, want)) in tied.iter().zip(list("log2_fold_change")).enumerate() {
        close(x.log2_fold_change, want, 1e-9, &format!("lfc gene {i}"));
    }
    let q = benjamini_hochberg(&tied.iter().map(|x| x.p).collect::<Vec<_>>());
    for (i, (got, want)) in q.iter().zip(list("bh_of_p_tie_corrected")).enumerate() {
        close(*got, want, 1e-6, &format!("BH q gene {i}"));
    }

    let r = de_recall(&base, &target, &prediction, DeThresholds::default()).unwrap();
    assert_eq!(r.n_true_up as u64, de["n_true_up"].as_u64().unwrap());
    assert_eq!(r.n_true_down as u64, de["n_true_down"].as_u64().unwrap());
    close(
        r.recall_up.unwrap(),
        de["recall_up"].as_f64().unwrap(),
        1e-12,
        "recall up",
    );
    close(
        r.recall_down.unwrap(),
        de["recall_down"].as_f64().unwrap(),
        1e-12,
        "recall down",
    );
}

#[test]
fn optimal_transport_matches_pot() {
    use conceptlab_eval::{sinkhorn_divergence, w2_squared};
    let g = golden();
    let d = g["dims"].as_u64().unwrap() as usize;
    let (t, p) = (flat(&g["target"]), flat(&g["prediction"]));
    let target = Points::new("target", &t, d).unwrap();
    let prediction = Points::new("prediction", &p, d).unwrap();
    close(
        w2_squared(&target, &prediction).unwrap(),
        g["w2_squared"].as_f64().unwrap(),
        1e-6,
        "W2²",
    );
    close(
        sinkhorn_divergence(&target, &prediction, 0.1).unwrap(),
        g["sinkhorn_divergence"].as_f64().unwrap(),
        1e-4,
        "Sinkhorn",
    );
}

#[test]
fn concept_scores_match_sklearn() {
    let g = golden();
    let c = &g["concept"];
    let truth: Vec<u8> = c["truth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect();
    let prob: Vec<f64> = c["probability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let s = conceptlab_eval::concept_score(&truth, &prob).unwrap();
    close(
        s.accuracy,
        c["accuracy"].as_f64().unwrap(),
        1e-12,
        "accuracy",
    );
    close(s.f1.unwrap(), c["f1"].as_f64().unwrap(), 1e-12, "F1");
    close(
        s.auroc.unwrap(),
        c["auroc"].as_f64().unwrap(),
        1e-12,
        "AUROC",
    );
    close(
        s.auprc.unwrap(),
        c["auprc"].as_f64().unwrap(),
        1e-12,
        "AUPRC",
    );
}

#[test]
fn lisi_matches_harmonypy_and_modularity_matches_networkx() {
    let g = golden();
    let m = &g["mixing"];
    let e = flat(&m["embedding"]);
    let emb = Points::new("embedding", &e, 5).unwrap();
    let labels = strings(&m["labels"]);
    let got = conceptlab_eval::lisi(&emb, &labels, 30.0).unwrap();
    for (i, (x, want)) in got.iter().zip(m["lisi"].as_array().unwrap()).enumerate() {
        close(*x, want.as_f64().unwrap(), 1e-6, &format!("LISI cell {i}"));
    }
    close(
        conceptlab_eval::knn_modularity(&emb, &labels, 30).unwrap(),
        m["modularity"].as_f64().unwrap(),
        1e-12,
        "modularity",
    );
}

#[test]
fn top_de_gene_r2_matches_scgen_convention() {
    use conceptlab_eval::{mean_metrics_on_genes, top_de_genes};
    let g = golden();
    let de = &g["de"];
    let genes = de["log2_fold_change"].as_array().unwrap().len();
    let (b, t, p) = (
        flat(&de["base"]),
        flat(&de["target"]),
        flat(&de["prediction"]),
    );
    let base = Points::new("base", &b, genes).unwrap();
    let target = Points::new("target", &t, genes).unwrap();
    let prediction = Points::new("prediction", &p, genes).unwrap();
    let top = top_de_genes(&target, &base, 10).unwrap();
    let want: Vec<usize> = g["top_k"]["genes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(top, want);
    let m = mean_metrics_on_genes(&target, &prediction, &base, &top).unwrap();
    close(
        m.r2_pearson_means,
        g["top_k"]["r2_pearson_means"].as_f64().unwrap(),
        1e-9,
        "top-k R² (scGen)",
    );
    close(
        m.r2_score_means,
        g["top_k"]["r2_score_means"].as_f64().unwrap(),
        1e-9,
        "top-k R² (CPA)",
    );
}
