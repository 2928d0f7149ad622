//! Cross-checks between this crate's reader/writer and anndata-rs (feature
//! `anndata-rs`): the same file read both ways gives the same `CellData`, and
//! files written by either side read back with the other.
#![cfg(feature = "anndata-rs")]

mod common;

use std::path::PathBuf;

use anndata::backend::{Compression as AdCompression, get_default_write_config};
use anndata::{AnnData, AnnDataOp, Backend};
use anndata_hdf5::H5;
use conceptlab_core::{
    Categorical, CellData, Column, DenseArray, Matrix, NumVec, SparseFormat, SparseMatrix,
    UnsValue, Values,
};
use conceptlab_io::anndata_rs::{
    from_anndata, read_with_anndata_rs, to_anndata, write_with_anndata_rs,
};
use conceptlab_io::{IoError, WriteOptions, read_h5ad, write_h5ad};
use indexmap::IndexMap;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Labels of a categorical column, `None` where missing.
fn labels(c: &Column) -> Vec<Option<String>> {
    match c {
        Column::Categorical(c) => (0..c.codes.len()).map(|i| c.label(i)).collect(),
        other => panic!("expected a categorical, found {}", other.describe()),
    }
}

fn column_names(data: &CellData) -> Vec<&str> {
    data.obs.columns.keys().map(String::as_str).collect()
}

/// Every element our reader and anndata-rs both model, compared one by one
/// (so a failure names the element), then as a whole.
fn assert_same(ours: &CellData, theirs: &CellData) {
    assert_eq!(theirs.x, ours.x, "X");
    assert_eq!(theirs.obs_names(), ours.obs_names(), "obs names");
    assert_eq!(theirs.var_names(), ours.var_names(), "var names");
    assert_eq!(theirs.obs.index_name, ours.obs.index_name, "obs index name");
    assert_eq!(theirs.var.index_name, ours.var.index_name, "var index name");
    assert_eq!(column_names(theirs), column_names(ours), "obs column order");
    for (name, col) in &ours.obs.columns {
        let other = &theirs.obs.columns[name.as_str()];
        if let Column::Categorical(_) = col {
            assert_eq!(labels(other), labels(col), "obs/{name} labels");
        }
        assert_eq!(other, col, "obs/{name}");
    }
    assert_eq!(theirs.var, ours.var, "var");
    for (group, a, b) in [
        ("layers", &ours.layers, &theirs.layers),
        ("obsm", &ours.obsm, &theirs.obsm),
        ("varm", &ours.varm, &theirs.varm),
        ("obsp", &ours.obsp, &theirs.obsp),
        ("varp", &ours.varp, &theirs.varp),
    ] {
        let mut ka: Vec<_> = a.keys().collect();
        let mut kb: Vec<_> = b.keys().collect();
        ka.sort();
        kb.sort();
        assert_eq!(kb, ka, "{group} keys");
        for (k, m) in a {
            assert_eq!(&b[k.as_str()], m, "{group}/{k}");
        }
    }
    assert_eq!(theirs.uns, ours.uns, "uns");
    assert_eq!(theirs, ours);
}

/// The rich test data set minus what anndata-rs cannot hold: `raw`, and the
/// rec-array in `uns` (anndata-rs has no rec-array; we write one as a data
/// frame, and this one's field names contain `/`).
fn rich_for_anndata_rs(n_obs: usize, n_vars: usize, seed: u64) -> CellData {
    let mut data = common::rich_cell_data(n_obs, n_vars, seed);
    data.raw = None;
    data.uns.retain(|_, v| !matches!(v, UnsValue::Records(_)));
    data
}

