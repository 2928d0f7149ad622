//! Rust write -> Rust read returns exactly what was written, for every
//! element kind and both compression settings; writing is deterministic.

mod common;

use conceptlab_io::{Compression, H5ad, WriteOptions, read_h5ad, write_h5ad};

#[test]
fn every_element_kind_survives_a_round_trip() {
    let data = common::rich_cell_data(57, 23, 7);
    let dir = tempfile::tempdir().unwrap();
    for compression in [
        Compression::None,
        Compression::Gzip(4),
        Compression::Gzip(9),
    ] {
        let path = dir.path().join(format!("rich_{compression:?}.h5ad"));
        write_h5ad(&data, &path, &WriteOptions { compression }).unwrap();
        let back = read_h5ad(&path).unwrap();
        assert_eq!(back, data, "compression {compression:?}");
    }
}

#[test]
fn writing_is_deterministic() {
    let data = common::rich_cell_data(40, 10, 1);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.h5ad"), dir.path().join("b.h5ad"));
    write_h5ad(&data, &a, &WriteOptions::default()).unwrap();
    write_h5ad(&data, &b, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn empty_and_degenerate_shapes() {
    // No cells at all, and a matrix without stored values.
    let mut data = common::rich_cell_data(3, 4, 2);
    data = data.select_obs(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.h5ad");
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    assert_eq!(read_h5ad(&path).unwrap(), data);
    assert_eq!(H5ad::open(&path).unwrap().shape().unwrap(), (0, 4));
}

#[test]
fn a_failed_write_leaves_no_file_and_keeps_the_old_one() {
    let data = common::rich_cell_data(10, 5, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keep.h5ad");
    std::fs::write(&path, b"previous contents").unwrap();
    let mut bad = data.clone();
    bad.obs
        .insert(
            "a/b",
            conceptlab_core::Column::Strings(vec!["x".into(); 10]),
        )
        .unwrap();
    let err = write_h5ad(&bad, &path, &WriteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("a/b"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"previous contents");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary file left behind");
}

#[test]
fn non_ascii_record_arrays_become_data_frames_with_the_same_values() {
    use conceptlab_core::{Column, NumVec, UnsValue, Values};
    let mut data = common::rich_cell_data(5, 3, 4);
    let names = vec!["Zellkern ü".to_string(), "b".to_string()];
    data.uns.insert(
        "markers".into(),
        UnsValue::Records(vec![
            ("group".into(), Values::Strings(names.clone())),
            ("score".into(), Values::Numbers(NumVec::F64(vec![1.0, 2.0]))),
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.h5ad");
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    let back = read_h5ad(&path).unwrap();
    let UnsValue::Frame(frame) = &back.uns["markers"] else {
        panic!("expected a data frame")
    };
    assert_eq!(frame.columns["group"], Column::Strings(names));
    assert_eq!(
        frame.columns["score"],
        Column::Numeric(NumVec::F64(vec![1.0, 2.0]))
    );
    // Everything else is untouched.
    assert_eq!(back.uns["rank_genes"], data.uns["rank_genes"]);
}
