//! A file written by Python anndata (scripts/python/h5ad_fixtures.py --golden),
//! checked against the facts the same script recorded from Python.

use std::path::PathBuf;

use conceptlab_core::{Column, DenseArray, Matrix, NumVec, SparseFormat, UnsValue, Values};
use conceptlab_io::read_h5ad;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("python_written.json")).unwrap()).unwrap()
}

fn as_usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn matrices_match_python() {
    let exp = expected();
    let data = read_h5ad(fixture("python_written.h5ad")).unwrap();
    assert_eq!(vec![data.n_obs(), data.n_vars()], as_usizes(&exp["shape"]));

    let Matrix::Sparse(x) = &data.x else {
        panic!("X should be CSR")
    };
    assert_eq!(x.format, SparseFormat::Csr);
    assert_eq!(x.nnz() as u64, exp["X"]["nnz"].as_u64().unwrap());
    let NumVec::F32(values) = &x.data else {
        panic!("X should be float32")
    };
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    assert_eq!(sum, exp["X"]["sum"].as_f64().unwrap());
    let first: Vec<f64> = values[..5].iter().map(|&v| f64::from(v)).collect();
    let exp_first: Vec<f64> = exp["X"]["data_first5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(first, exp_first);
    let indices: Vec<usize> = x.indices[..5].iter().map(|&i| i as usize).collect();
    assert_eq!(indices, as_usizes(&exp["X"]["indices_first5"]));

    let Matrix::Dense(counts) = &data.layers["counts"] else {
        panic!("counts should be dense")
    };
    let NumVec::I32(c) = &counts.data else {
        panic!("counts should be int32")
    };
    assert_eq!(
        c.iter().map(|&v| i64::from(v)).sum::<i64>(),
        exp["layers"]["counts"]["sum"].as_i64().unwrap()
    );

    for (group, map) in [
        ("obsm", &data.obsm),
        ("varm", &data.varm),
        ("obsp", &data.obsp),
    ] {
        for (key, info) in exp[group].as_object().unwrap() {
            let m = &map[key.as_str()];
            assert_eq!(
                vec![m.shape().0, m.shape().1],
                as_usizes(&info["shape"]),
                "{group}/{key}"
            );
            assert_eq!(
                m.dtype().name(),
                info["dtype"].as_str().unwrap(),
                "{group}/{key}"
            );
        }
    }
}

#[test]
fn frames_match_python() {
    let exp = expected();
    let data = read_h5ad(fixture("python_written.h5ad")).unwrap();
    assert_eq!(data.obs.index_name, exp["obs_index_name"].as_str().unwrap());
    let first3: Vec<&str> = exp["obs_names_first3"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&data.obs_names()[..3], first3.as_slice());

    // Column order and pandas dtype, mapped to our column kinds.
    for (pair, (name, column)) in exp["obs_columns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&data.obs.columns)
    {
        assert_eq!(pair[0].as_str().unwrap(), name);
        let ok = matches!(
            (pair[1].as_str().unwrap(), column),
            ("category", Column::Categorical(_))
                | ("float64", Column::Numeric(NumVec::F64(_)))
                | ("bool", Column::Numeric(NumVec::Bool(_)))
                | ("object", Column::Strings(_))
                | (
                    "Int64",
                    Column::Nullable {
                        values: Values::Numbers(NumVec::I64(_)),
                        ..
                    }
                )
                | (
                    "boolean",
                    Column::Nullable {
                        values: Values::Numbers(NumVec::Bool(_)),
                        ..
                    }
                )
                | (
                    "string",
                    Column::Nullable {
                        values: Values::Strings(_),
                        ..
                    }
                )
        );
        assert!(
            ok,
            "column {name}: pandas {} but read as {}",
            pair[1],
            column.describe()
        );
    }

    for (name, info) in exp["categories"].as_object().unwrap() {
        let Column::Categorical(c) = &data.obs.columns[name.as_str()] else {
            panic!("{name}")
        };
        let Values::Strings(cats) = &c.categories else {
            panic!("{name}")
        };
        let exp_cats: Vec<&str> = info["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(cats, &exp_cats);
        assert_eq!(c.ordered, info["ordered"].as_bool().unwrap());
        let exp_counts: Vec<usize> = exp_cats
            .iter()
            .map(|k| info["counts"][*k].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(c.counts(), exp_counts);
    }

    for (name, rows) in exp["missing"].as_object().unwrap() {
        let Column::Nullable { mask, .. } = &data.obs.columns[name.as_str()] else {
            panic!("{name}")
        };
        let missing: Vec<usize> = mask
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(missing, as_usizes(rows), "{name}");
    }
}

#[test]
fn uns_matches_python() {
    let data = read_h5ad(fixture("python_written.h5ad")).unwrap();
    assert_eq!(data.uns["title"], UnsValue::String("fixture".into()));
    let UnsValue::Mapping(params) = &data.uns["params"] else {
        panic!("params should be a mapping")
    };
    assert_eq!(
        params["lr"],
        UnsValue::Array(DenseArray::scalar(NumVec::F64(vec![0.001])).unwrap())
    );
    assert_eq!(
        params["flag"],
        UnsValue::Array(DenseArray::scalar(NumVec::Bool(vec![true])).unwrap())
    );
    assert_eq!(params["name"], UnsValue::String("test".into()));
    assert_eq!(
        params["arr"],
        UnsValue::Array(DenseArray::new(vec![3], NumVec::I64(vec![0, 1, 2])).unwrap())
    );
}
