//! `fit`, `encode` and `edit` end to end on the bundled pbmc68k data:
//! outputs, determinism and the handling of bad input.

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_bad_input, assert_ok, dense, p, pbmc, run};
use conceptlab_core::{CellData, Column, DenseArray, Matrix, NumVec};

/// A short, fixed training budget keeps these tests quick.
const BUDGET: [&str; 4] = [
    "--override",
    "train.max_epochs=12",
    "--override",
    "model.sccbgm.hidden_dim=64",
];

fn fit(data: &Path, out: &Path, seed: &str) -> Output {
    let mut args = vec!["--seed", seed];
    args.extend(BUDGET);
    args.extend([
        "fit",
        p(data),
        "--concepts",
        "bulk_labels,phase",
        "--soft",
        "S_score",
        "-o",
        p(out),
    ]);
    run(&args)
}

#[test]
fn fit_encode_edit_on_pbmc() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    assert_ok(&fit(&pbmc(), &model, "3"));
    for f in [
        "weights.safetensors",
        "preprocess.safetensors",
        "meta.json",
        "history.csv",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    // The PCA's arrays live in preprocess.safetensors, not in the JSON.
    let meta_bytes = std::fs::metadata(model.join("meta.json")).unwrap().len();
    assert!(meta_bytes < 100_000, "meta.json is {meta_bytes} bytes");
    let history = std::fs::read_to_string(model.join("history.csv")).unwrap();
    let rows: Vec<&str> = history.lines().collect();
    assert!(rows[0].starts_with("epoch,lr,train_total"), "{}", rows[0]);
    assert!(
        (2..=13).contains(&rows.len()),
        "{} history rows",
        rows.len()
    );
    assert!(
        rows[1].split(',').count() == 14 && rows[1].split(',').all(|v| !v.is_empty()),
        "{}",
        rows[1]
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("meta.json")).unwrap()).unwrap();
    let names: Vec<&str> = meta["data"]["concept_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10 + 3 + 1);
    assert_eq!(names[0], "bulk_labels=CD4+/CD25 T Reg");
    assert_eq!(names[10], "phase=G1");
    assert_eq!(names[13], "S_score");
    assert_eq!(meta["data"]["var_names"].as_array().unwrap().len(), 765);

    let encoded = dir.path().join("encoded.h5ad");
    assert_ok(&run(&[
        "encode",
        p(&pbmc()),
        "--model",
        p(&model),
        "-o",
        p(&encoded),
    ]));
    let enc = conceptlab_io::read_h5ad(&encoded).unwrap();
    assert_eq!(enc.obsm["concepts_known_concepts"].shape(), (700, 14));
    assert_eq!(enc.obsm["concepts_unknown"].shape(), (700, 128));

    let edited = dir.path().join("edited.h5ad");
    assert_ok(&run(&[
        "edit",
        p(&pbmc()),
        "--model",
        p(&model),
        "--set",
        "phase=S",
        "--where",
        "bulk_labels=CD19+ B",
        "-o",
        p(&edited),
    ]));
    let input = conceptlab_io::read_h5ad(pbmc()).unwrap();
    let out = conceptlab_io::read_h5ad(&edited).unwrap();
    assert_eq!((out.n_obs(), out.n_vars()), (700, 765));
    assert_eq!(out.obs_names(), input.obs_names());
    let Column::Numeric(NumVec::Bool(flag)) = &out.obs.columns["conceptlab_edited"] else {
        panic!("flag column")
    };
    let Column::Categorical(types) = &input.obs.columns["bulk_labels"] else {
        panic!()
    };
    let Column::Categorical(phase) = &out.obs.columns["phase"] else {
        panic!()
    };
    let (x_in, x_out) = (dense(&input.x), dense(&out.x));
    let mut n_edited = 0;
    for i in 0..700 {
        let is_b = types.label(i).as_deref() == Some("CD19+ B");
        assert_eq!(flag[i], is_b, "cell {i}");
        let row_in = &x_in[i * 765..(i + 1) * 765];
        let row_out = &x_out[i * 765..(i + 1) * 765];
        if is_b {
            n_edited += 1;
            assert_eq!(phase.label(i).as_deref(), Some("S"));
            assert!(row_in != row_out, "edited cell {i} unchanged");
        } else {
            assert_eq!(row_in, row_out, "unedited cell {i} changed");
        }
    }
    assert_eq!(n_edited, 95);
    assert_eq!(out.obsm["X_conceptlab_pca"].shape(), (700, 128));
}

