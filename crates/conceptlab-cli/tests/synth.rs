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
