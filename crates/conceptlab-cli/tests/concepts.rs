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

    assert_eq!(rec.get("matrix"), Some(&UnsValue::String("X".into())));

    // --raw scores raw.X (pbmc68k's log-normalised 765 genes), as scanpy does
    // by default when .raw exists.
    let raw = dir.path().join("raw.h5ad");
    assert_ok(&concepts(&raw, &["-q", "--raw"]));
    let r = conceptlab_io::read_h5ad(&raw).unwrap();
    let Some(UnsValue::Mapping(rec)) = r.uns.get("conceptlab_gene_sets") else {
        panic!("no uns record");
    };
    assert_eq!(rec.get("matrix"), Some(&UnsValue::String("raw/X".into())));
    let raw_x = &input.raw.as_ref().unwrap();
    let want = score_gene_sets(&raw_x.x, &raw_x.var.index, &sets, 5, method).unwrap();
    assert_eq!(obs_f64(&r, "MYELOID"), want.scores.column(2).to_vec());

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
    let o = concepts(&out, &["--raw", "--layer", "counts"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
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

#[test]
fn reactome_ids_through_a_var_column_and_go_symbols() {
    let dir = tempfile::tempdir().unwrap();
    // pbmc68k with made-up Ensembl ids in var["gene_ids"].
    let mut data = conceptlab_io::read_h5ad(pbmc()).unwrap();
    let ids: Vec<String> = (0..data.n_vars()).map(|i| format!("ENSG{i:011}")).collect();
    data.var
        .insert("gene_ids", Column::Strings(ids.clone()))
        .unwrap();
    let input = dir.path().join("ids.h5ad");
    conceptlab_io::write_h5ad(&data, &input, &Default::default()).unwrap();
    let mut tsv = String::new();
    for id in &ids[..6] {
        tsv.push_str(&format!(
            "{id}\tR-HSA-1\turl\tSix genes\tIEA\tHomo sapiens\n"
        ));
    }
    for i in 0..6 {
        tsv.push_str(&format!(
            "ENSMUSG{i:011}\tR-MMU-1\turl\tSix genes\tIEA\tMus musculus\n"
        ));
    }
    let reactome = dir.path().join("Ensembl2Reactome.txt");
    std::fs::write(&reactome, tsv).unwrap();
    let out = dir.path().join("reactome.h5ad");
    let o = run(&[
        "concepts",
        p(&input),
        "--gene-sets",
        p(&reactome),
        "--gene-column",
        "gene_ids",
        "--organism-prefix",
        "ENSG",
        "-o",
        p(&out),
    ]);
    assert_ok(&o);
    let scored = conceptlab_io::read_h5ad(&out).unwrap();
    assert_eq!(obs_f64(&scored, "R-HSA-1").len(), 700);
    assert!(!scored.obs.columns.contains_key("R-MMU-1"));
    // Without the column, no id matches var_names.
    let o = run(&[
        "concepts",
        p(&input),
        "--gene-sets",
        p(&reactome),
        "-o",
        p(&dir.path().join("none.h5ad")),
    ]);
    assert_bad_input(&o, &["no gene set", "--gene-column"]);

    // GO: biological-process annotations with qualifier involved_in.
    let symbols = &data.var_names()[..7];
    let mut gaf = String::from("!gaf-version: 2.2\n");
    for (k, s) in symbols.iter().enumerate() {
        let (q, aspect) = if k == 6 {
            ("enables", "F")
        } else {
            ("involved_in", "P")
        };
        gaf.push_str(&format!(
            "UniProtKB\tP{k}\t{s}\t{q}\tGO:0000001\tPMID:1\tIDA\t\t{aspect}\t\t\tprotein\ttaxon:9606\t20240101\tUniProt\n"
        ));
    }
    let go = dir.path().join("goa.gaf");
    std::fs::write(&go, gaf).unwrap();
    let out = dir.path().join("go.h5ad");
    assert_ok(&run(&[
        "-q",
        "concepts",
        p(&input),
        "--gene-sets",
        p(&go),
        "--method",
        "scanpy",
        "--prefix",
        "go_",
        "-o",
        p(&out),
    ]));
    let scored = conceptlab_io::read_h5ad(&out).unwrap();
    let Some(UnsValue::Mapping(rec)) = scored.uns.get("conceptlab_gene_sets_go") else {
        panic!("no record");
    };
    assert_eq!(
        rec.get("shared_genes").map(UnsValue::describe),
        Some("int64[1]".to_owned())
    );
    assert_eq!(obs_f64(&scored, "go_GO:0000001").len(), 700);
}