#[test]
fn same_seed_same_checkpoint_and_edits() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    assert_ok(&fit(&pbmc(), &a, "11"));
    assert_ok(&fit(&pbmc(), &b, "11"));
    assert_ok(&fit(&pbmc(), &c, "12"));
    let bytes = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    for f in [
        "weights.safetensors",
        "preprocess.safetensors",
        "meta.json",
        "history.csv",
    ] {
        assert!(
            bytes(&a, f) == bytes(&b, f),
            "{f} differs between runs with one seed"
        );
    }
    assert!(
        bytes(&a, "weights.safetensors") != bytes(&c, "weights.safetensors"),
        "the seed has no effect"
    );
    // The outputs differ only in the model path recorded in uns.
    let edit = |model: &Path, out: &Path| {
        assert_ok(&run(&[
            "edit",
            p(&pbmc()),
            "--model",
            p(model),
            "--set",
            "bulk_labels=CD56+ NK",
            "-o",
            p(out),
        ]));
        let data = conceptlab_io::read_h5ad(out).unwrap();
        (dense(&data.x), dense(&data.obsm["X_conceptlab_pca"]))
    };
    assert!(
        edit(&a, &dir.path().join("ea.h5ad")) == edit(&b, &dir.path().join("eb.h5ad")),
        "edits differ"
    );
}

/// A small h5ad with a categorical obs column, optionally with a NaN in X.
fn write_cells(path: &Path, genes: &[&str], nan: bool) {
    let (n, g) = (40, genes.len());
    let mut x: Vec<f32> = (0..n * g).map(|i| ((i * 7919) % 13) as f32).collect();
    if nan {
        x[5 * g + 1] = f32::NAN;
    }
    let matrix = Matrix::Dense(DenseArray::new(vec![n, g], NumVec::F32(x)).unwrap());
    let obs: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let mut data =
        CellData::new(matrix, obs, genes.iter().map(|s| s.to_string()).collect()).unwrap();
    let labels: Vec<&str> = (0..n)
        .map(|i| if i % 2 == 0 { "ctrl" } else { "stim" })
        .collect();
    data.obs
        .insert(
            "stim",
            Column::Categorical(conceptlab_core::Categorical::from_labels(&labels)),
        )
        .unwrap();
    conceptlab_io::write_h5ad(&data, path, &conceptlab_io::WriteOptions::default()).unwrap();
}

#[test]
fn bad_input_is_refused_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    assert_ok(&fit(&pbmc(), &model, "5"));
    let out = dir.path().join("out.h5ad");

    // An obs column that does not exist.
    let o = run(&[
        "fit",
        p(&pbmc()),
        "--concepts",
        "no_such_column",
        "-o",
        p(&dir.path().join("m2")),
    ]);
    assert_bad_input(&o, &["no_such_column", "bulk_labels"]);
    assert!(!dir.path().join("m2").join("meta.json").exists());

    // A value that is not one of the categorical's categories.
    let o = run(&[
        "edit",
        p(&pbmc()),
        "--model",
        p(&model),
        "--set",
        "phase=M",
        "-o",
        p(&out),
    ]);
    assert_bad_input(&o, &["phase", "M", "G2M"]);
    // A column that is not one of the model's concepts.
    let o = run(&[
        "edit",
        p(&pbmc()),
        "--model",
        p(&model),
        "--set",
        "louvain=3",
        "-o",
        p(&out),
    ]);
    assert_bad_input(&o, &["louvain", "bulk_labels"]);
    assert!(!out.exists());

    // Data whose genes differ from the model's.
    let other = dir.path().join("other.h5ad");
    write_cells(&other, &["g1", "g2", "g3"], false);
    let o = run(&[
        "edit",
        p(&other),
        "--model",
        p(&model),
        "--set",
        "phase=S",
        "-o",
        p(&out),
    ]);
    assert_bad_input(&o, &[p(&other), "genes", "765"]);
    assert!(!out.exists());

    // NaN in X, at fit and at edit time.
    let nan = dir.path().join("nan.h5ad");
    write_cells(&nan, &["g1", "g2", "g3"], true);
    let o = run(&[
        "fit",
        p(&nan),
        "--concepts",
        "stim",
        "-o",
        p(&dir.path().join("m3")),
    ]);
    assert_bad_input(&o, &[p(&nan), "NaN"]);
    assert!(!dir.path().join("m3").join("meta.json").exists());
    let good = dir.path().join("good.h5ad");
    write_cells(&good, &["g1", "g2", "g3"], false);
    let small = dir.path().join("small");
    assert_ok(&run(&[
        "--override",
        "train.max_epochs=2",
        "fit",
        p(&good),
        "--concepts",
        "stim",
        "-o",
        p(&small),
    ]));
    let o = run(&[
        "edit",
        p(&nan),
        "--model",
        p(&small),
        "--set",
        "stim=stim",
        "-o",
        p(&out),
    ]);
    assert_bad_input(&o, &[p(&nan), "NaN"]);
    assert!(!out.exists());

    // The input is never overwritten.
    let o = run(&[
        "edit",
        p(&good),
        "--model",
        p(&small),
        "--set",
        "stim=stim",
        "-o",
        p(&good),
        "--force",
    ]);
    assert_bad_input(&o, &["overwrite the input"]);
}