/// What `rich_for_anndata_rs` looks like after a trip through anndata-rs's
/// writer: nullable string columns become categoricals with categories in
/// order of first appearance (documented in `conceptlab_io::anndata_rs`).
fn after_anndata_rs_write(mut data: CellData) -> CellData {
    for column in data.obs.columns.values_mut() {
        if let Column::Nullable {
            values: Values::Strings(s),
            mask,
        } = column
        {
            let mut categories: Vec<String> = Vec::new();
            let codes = s
                .iter()
                .zip(mask.iter())
                .map(|(label, &missing)| {
                    if missing {
                        return -1;
                    }
                    let pos = categories.iter().position(|c| c == label);
                    pos.unwrap_or_else(|| {
                        categories.push(label.clone());
                        categories.len() - 1
                    }) as i32
                })
                .collect();
            *column = Column::Categorical(
                Categorical::new(codes, Values::Strings(categories), false).unwrap(),
            );
        }
    }
    data
}

#[test]
fn python_file_reads_the_same_both_ways() {
    let path = fixture("python_written.h5ad");
    let ours = read_h5ad(&path).unwrap();
    let theirs = read_with_anndata_rs(&path).unwrap();
    // Spot checks that the fixture exercises what we think it does.
    assert!(matches!(ours.x, Matrix::Sparse(_)));
    assert!(matches!(
        ours.obs.columns["stage"],
        Column::Categorical(Categorical { ordered: true, .. })
    ));
    assert!(matches!(
        theirs.obs.columns["donor"],
        Column::Nullable {
            values: Values::Strings(_),
            ..
        }
    ));
    assert_same(&ours, &theirs);
}

#[test]
fn anndata_rs_alone_sees_categoricals_as_strings() {
    // What `read_obs` gives on a file without nullable-string columns: the
    // categorical arrives as plain strings, which is why `from_anndata` reads
    // obs/var column by column instead.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.h5ad");
    let mut data = rich_for_anndata_rs(12, 5, 3);
    data.obs
        .columns
        .retain(|_, c| !matches!(c, Column::Nullable { .. }));
    write_with_anndata_rs(&data, &path).unwrap();
    let adata = AnnData::<H5>::open(H5::open(&path).unwrap()).unwrap();
    let obs = adata.read_obs().unwrap();
    let cell_type = obs.column("cell_type").unwrap();
    assert_eq!(cell_type.dtype(), &polars::prelude::DataType::String);
    let exact = from_anndata(&adata).unwrap();
    assert_eq!(exact.obs, data.obs);
    adata.close().unwrap();
}

#[test]
fn written_by_anndata_rs_read_by_us() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adrs.h5ad");
    let data = rich_for_anndata_rs(57, 23, 7);
    write_with_anndata_rs(&data, &path).unwrap();
    // The thread-local default compression is restored afterwards.
    assert_eq!(
        get_default_write_config().compression,
        Some(AdCompression::Zst(5))
    );

    let expected = after_anndata_rs_write(data.clone());
    let ours = read_h5ad(&path).unwrap();
    assert_eq!(ours.x, expected.x, "X");
    assert_eq!(ours.obs, expected.obs, "obs");
    assert_eq!(ours.var, expected.var, "var");
    assert_eq!(ours.obsm, expected.obsm, "obsm");
    assert_same(&expected, &ours);

    // And anndata-rs reads its own file back the same way.
    let theirs = read_with_anndata_rs(&path).unwrap();
    assert_same(&expected, &theirs);
}

#[test]
fn written_by_us_read_by_anndata_rs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.h5ad");
    // With raw (which anndata-rs skips), without the rec-array (which makes
    // anndata-rs refuse the whole file, see below).
    let mut data = common::rich_cell_data(57, 23, 11);
    data.uns.retain(|_, v| !matches!(v, UnsValue::Records(_)));
    assert!(data.raw.is_some());
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    let theirs = read_with_anndata_rs(&path).unwrap();
    assert!(theirs.raw.is_none());
    let mut expected = data;
    expected.raw = None;
    assert_same(&expected, &theirs);
}

#[test]
fn anndata_rs_cannot_open_a_file_with_a_rec_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.h5ad");
    let data = common::rich_cell_data(8, 4, 1);
    assert!(matches!(data.uns["rank_genes"], UnsValue::Records(_)));
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    let err = read_with_anndata_rs(&path).unwrap_err();
    assert!(err.to_string().contains("rec-array"), "{err}");
    // Writing it through anndata-rs fails too: the fields would become data
    // frame columns, and one is named `CD4+/CD25 T Reg`.
    let err = write_with_anndata_rs(&data, dir.path().join("out.h5ad")).unwrap_err();
    assert!(matches!(err, IoError::Invalid { .. }), "{err}");
}

