//! `conceptlab-cli synth`: deterministic files whose twins are the exact
//! counterfactuals of the edited cells.

use std::collections::HashMap;
use std::process::Command;

use conceptlab_core::{Column, Matrix, NumVec, Values};

fn synth(
    dir: &std::path::Path,
    name: &str,
    seed: &str,
    extra: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join(format!("{name}.h5ad"));
    let cf = dir.join(format!("{name}_cf.h5ad"));
    let o = Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"))
        .args([
            "-q", "--seed", seed, "synth", "--cells", "1500", "--genes", "300",
        ])
        .args(extra)
        .args([
            "-o",
            out.to_str().unwrap(),
            "--counterfactuals",
            cf.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (out, cf)
}

fn dense_f32(m: &Matrix) -> Vec<f32> {
    match m {
        Matrix::Dense(d) => d.data.to_f32(),
        Matrix::Sparse(s) => s.to_dense().data.to_f32(),
    }
}

#[test]
fn same_seed_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, a_cf) = synth(dir.path(), "a", "4", &[]);
    let (b, b_cf) = synth(dir.path(), "b", "4", &[]);
    let (c, _) = synth(dir.path(), "c", "5", &[]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(std::fs::read(&a_cf).unwrap(), std::fs::read(&b_cf).unwrap());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

#[test]
fn twins_pair_with_their_sources_and_differ_only_where_the_concept_acts() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cf) = synth(dir.path(), "s", "11", &["--hold-out", "3"]);
    let base = conceptlab_io::read_h5ad(&base).unwrap();
    let cf = conceptlab_io::read_h5ad(&cf).unwrap();
    let genes = base.n_vars();
    let x = dense_f32(&base.x);
    let twins = dense_f32(&cf.x);
    let coef = dense_f32(&base.varm["concept_coef"]); // genes x concepts

    let Column::Strings(names) = &base.obs.columns["original_index"] else {
        panic!()
    };
    let row_of: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let Column::Strings(sources) = &cf.obs.columns["original_index"] else {
        panic!()
    };
    let Column::Categorical(which) = &cf.obs.columns["intervention"] else {
        panic!()
    };
    let conceptlab_core::UnsValue::Records(table) = &base.uns["interventions"] else {
        panic!()
    };
    let Values::Strings(concepts) = &table[1].1 else {
        panic!()
    };

    assert!(cf.n_obs() > 0);
    for (i, source) in sources.iter().enumerate() {
        let row = row_of[source.as_str()];
        let k = which.codes[i] as usize;
        // The source is a "modify" cell of that intervention, with the concept off.
        let Column::Categorical(split) = &base.obs.columns[&format!("intervention_{k}")] else {
            panic!()
        };
        assert_eq!(split.label(row).as_deref(), Some("modify"));
        let concept: usize = concepts[k].trim_start_matches("concept_").parse().unwrap();
        let Column::Numeric(NumVec::Bool(on)) = &base.obs.columns[&concepts[k]] else {
            panic!()
        };
        assert!(!on[row]);
        let Column::Numeric(NumVec::Bool(twin_on)) = &cf.obs.columns[&concepts[k]] else {
            panic!()
        };
        assert!(twin_on[i]);
        for g in 0..genes {
            if coef[g * (coef.len() / genes) + concept] == 0.0 {
                assert_eq!(
                    twins[i * genes + g],
                    x[row * genes + g],
                    "neutral gene {g} changed"
                );
            }
        }
    }
}

#[test]
fn unknown_preset_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.h5ad");
    let o = Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"))
        .args([
            "synth",
            "--preset",
            "synthetic_9",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("synthetic_9") && err.contains("synthetic_1"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn counts_are_one_csr_copy_unless_the_layer_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, _) = synth(dir.path(), "plain", "3", &[]);
    let (layered, _) = synth(dir.path(), "layered", "3", &["--counts-layer"]);
    let (dense, _) = synth(dir.path(), "dense", "3", &["--dense"]);
    let plain_data = conceptlab_io::read_h5ad(&plain).unwrap();
    let layered_data = conceptlab_io::read_h5ad(&layered).unwrap();
    let dense_data = conceptlab_io::read_h5ad(&dense).unwrap();
    let Matrix::Sparse(x) = &plain_data.x else {
        panic!("X is not sparse")
    };
    assert_eq!(x.format, conceptlab_core::SparseFormat::Csr);
    assert!(x.nnz() < x.shape.0 * x.shape.1, "zeros are stored");
    assert!(
        plain_data.layers.is_empty(),
        "a counts layer nobody asked for"
    );
    assert_eq!(dense_f32(&plain_data.x), dense_f32(&dense_data.x));
    assert!(matches!(dense_data.x, Matrix::Dense(_)));
    let layer = &layered_data.layers["counts"];
    assert!(matches!(layer, Matrix::Sparse(_)));
    assert_eq!(dense_f32(layer), dense_f32(&plain_data.x));
    // anndata (what scanpy reads with) opens the sparse file, when present.
    let script = "import sys, anndata, scipy.sparse as sp\n\
                  a = anndata.read_h5ad(sys.argv[1])\n\
                  assert sp.issparse(a.X) and a.X.format == 'csr', type(a.X)\n\
                  print(a.n_obs, a.n_vars, a.X.nnz)";
    match Command::new("python3")
        .args(["-c", script, plain.to_str().unwrap()])
        .output()
    {
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("anndata not installed; skipped the Python check")
        }
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(out.trim(), format!("1500 300 {}", x.nnz()));
        }
        Err(_) => eprintln!("no python3; skipped the Python check"),
    }
}
