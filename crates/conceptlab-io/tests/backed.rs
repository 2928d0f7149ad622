//! Backed reads of row subsets agree with in-memory selection, for dense,
//! CSR and CSC storage, any order and repeated rows.

mod common;

use conceptlab_core::Matrix;
use conceptlab_io::{H5ad, WriteOptions, write_h5ad};

#[test]
fn row_subsets_match_in_memory_selection() {
    let data = common::rich_cell_data(300, 37, 11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backed.h5ad");
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    let file = H5ad::open(&path).unwrap();

    let picks: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![299],
        (100..180).collect(),
        vec![5, 3, 5, 250, 0, 1, 2, 299, 3],
        (0..300).rev().collect(),
    ];
    for rows in &picks {
        for (element, matrix) in [
            ("X", &data.x),
            ("layers/counts", &data.layers["counts"]),
            ("layers/csc", &data.layers["csc"]),
        ] {
            let got = file.read_rows(element, rows).unwrap();
            let want = matrix.select_rows(rows).unwrap();
            assert_eq!(got.encoding(), matrix.encoding(), "{element}");
            assert_eq!(got.to_dense(), want.to_dense(), "{element} rows {rows:?}");
        }
    }
}

#[test]
fn row_ranges_stream_the_whole_matrix() {
    let data = common::rich_cell_data(250, 19, 12);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunks.h5ad");
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    let file = H5ad::open(&path).unwrap();
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < 250 {
        let chunk = file.read_row_range("X", start, 64).unwrap();
        start += chunk.nrows();
        pieces.push(chunk);
    }
    assert_eq!(pieces.len(), 4);
    let rows: usize = pieces.iter().map(Matrix::nrows).sum();
    assert_eq!(rows, 250);
    let stacked: Vec<f32> = pieces
        .iter()
        .flat_map(|m| m.to_dense().data.to_f32())
        .collect();
    assert_eq!(stacked, data.x.to_dense().data.to_f32());
}

#[test]
fn out_of_range_rows_are_an_error() {
    let data = common::rich_cell_data(10, 4, 13);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.h5ad");
    write_h5ad(&data, &path, &WriteOptions::default()).unwrap();
    let err = H5ad::open(&path)
        .unwrap()
        .read_rows("X", &[3, 10])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 10") && err.contains("small.h5ad"),
        "{err}"
    );
}
