//! Registry models through the command line: the trivial predictors fit,
//! save, load and edit like scCBGM; checkpoints are checked at load and
//! written whole.

mod common;

use std::path::Path;

use common::{assert_bad_input, assert_ok, dense, p, pbmc, run, stdout};
use conceptlab_core::{CellData, Column};

fn fit_kind(kind: &str, out: &Path) {
    assert_ok(&run(&[
        "-q",
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

/// A one-epoch scCBGM: enough for a weights file to damage.
fn fit_small_sccbgm(out: &Path, extra: &[&str]) {
    let pbmc = pbmc();
    let mut args = vec![
        "-q",
        "--seed",
        "0",
        "--override",
        "train.max_epochs=1",
        "--override",
        "model.sccbgm.hidden_dim=16",
        "fit",
        p(&pbmc),
        "--concepts",
        "phase",
        "-o",
        p(out),
    ];
    args.extend(extra);
    assert_ok(&run(&args));
}

fn edit(model: &Path, out: &Path) -> std::process::Output {
    run(&[
        "-q",
        "edit",
        p(&pbmc()),
        "--model",
        p(model),
        "--set",
        "phase=S",
        "--where",
        "bulk_labels=CD19+ B",
        "-o",
        p(out),
    ])
}

fn pcs(data: &CellData) -> Vec<Vec<f32>> {
    let x = dense(&data.obsm["X_conceptlab_pca"]);
    let width = x.len() / data.n_obs();
    x.chunks(width).map(<[f32]>::to_vec).collect()
}

fn labels(data: &CellData, column: &str) -> Vec<String> {
    let Column::Categorical(c) = &data.obs.columns[column] else {
        panic!("{column} is not categorical")
    };
    (0..data.n_obs())
        .map(|i| c.label(i).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_registry_lists_every_kind() {
    let o = run(&["models"]);
    assert_ok(&o);
    let names: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        [
            "sccbgm",
            "cbm-fm",
            "mixed-cbm-fm",
            "raw-fm",
            "vanilla-fm",
            "conceptflow",
            "copy",
            "mean-shift",
            "cinemaot",
            "nearest",
            "scgen",
            "sccvae",
            "sccvae-fm",
            "trvae",
            "cbgm"
        ]
    );
    let o = run(&[
        "fit",
        p(&pbmc()),
        "--model-type",
        "nope",
        "--concepts",
        "phase",
        "-o",
        "x",
    ]);
    assert_bad_input(&o, &["nope", "mean-shift"]);
}

#[test]
fn cbm_fm_is_scbgm_with_the_flow_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cbm-fm");
    fit_small_sccbgm(
        &model,
        &[
            "--model-type",
            "cbm-fm",
            "--override",
            "flow.train.max_epochs=1",
            "--override",
            "flow.network.emb_dim=16",
            "--override",
            "flow.network.n_layers=2",
        ],
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["model"]["kind"], "sccbgm");
    assert_eq!(meta["generator"]["kind"], "cbm-fm");
    let files: Vec<&str> = meta["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "weights.safetensors",
            "preprocess.safetensors",
            "flow.safetensors",
            "history.csv",
            "flow_history.csv"
        ]
    );
}

#[test]
fn trivial_predictors_fit_save_load_and_edit() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    fit_kind("copy", &path("copy"));
    fit_kind("mean-shift", &path("shift"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("shift").join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], 2);
    assert_eq!(meta["model"]["kind"], "mean-shift");
    assert_eq!(meta["epochs"], 0);

    assert_ok(&edit(&path("copy"), &path("copied.h5ad")));
    assert_ok(&edit(&path("shift"), &path("shifted.h5ad")));
    let input = conceptlab_io::read_h5ad(pbmc()).unwrap();
    let copied = conceptlab_io::read_h5ad(path("copied.h5ad")).unwrap();
    let shifted = conceptlab_io::read_h5ad(path("shifted.h5ad")).unwrap();
    let types = labels(&input, "bulk_labels");
    let phases = labels(&input, "phase");

    // Copy: expression unchanged, obs describes the request.
    let x_in = dense(&input.x);
    assert_eq!(dense(&copied.x), x_in);
    let new_phase = labels(&copied, "phase");
    for i in 0..input.n_obs() {
        let edited = types[i] == "CD19+ B";
        assert_eq!(new_phase[i] == "S", edited || phases[i] == "S", "cell {i}");
    }

    // Mean shift: each edited cell moves by mean(S) - mean(its phase) over
    // the training cells (all 700), in PC space; the others do not move.
    let (before, after) = (pcs(&copied), pcs(&shifted));
    let mean_of = |phase: &str| -> Vec<f64> {
        let rows: Vec<&Vec<f32>> = (0..700)
            .filter(|&i| phases[i] == phase)
            .map(|i| &before[i])
            .collect();
        let mut m = vec![0.0; before[0].len()];
        for r in &rows {
            for (a, &v) in m.iter_mut().zip(r.iter()) {
                *a += v as f64 / rows.len() as f64;
            }
        }
        m
    };
    let s = mean_of("S");
    let mut moved = 0;
    for i in 0..700 {
        let delta: Vec<f64> = after[i]
            .iter()
            .zip(&before[i])
            .map(|(a, b)| (a - b) as f64)
            .collect();
        if types[i] != "CD19+ B" || phases[i] == "S" {
            assert!(delta.iter().all(|d| d.abs() < 1e-4), "cell {i} moved");
            continue;
        }
        moved += 1;
        let own = mean_of(&phases[i]);
        for (j, d) in delta.iter().enumerate() {
            let expected = s[j] - own[j];
            assert!(
                (d - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                "cell {i}, PC {j}: {d} vs {expected}"
            );
        }
    }
    assert!(moved > 20, "{moved} cells moved");

    // Neither has a bottleneck to encode with, nor a flow.
    let o = run(&[
        "encode",
        p(&pbmc()),
        "--model",
        p(&path("copy")),
        "-o",
        p(&path("enc.h5ad")),
    ]);
    assert_bad_input(&o, &["copy", "no concept bottleneck"]);
    let o = run(&[
        "edit",
        p(&pbmc()),
        "--model",
        p(&path("shift")),
        "--generator",
        "fm",
        "--set",
        "phase=S",
        "-o",
        p(&path("fm.h5ad")),
    ]);
    assert_bad_input(&o, &["no flow generator"]);
}

#[test]
fn damaged_checkpoints_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    fit_kind("mean-shift", &path("a"));
    fit_small_sccbgm(&path("b"), &[]);
    let weights = path("b").join("weights.safetensors");
    let original = std::fs::read(&weights).unwrap();
    let out = path("out.h5ad");

    // A byte overwritten in the middle.
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    std::fs::write(&weights, &flipped).unwrap();
    assert_bad_input(&edit(&path("b"), &out), &["weights.safetensors", "sha256"]);
    // Truncated.
    std::fs::write(&weights, &original[..original.len() / 3]).unwrap();
    assert_bad_input(&edit(&path("b"), &out), &["weights.safetensors", "bytes"]);
    // What `fit --force` killed between files left before format 2: another
    // model's weights beside this meta.json.
    std::fs::copy(path("a").join("weights.safetensors"), &weights).unwrap();
    assert_bad_input(&edit(&path("b"), &out), &["weights.safetensors"]);
    assert!(!out.exists());

    // A refit replaces the directory whole, and an edit never writes into it.
    fit_small_sccbgm(&path("b"), &["--force"]);
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        original,
        "same seed, same bytes"
    );
    for (target, force) in [("weights.safetensors", "--force"), ("new.h5ad", "-q")] {
        let o = run(&[
            "edit",
            p(&pbmc()),
            "--model",
            p(&path("b")),
            "--set",
            "phase=S",
            "-o",
            p(&path("b").join(target)),
            force,
        ]);
        assert_bad_input(&o, &["input directory"]);
    }
    assert_ok(&edit(&path("b"), &out));

    // A directory of the user's is never replaced.
    let mine = path("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), b"mine").unwrap();
    let o = run(&[
        "fit",
        p(&pbmc()),
        "--model-type",
        "copy",
        "--concepts",
        "phase",
        "-o",
        p(&mine),
        "--force",
    ]);
    assert_bad_input(&o, &["no model"]);
    assert_eq!(std::fs::read(mine.join("notes.txt")).unwrap(), b"mine");
}

/// Squared distance between two PC rows.
fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
}

#[test]
fn matching_predictors_fit_save_load_and_edit_onto_observed_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    fit_kind("nearest", &path("nearest"));
    fit_kind("cinemaot", &path("cinemaot"));
    for kind in ["nearest", "cinemaot"] {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path(kind).join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["model"]["kind"], kind);
        assert_eq!(meta["epochs"], 0, "{kind} trains nothing");
    }
    assert_ok(&edit(&path("nearest"), &path("nearest.h5ad")));
    assert_ok(&edit(&path("cinemaot"), &path("cinemaot.h5ad")));
    // The same request twice gives the same bytes (CINEMA-OT's ICA start is seeded).
    assert_ok(&edit(&path("cinemaot"), &path("again.h5ad")));
    assert_eq!(
        std::fs::read(path("cinemaot.h5ad")).unwrap(),
        std::fs::read(path("again.h5ad")).unwrap()
    );

    let input = conceptlab_io::read_h5ad(pbmc()).unwrap();
    let types = labels(&input, "bulk_labels");
    let phases = labels(&input, "phase");
    let nearest = pcs(&conceptlab_io::read_h5ad(path("nearest.h5ad")).unwrap());
    let cinema = pcs(&conceptlab_io::read_h5ad(path("cinemaot.h5ad")).unwrap());
    // The unedited cells' PCs, as the edits write them: a copy edit's.
    fit_kind("copy", &path("copy"));
    assert_ok(&edit(&path("copy"), &path("copied.h5ad")));
    let original = pcs(&conceptlab_io::read_h5ad(path("copied.h5ad")).unwrap());

    let treated: Vec<usize> = (0..input.n_obs()).filter(|&i| phases[i] == "S").collect();
    let treated_b: Vec<usize> = treated
        .iter()
        .copied()
        .filter(|&i| types[i] == "CD19+ B")
        .collect();
    assert!(!treated_b.is_empty(), "the fixture has S-phase B cells");
    let mut edited = 0;
    for i in 0..input.n_obs() {
        if types[i] != "CD19+ B" {
            for (name, out) in [("nearest", &nearest), ("cinemaot", &cinema)] {
                assert!(
                    sq_dist(&out[i], &original[i]) < 1e-8,
                    "{name} moved unselected cell {i}"
                );
            }
            continue;
        }
        if phases[i] == "S" {
            continue;
        }
        edited += 1;
        // nearest: the cell becomes one observed S-phase cell, exactly.
        let closest = treated
            .iter()
            .map(|&j| sq_dist(&nearest[i], &original[j]))
            .fold(f64::INFINITY, f64::min);
        let scale = sq_dist(&original[i], &vec![0.0; original[i].len()]);
        assert!(
            closest < 1e-8 * (1.0 + scale),
            "nearest: cell {i} is not an observed S-phase cell ({closest})"
        );
        // cinemaot: a convex combination of observed S-phase cells, so it
        // lies within their bounding box on every PC.
        for k in 0..cinema[i].len() {
            let (lo, hi) = treated.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &j| {
                (lo.min(original[j][k]), hi.max(original[j][k]))
            });
            let tol = 1e-3 * (1.0 + hi.abs().max(lo.abs()));
            assert!(
                cinema[i][k] >= lo - tol && cinema[i][k] <= hi + tol,
                "cinemaot: cell {i}, PC {k} = {} outside the treated cells' [{lo}, {hi}]",
                cinema[i][k]
            );
        }
    }
    assert!(edited > 20, "{edited} cells edited");
}
