//! Progress a batch job can see: with stderr piped (not a terminal) `fit`
//! logs its preprocessing steps and its epochs (losses, validation loss,
//! cells/s, ETA) at a bounded rate; `--progress none` logs none of them.

mod common;

use std::path::Path;

use common::{assert_ok, p, pbmc, run, stderr};

const SMALL: [&str; 14] = [
    "--override",
    "train.max_epochs=4",
    "--override",
    "model.sccbgm.hidden_dim=32",
    "--override",
    "model.sccbgm.latent_dim=16",
    "--override",
    "preprocess.n_top_genes=100",
    "--override",
    "preprocess.n_pcs=16",
    "--override",
    "flow.train.max_epochs=2",
    "--override",
    "flow.network.emb_dim=16",
];

fn fit(out: &Path, extra: &[&str]) -> String {
    let data = pbmc();
    let mut args: Vec<&str> = SMALL.to_vec();
    args.extend(extra);
    args.extend([
        "fit",
        p(&data),
        "--concepts",
        "phase",
        "--generator",
        "fm",
        "-o",
        p(out),
    ]);
    let o = run(&args);
    assert_ok(&o);
    stderr(&o)
}

fn epoch_lines<'a>(err: &'a str, label: &str) -> Vec<&'a str> {
    let prefix = format!("{label} epoch ");
    err.lines().filter(|l| l.contains(&prefix)).collect()
}

/// With the default 10 s interval a few-second fit logs its first and its
/// last epoch; every line carries the fields a batch job needs.
#[test]
fn piped_fit_logs_epochs_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let err = fit(&dir.path().join("model"), &[]);
    let lines = epoch_lines(&err, "sccbgm");
    assert!(
        (1..=2).contains(&lines.len()),
        "expected the first and last epoch: {err}"
    );
    assert!(lines[0].contains("sccbgm epoch 1/4: loss "), "{err}");
    let last = lines.last().unwrap();
    assert!(last.contains("epoch 4/4"), "{err}");
    for field in [", val ", ", lr ", " cells/s, eta "] {
        assert!(lines.iter().all(|l| l.contains(field)), "`{field}`: {err}");
    }
    let flow = epoch_lines(&err, "CBM-FM");
    assert!(
        flow.first()
            .is_some_and(|l| l.contains("CBM-FM epoch 1/2: loss ")),
        "{err}"
    );
    assert!(
        flow.last().is_some_and(|l| l.contains("epoch 2/2")),
        "{err}"
    );
    for stage in ["highly variable genes", "PCA"] {
        assert!(
            err.contains(&format!("fit: {stage} on 700 cells...")),
            "{err}"
        );
        assert!(err.contains(&format!("fit: {stage} done in ")), "{err}");
    }
}

/// A short interval logs every epoch; `--progress none` logs none, and
/// neither changes what is fitted.
#[test]
fn interval_and_none_are_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let every = fit(
        &dir.path().join("every"),
        &["--override", "progress.log_interval_s=0.000001"],
    );
    assert_eq!(epoch_lines(&every, "sccbgm").len(), 4, "{every}");
    let none = fit(&dir.path().join("none"), &["--progress", "none"]);
    assert!(epoch_lines(&none, "sccbgm").is_empty(), "{none}");
    assert!(epoch_lines(&none, "CBM-FM").is_empty(), "{none}");
    assert!(!none.contains("fit: PCA"), "{none}");
    let weights =
        |name: &str| std::fs::read(dir.path().join(name).join("weights.safetensors")).unwrap();
    assert_eq!(weights("every"), weights("none"));
}
