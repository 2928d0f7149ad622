//! The flow kinds of the registry through the command line: raw-fm fits on
//! an h5ad and edits with the flow flags, which apply to flow models without
//! `--generator fm` and are still refused for models that integrate nothing.

mod common;

use std::path::Path;

use common::{assert_bad_input, assert_ok, dense, p, pbmc, run, stdout};

fn fit(kind: &str, out: &Path) {
    assert_ok(&run(&[
        "-q",
        "--seed",
        "0",
        "--override",
        "train.max_epochs=2",
        "--override",
        "model.raw_fm.network.emb_dim=16",
        "--override",
        "model.raw_fm.network.n_layers=2",
        "--override",
        "model.conceptflow.hidden_dim=16",
        "--override",
        "model.conceptflow.latent_dim=8",
        "--override",
        "model.conceptflow.n_unknown=8",
        "fit",
        p(&pbmc()),
        "--model-type",
        kind,
        "--concepts",
        "bulk_labels,phase",
        "-o",
        p(out),
    ]));
}

fn edit(model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let pbmc = pbmc();
    let mut args = vec![
        "-q",
        "edit",
        p(&pbmc),
        "--model",
        p(model),
        "--set",
        "phase=S",
        "--where",
        "bulk_labels=CD19+ B",
        "-o",
        p(out),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn raw_fm_fits_and_edits_with_flow_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    // Both names are listed, one line each.
    let listed = stdout(&run(&["models"]));
    for name in ["raw-fm", "vanilla-fm", "conceptflow", "mixed-cbm-fm"] {
        assert_eq!(
            listed
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(name))
                .count(),
            1,
            "{name} in\n{listed}"
        );
    }
    fit("vanilla-fm", &path("raw"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("raw").join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["model"]["kind"], "raw-fm");
    assert_eq!(meta["epochs"], 2);

    assert_ok(&edit(&path("raw"), &path("a.h5ad"), &["--steps", "3"]));
    assert_ok(&edit(&path("raw"), &path("b.h5ad"), &["--steps", "3"]));
    assert_ok(&edit(&path("raw"), &path("c.h5ad"), &["--steps", "5"]));
    let read = |n: &str| conceptlab_io::read_h5ad(path(n)).unwrap();
    let (input, a, b, c) = (
        conceptlab_io::read_h5ad(pbmc()).unwrap(),
        read("a.h5ad"),
        read("b.h5ad"),
        read("c.h5ad"),
    );
    // Deterministic, and --steps is used (a different integration).
    assert_eq!(dense(&a.x), dense(&b.x));
    assert_ne!(dense(&a.x), dense(&c.x));
    assert_ne!(dense(&a.x), dense(&input.x));
    let record = format!("{:?}", a.uns["conceptlab_edit"]);
    assert!(record.contains("\\\"steps\\\":3"), "{record}");
    // Decode mode makes new cells; --t-edit is refused with it.
    assert_ok(&edit(&path("raw"), &path("d.h5ad"), &["--mode", "decode"]));
    assert_bad_input(
        &edit(
            &path("raw"),
            &path("e.h5ad"),
            &["--mode", "decode", "--t-edit", "0.5"],
        ),
        &["--t-edit"],
    );

    // A model that integrates nothing still refuses the flags.
    assert_ok(&run(&[
        "-q",
        "fit",
        p(&pbmc()),
        "--model-type",
        "copy",
        "--concepts",
        "bulk_labels,phase",
        "-o",
        p(&path("copy")),
    ]));
    assert_bad_input(
        &edit(&path("copy"), &path("f.h5ad"), &["--steps", "3"]),
        &["--steps", "flow"],
    );
}

#[test]
fn conceptflow_fits_saves_and_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    fit("conceptflow", &path("cf"));
    assert_ok(&edit(&path("cf"), &path("a.h5ad"), &["--steps", "2"]));
    assert_ok(&edit(
        &path("cf"),
        &path("b.h5ad"),
        &["--steps", "2", "--mode", "decode"],
    ));
    // A bottleneck: encode reads its concepts and unknown code.
    assert_ok(&run(&[
        "-q",
        "encode",
        p(&pbmc()),
        "--model",
        p(&path("cf")),
        "-o",
        p(&path("enc.h5ad")),
    ]));
}
