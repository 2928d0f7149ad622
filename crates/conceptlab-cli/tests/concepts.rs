//! `concepts`: gene-set scores as obs columns, usable as `fit --soft`.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_bad_input, assert_ok, p, pbmc, run, stderr};
use conceptlab_core::preprocess::{GeneSets, SetScore, score_gene_sets};
use conceptlab_core::{Column, NumVec, UnsValue};

/// The golden test's GMT: 3 sets scored on pbmc68k, TOO_SMALL skipped.
fn gmt() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conceptlab-core/tests/fixtures/gene_sets.gmt")
}

fn concepts(out: &Path, extra: &[&str]) -> std::process::Output {
    let (data, sets) = (pbmc(), gmt());
    let mut args = vec!["concepts", p(&data), "--gene-sets", p(&sets), "-o", p(out)];
    args.extend_from_slice(extra);
    run(&args)
}

fn obs_f64(data: &conceptlab_core::CellData, name: &str) -> Vec<f64> {
    match data.obs.columns.get(name) {
        Some(Column::Numeric(NumVec::F64(v))) => v.clone(),
        other => panic!("obs[{name}]: {other:?}"),
    }
}

#[test]
fn reference_scores_are_written_with_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scored.h5ad");
    let o = concepts(&out, &[]);
    assert_ok(&o);
    assert!(stderr(&o).contains("TOO_SMALL (2 of 4)"), "{}", stderr(&o));
    let data = conceptlab_io::read_h5ad(&out).unwrap();
    let input = conceptlab_io::read_h5ad(pbmc()).unwrap();
    // The library's scores on the same matrix, written unchanged.
    let mut sets = GeneSets::new();
    for line in std::fs::read_to_string(gmt()).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        sets.create(f[0]);
        for g in &f[2..] {
            sets.add(f[0], g);
        }
    }
    let method = SetScore::Reference {
        unit_interval: false,
        temp: 1.0,
    };
    let want = score_gene_sets(&input.x, input.var_names(), &sets, 5, method).unwrap();
    assert_eq!(want.names, ["IFN_RESPONSE_LIKE", "CYTOTOXIC", "MYELOID"]);
    for (k, name) in want.names.iter().enumerate() {
        assert_eq!(obs_f64(&data, name), want.scores.column(k).to_vec());
    }
    assert!(!data.obs.columns.contains_key("TOO_SMALL"));
    let Some(UnsValue::Mapping(rec)) = data.uns.get("conceptlab_gene_sets") else {
        panic!("no uns record");
    };
    let Some(UnsValue::StringArray { values, .. }) = rec.get("skipped") else {
        panic!("no skipped list: {rec:?}");
    };
    assert_eq!(values, &["TOO_SMALL"]);
    assert_eq!(
        rec.get("method"),
        Some(&UnsValue::String("reference".into()))
    );
    // Everything else is the input's.
    assert_eq!(data.x, input.x);
    assert_eq!(data.obs.columns.len(), input.obs.columns.len() + 3);

    // Unit interval: 1 − exp(−temp·C).
    let unit = dir.path().join("unit.h5ad");
    assert_ok(&concepts(&unit, &["--unit-interval", "--temp", "0.5"]));
    let u = obs_f64(&conceptlab_io::read_h5ad(&unit).unwrap(), "MYELOID");
    for (a, c) in u.iter().zip(obs_f64(&data, "MYELOID")) {
        assert!((a - (1.0 - (-0.5 * c).exp())).abs() < 1e-12);
        assert!((0.0..1.0).contains(a));
    }
}

#[test]
fn scanpy_scores_are_soft_concepts_for_fit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scored.h5ad");
    assert_ok(&concepts(
        &out,
        &["--method", "scanpy", "--prefix", "gs_", "-q"],
    ));
    let data = conceptlab_io::read_h5ad(&out).unwrap();
    let v = obs_f64(&data, "gs_CYTOTOXIC");
    assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != v[0]));
    assert!(data.uns.contains_key("conceptlab_gene_sets_gs"));
    let model = dir.path().join("model");
    assert_ok(&run(&[
        "-q",
        "fit",
        p(&out),
        "--model-type",
        "mean-shift",
        "--concepts",
        "phase",
        "--soft",
        "gs_CYTOTOXIC,gs_MYELOID",
        "-o",
        p(&model),
    ]));
    let meta = std::fs::read_to_string(model.join("meta.json")).unwrap();
    assert!(meta.contains("gs_CYTOTOXIC") && meta.contains("gs_MYELOID"));
}

#[test]
fn bad_requests_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.h5ad");
    assert_bad_input(&concepts(&out, &["--method", "nope"]), &["nope", "scanpy"]);
    assert_bad_input(
        &concepts(&out, &["--min-genes", "100"]),
        &["gene_sets.gmt", "no gene set", "100"],
    );
    assert_bad_input(
        &concepts(&out, &["--gene-column", "n_counts"]),
        &["n_counts", "not gene identifiers"],
    );
    assert_bad_input(
        &concepts(&out, &["--method", "scanpy", "--unit-interval"]),
        &["--unit-interval"],
    );
    let bad = dir.path().join("bad.gmt");
    std::fs::write(&bad, "A\td\tCD3E\nB\n").unwrap();
    let data = pbmc();
    assert_bad_input(
        &run(&["concepts", p(&data), "--gene-sets", p(&bad), "-o", p(&out)]),
        &["bad.gmt", "line 2"],
    );
    assert!(!out.exists());
    // An obs column of that name already exists: --prefix or --force.
    assert_ok(&concepts(&out, &["-q"]));
    let again = dir.path().join("again.h5ad");
    let o = run(&[
        "concepts",
        p(&out),
        "--gene-sets",
        p(&gmt()),
        "-o",
        p(&again),
    ]);
    assert_bad_input(&o, &["IFN_RESPONSE_LIKE", "--prefix"]);
    // Never onto the input.
    let o = run(&[
        "concepts",
        p(&out),
        "--gene-sets",
        p(&gmt()),
        "-o",
        p(&out),
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