/// A flow small enough to train in seconds.
const FLOW_BUDGET: [&str; 6] = [
    "--override",
    "flow.train.max_epochs=4",
    "--override",
    "flow.network.emb_dim=32",
    "--override",
    "flow.network.n_layers=2",
];

fn fit_flow(data: &Path, out: &Path, from: Option<&Path>) -> Output {
    let mut args = vec!["--seed", "5"];
    args.extend(BUDGET);
    args.extend(FLOW_BUDGET);
    args.extend(["fit", p(data), "--generator", "fm", "-o", p(out)]);
    match from {
        Some(dir) => args.extend(["--from", p(dir)]),
        None => args.extend(["--concepts", "bulk_labels,phase", "--soft", "S_score"]),
    }
    run(&args)
}

fn flow_edit(model: &Path, out: &Path, extra: &[&str]) -> Output {
    let data = pbmc();
    let mut args = vec![
        "edit",
        p(&data),
        "--model",
        p(model),
        "--generator",
        "fm",
        "--set",
        "phase=S",
        "--where",
        "bulk_labels=CD19+ B",
        "-o",
        p(out),
    ];
    args.extend(extra);
    run(&args)
}

#[test]
fn flow_generator_fits_saves_and_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let bytes = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();

    // scCBGM alone, then the flow on top of it (--from), twice, and both
    // stages in one go: the same seed gives the same bytes on every path.
    assert_ok(&fit(&pbmc(), &path("cbgm"), "5"));
    assert_ok(&fit_flow(&pbmc(), &path("fm"), Some(&path("cbgm"))));
    assert_ok(&fit_flow(&pbmc(), &path("fm2"), Some(&path("cbgm"))));
    assert_ok(&fit_flow(&pbmc(), &path("both"), None));
    for f in ["flow.safetensors", "flow_history.csv", "meta.json"] {
        assert!(
            bytes(&path("fm"), f) == bytes(&path("fm2"), f),
            "{f} differs"
        );
    }
    for d in ["fm", "both"] {
        assert!(
            bytes(&path("cbgm"), "weights.safetensors") == bytes(&path(d), "weights.safetensors"),
            "{d}: scCBGM weights changed"
        );
        assert!(
            bytes(&path("cbgm"), "history.csv") == bytes(&path(d), "history.csv"),
            "{d}: scCBGM history not kept"
        );
    }
    assert!(bytes(&path("fm"), "flow.safetensors") == bytes(&path("both"), "flow.safetensors"));
    let meta: serde_json::Value = serde_json::from_slice(&bytes(&path("fm"), "meta.json")).unwrap();
    assert_eq!(meta["generator"]["kind"], "cbm-fm");
    // Conditioned on the training cells' annotations (the reference: predictions).
    assert_eq!(meta["generator"]["concepts"], "annotated");
    assert_eq!(meta["generator"]["dims"]["x_dim"], 128);
    // Condition = 14 concept columns + 128 unknown.
    assert_eq!(meta["generator"]["dims"]["c_dim"], 14 + 128);
    let flow_rows = std::fs::read_to_string(path("fm").join("flow_history.csv")).unwrap();
    assert_eq!(flow_rows.lines().count(), 1 + 4, "{flow_rows}");

    // Edit and decode: only the selected cells change.
    let input = conceptlab_io::read_h5ad(pbmc()).unwrap();
    let Column::Categorical(types) = &input.obs.columns["bulk_labels"] else {
        panic!()
    };
    let x_in = dense(&input.x);
    for (mode, solver) in [("edit", "rk4"), ("decode", "midpoint"), ("edit", "dopri5")] {
        let out = path(&format!("{mode}-{solver}.h5ad"));
        assert_ok(&flow_edit(
            &path("fm"),
            &out,
            &["--mode", mode, "--solver", solver, "--steps", "3"],
        ));
        let data = conceptlab_io::read_h5ad(&out).unwrap();
        let x_out = dense(&data.x);
        for i in 0..700 {
            let changed = x_in[i * 765..(i + 1) * 765] != x_out[i * 765..(i + 1) * 765];
            let is_b = types.label(i).as_deref() == Some("CD19+ B");
            assert_eq!(changed, is_b, "{mode} {solver}: cell {i}");
            assert!(x_out[i * 765..(i + 1) * 765].iter().all(|v| v.is_finite()));
        }
        let conceptlab_core::UnsValue::Mapping(record) = &data.uns["conceptlab_edit"] else {
            panic!("uns record")
        };
        assert!(matches!(&record["generator"], conceptlab_core::UnsValue::String(g) if g == "fm"));
    }

    // A model without a flow, and bad sampling settings, are refused.
    let o = flow_edit(&path("cbgm"), &path("none.h5ad"), &[]);
    assert_bad_input(&o, &["no flow generator", "--generator fm"]);
    assert!(!path("none.h5ad").exists());
    let o = flow_edit(&path("fm"), &path("t.h5ad"), &["--t-edit", "1.5"]);
    assert_bad_input(&o, &["t_edit"]);
    assert!(!path("t.h5ad").exists());
}