#[test]
fn category_order_unused_categories_and_ordered_flag_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cats.h5ad");
    let x = Matrix::Dense(DenseArray::new(vec![4, 1], NumVec::F32(vec![1., 2., 3., 4.])).unwrap());
    let mut data = CellData::new(
        x,
        (0..4).map(|i| format!("c{i}")).collect(),
        vec!["g".into()],
    )
    .unwrap();
    // Categories not in order of first appearance, one unused, one missing value.
    let cats = Values::Strings(vec!["z".into(), "a".into(), "unused".into(), "m".into()]);
    data.obs
        .insert(
            "level",
            Column::Categorical(Categorical::new(vec![3, 0, -1, 1], cats, true).unwrap()),
        )
        .unwrap();
    let numeric = Values::Numbers(NumVec::I64(vec![30, 10, 20]));
    data.obs
        .insert(
            "batch",
            Column::Categorical(Categorical::new(vec![2, 2, 0, 1], numeric, false).unwrap()),
        )
        .unwrap();
    write_with_anndata_rs(&data, &path).unwrap();
    assert_eq!(read_h5ad(&path).unwrap(), data);
    assert_eq!(read_with_anndata_rs(&path).unwrap(), data);
}

#[test]
fn to_and_from_anndata_directly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("direct.h5ad");
    let data = rich_for_anndata_rs(20, 6, 5);
    let adata = AnnData::<H5>::new(&path).unwrap();
    to_anndata(&data, &adata).unwrap();
    assert_eq!(adata.n_obs(), 20);
    assert_eq!(adata.n_vars(), 6);
    let back = from_anndata(&adata).unwrap();
    adata.close().unwrap();
    assert_same(&after_anndata_rs_write(data), &back);
}

#[test]
fn unsorted_and_duplicate_sparse_indices() {
    let dir = tempfile::tempdir().unwrap();
    // CSR with unsorted and duplicated column indices: sorted (stably), the
    // duplicates kept.
    let csr = SparseMatrix::new(
        SparseFormat::Csr,
        (2, 3),
        vec![0, 3, 4],
        vec![2, 0, 2, 1],
        NumVec::F64(vec![1., 2., 3., 4.]),
    )
    .unwrap();
    let mut data = CellData::new(
        Matrix::Sparse(csr),
        vec!["a".into(), "b".into()],
        vec!["x".into(), "y".into(), "z".into()],
    )
    .unwrap();
    // CSC with unsorted row indices: written sorted (same matrix).
    let csc = SparseMatrix::new(
        SparseFormat::Csc,
        (2, 3),
        vec![0, 2, 2, 3],
        vec![1, 0, 1],
        NumVec::I32(vec![5, 6, 7]),
    )
    .unwrap();
    data.layers
        .insert("csc".into(), Matrix::Sparse(csc.clone()));
    let path = dir.path().join("sparse.h5ad");
    write_with_anndata_rs(&data, &path).unwrap();
    let back = read_with_anndata_rs(&path).unwrap();
    let csr_sorted = SparseMatrix::new(
        SparseFormat::Csr,
        (2, 3),
        vec![0, 3, 4],
        vec![0, 2, 2, 1],
        NumVec::F64(vec![2., 1., 3., 4.]),
    )
    .unwrap();
    assert_eq!(back.x, Matrix::Sparse(csr_sorted));
    assert_eq!(read_h5ad(&path).unwrap().x, back.x);
    let sorted = SparseMatrix::new(
        SparseFormat::Csc,
        (2, 3),
        vec![0, 2, 2, 3],
        vec![0, 1, 1],
        NumVec::I32(vec![6, 5, 7]),
    )
    .unwrap();
    assert_eq!(back.layers["csc"], Matrix::Sparse(sorted));
    assert_eq!(
        back.layers["csc"].to_dense(),
        Matrix::Sparse(csc).to_dense()
    );

    // A CSC matrix with a duplicate entry cannot be stored.
    let dup = SparseMatrix::new(
        SparseFormat::Csc,
        (2, 1),
        vec![0, 2],
        vec![1, 1],
        NumVec::I32(vec![1, 2]),
    )
    .unwrap();
    data.layers.clear();
    data.obsm.insert("dup".into(), Matrix::Sparse(dup));
    let err = write_with_anndata_rs(&data, dir.path().join("dup.h5ad")).unwrap_err();
    assert!(matches!(err, IoError::Invalid { .. }), "{err}");
}

