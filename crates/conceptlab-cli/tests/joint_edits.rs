//! Joint edits of hard and soft concepts, and soft levels taken from a
//! reference group (`--set COL=from:COLUMN=VALUE`).

mod common;

use std::path::Path;

use common::{assert_bad_input, assert_ok, p, pbmc, run};
use conceptlab_core::{CellData, Column};

fn numbers(data: &CellData, column: &str) -> Vec<f64> {
    match &data.obs.columns[column] {
        Column::Numeric(v) => v.to_f64(),
        other => panic!("{column}: {other:?}"),
    }
}

fn fit_mean_shift(out: &Path) {
    assert_ok(&run(&[
        "-q",
        "fit",
        p(&pbmc()),
        "--model-type",
        "mean-shift",
        "--concepts",
        "phase",
        "--soft",
        "S_score",
        "-o",
        p(out),
    ]));
}

#[test]
fn hard_and_soft_concepts_are_edited_together_with_a_group_level() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fit_mean_shift(&model);
    let input = conceptlab_io::read_h5ad(pbmc()).unwrap();
    let phase: Vec<String> = match &input.obs.columns["phase"] {
        Column::Categorical(c) => (0..c.codes.len()).map(|i| c.label(i).unwrap()).collect(),
        other => panic!("{other:?}"),
    };
    let s_score = numbers(&input, "S_score");
    let in_s: Vec<f64> = s_score
        .iter()
        .zip(&phase)
        .filter(|(_, ph)| ph.as_str() == "S")
        .map(|(v, _)| *v)
        .collect();
    let level = in_s.iter().sum::<f64>() / in_s.len() as f64;

    // The B cells put into S phase, with the S score `level` takes.
    let edit_b_cells = |level: &str, out: &Path| {
        assert_ok(&run(&[
            "-q",
            "edit",
            p(&pbmc()),
            "--model",
            p(&model),
            "--set",
            "phase=S",
            "--set",
            &format!("S_score={level}"),
            "--where",
            "bulk_labels=CD19+ B",
            "-o",
            p(out),
        ]));
        conceptlab_io::read_h5ad(out).unwrap()
    };
    let edited = edit_b_cells("from:phase=S", &dir.path().join("joint.h5ad"));
    let marks = match &edited.obs.columns["conceptlab_edited"] {
        Column::Numeric(v) => v.to_f64(),
        other => panic!("{other:?}"),
    };
    let new_score = numbers(&edited, "S_score");
    let mut n = 0;
    for (i, &m) in marks.iter().enumerate() {
        if m == 1.0 {
            n += 1;
            // Written at obs's f32 precision.
            assert!(
                (new_score[i] - level).abs() < 1e-5,
                "cell {i}: {} vs {level}",
                new_score[i]
            );
        } else {
            assert_eq!(new_score[i].to_bits(), s_score[i].to_bits(), "cell {i}");
        }
    }
    assert_eq!(n, 95);

    // The same edit with the level given by hand gives the same cells.
    let by_hand = edit_b_cells(&level.to_string(), &dir.path().join("by_hand.h5ad"));
    assert_eq!(by_hand.x, edited.x);
}

#[test]
fn group_levels_are_refused_where_they_cannot_mean_anything() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fit_mean_shift(&model);
    let out = dir.path().join("out.h5ad");
    let edit = |set: &str| {
        run(&[
            "edit",
            p(&pbmc()),
            "--model",
            p(&model),
            "--set",
            set,
            "-o",
            p(&out),
        ])
    };
    assert_bad_input(&edit("phase=from:bulk_labels=CD19+ B"), &["soft"]);
    assert_bad_input(&edit("S_score=from:phase"), &["from:COLUMN=VALUE"]);
    assert_bad_input(&edit("S_score=from:phase=M"), &["M"]);
    assert!(!out.exists());
}