#[test]
fn unrepresentable_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let base = rich_for_anndata_rs(6, 3, 2);
    let path = dir.path().join("bad.h5ad");
    std::fs::write(&path, b"previous contents").unwrap();

    let mut nul = base.clone();
    nul.obs.index[0] = "a\0b".into();
    let err = write_with_anndata_rs(&nul, &path).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");

    let mut slash = base.clone();
    slash.obsm.insert("a/b".into(), slash.obsm["X_pca"].clone());
    let err = write_with_anndata_rs(&slash, &path).unwrap_err();
    assert!(err.to_string().contains("a/b"), "{err}");

    let mut uns_cat = base;
    uns_cat.uns.insert(
        "groups".into(),
        UnsValue::Column(Column::Categorical(Categorical::from_labels(&["x", "y"]))),
    );
    let err = write_with_anndata_rs(&uns_cat, &path).unwrap_err();
    assert!(err.to_string().contains("uns/groups"), "{err}");

    // Failed writes leave the destination alone and no temporary file behind.
    assert_eq!(std::fs::read(&path).unwrap(), b"previous contents");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let missing = read_with_anndata_rs(dir.path().join("missing.h5ad")).unwrap_err();
    assert!(matches!(missing, IoError::Open { .. }), "{missing}");
}

#[test]
fn uns_frames_lose_their_index_and_records_become_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frame.h5ad");
    let mut data = rich_for_anndata_rs(5, 3, 9);
    let mut frame = conceptlab_core::Frame::with_index(vec!["p".into(), "q".into()]);
    frame
        .insert("score", Column::Numeric(NumVec::F64(vec![0.5, 1.5])))
        .unwrap();
    frame
        .insert("name", Column::Strings(vec!["u".into(), "v".into()]))
        .unwrap();
    data.uns
        .insert("table".into(), UnsValue::Frame(frame.clone()));
    let mut nested = IndexMap::new();
    nested.insert("table".into(), UnsValue::Frame(frame.clone()));
    data.uns.insert("nested".into(), UnsValue::Mapping(nested));
    data.uns.insert(
        "records".into(),
        UnsValue::Records(vec![
            ("gene".into(), Values::Strings(vec!["a".into(), "b".into()])),
            ("score".into(), Values::Numbers(NumVec::F32(vec![1.0, 2.0]))),
        ]),
    );
    write_with_anndata_rs(&data, &path).unwrap();
    let back = read_with_anndata_rs(&path).unwrap();
    let UnsValue::Frame(table) = &back.uns["table"] else {
        panic!("uns/table should be a frame")
    };
    assert_eq!(table.index, vec!["0".to_string(), "1".to_string()]);
    assert_eq!(table.columns, frame.columns);
    let UnsValue::Mapping(nested) = &back.uns["nested"] else {
        panic!("uns/nested should be a mapping")
    };
    assert_eq!(nested["table"], back.uns["table"]);
    // A rec-array comes back as a data frame with the same fields.
    let UnsValue::Frame(records) = &back.uns["records"] else {
        panic!("uns/records should come back as a frame")
    };
    assert_eq!(
        records.columns["score"],
        Column::Numeric(NumVec::F32(vec![1.0, 2.0]))
    );
    assert_eq!(
        records.columns["gene"],
        Column::Strings(vec!["a".into(), "b".into()])
    );
}
