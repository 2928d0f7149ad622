//! The streaming writer: the same bytes as a whole write however the rows
//! are split, files our reader and anndata read back, and memory that does
//! not grow with the number of rows.

mod common;

use common::{Rng, random_csr, rich_cell_data};
use conceptlab_core::{CellData, Matrix, NumVec, SparseFormat, SparseMatrix};
use conceptlab_io::{Compression, H5adStream, RowFormat, WriteOptions, read_h5ad, write_h5ad};

fn placeholder(m: &Matrix) -> Matrix {
    let (rows, cols) = m.shape();
    Matrix::Sparse(
        SparseMatrix::new(
            SparseFormat::Csr,
            (rows, cols),
            vec![0; rows + 1],
            Vec::new(),
            NumVec::empty(m.dtype()),
        )
        .unwrap(),
    )
}

fn matrix<'a>(data: &'a CellData, key: &str) -> &'a Matrix {
    match key.strip_prefix("layers/") {
        Some(name) => &data.layers[name],
        None => &data.x,
    }
}

/// Writes `data` with the matrices `streamed` pushed `block` rows at a time.
fn stream(
    data: &CellData,
    streamed: &[(&str, RowFormat)],
    block: usize,
    path: &std::path::Path,
    options: &WriteOptions,
) -> usize {
    let mut head = data.clone();
    for &(key, _) in streamed {
        let m = placeholder(matrix(data, key));
        match key.strip_prefix("layers/") {
            Some(name) => {
                head.layers.insert(name.to_owned(), m);
            }
            None => head.x = m,
        }
    }
    let mut writer = H5adStream::create(path, head, streamed, options).unwrap();
    let n = data.n_obs();
    for start in (0..n).step_by(block) {
        let rows: Vec<usize> = (start..(start + block).min(n)).collect();
        for &(key, _) in streamed {
            writer
                .push(key, &matrix(data, key).select_rows(&rows).unwrap())
                .unwrap();
        }
    }
    let peak = writer.peak_buffered_bytes();
    writer.finish().unwrap();
    peak
}

fn with_sparse_layer(n_obs: usize, n_vars: usize, seed: u64) -> CellData {
    let mut data = rich_cell_data(n_obs, n_vars, seed);
    let layer = random_csr(&mut Rng::new(seed + 1), n_obs, n_vars, 0.3);
    data.layers.insert("sparse".into(), Matrix::Sparse(layer));
    data
}

#[test]
fn streamed_files_are_the_whole_write_for_any_block_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_sparse_layer(40, 12, 5);
    for options in [
        WriteOptions::default(),
        WriteOptions {
            compression: Compression::None,
        },
    ] {
        let whole = dir.path().join("whole.h5ad");
        write_h5ad(&data, &whole, &options).unwrap();
        let expected = std::fs::read(&whole).unwrap();
        assert_eq!(read_h5ad(&whole).unwrap(), data);
        let streamed = [
            ("X", RowFormat::Csr),
            ("layers/sparse", RowFormat::Csr),
            ("layers/counts", RowFormat::Dense),
        ];
        for block in [1, 7, 40] {
            let path = dir.path().join(format!("stream{block}.h5ad"));
            stream(&data, &streamed, block, &path, &options);
            assert!(
                std::fs::read(&path).unwrap() == expected,
                "block {block}: the bytes differ from the whole write"
            );
        }
    }
}

#[test]
fn dense_and_csc_matrices_round_trip_around_streamed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = with_sparse_layer(23, 9, 8);
    // X dense, streamed as dense rows; the CSC layer is written whole.
    data.x = Matrix::Dense(data.x.to_dense());
    let path = dir.path().join("dense.h5ad");
    stream(
        &data,
        &[("X", RowFormat::Dense), ("layers/sparse", RowFormat::Csr)],
        5,
        &path,
        &WriteOptions::default(),
    );
    let back = read_h5ad(&path).unwrap();
    assert_eq!(back, data);
    assert!(matches!(&back.layers["csc"], Matrix::Sparse(s) if s.format == SparseFormat::Csc));
}

#[test]
fn rows_that_do_not_fit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_sparse_layer(6, 4, 2);
    let mut head = data.clone();
    head.x = placeholder(&data.x);
    let path = dir.path().join("bad.h5ad");
    let options = WriteOptions::default();
    let mut w =
        H5adStream::create(&path, head.clone(), &[("X", RowFormat::Csr)], &options).unwrap();
    let dense = Matrix::Dense(data.x.to_dense());
    let err = w.push("X", &dense).unwrap_err().to_string();
    assert!(err.contains("streamed as CSR blocks"), "{err}");
    let err = w.push("layers/sparse", &data.x).unwrap_err().to_string();
    assert!(err.contains("not one of the matrices"), "{err}");
    w.push("X", &data.x).unwrap();
    let err = w.push("X", &data.x).unwrap_err().to_string();
    assert!(err.contains("12 rows pushed to a matrix of 6"), "{err}");
    let w = H5adStream::create(&path, head, &[("X", RowFormat::Csr)], &options).unwrap();
    let err = w.finish().unwrap_err().to_string();
    assert!(err.contains("0 of its 6 rows"), "{err}");
    assert!(!path.exists(), "a refused stream leaves no file");
}

#[test]
fn memory_does_not_grow_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriteOptions {
        compression: Compression::None,
    };
    let mut peaks = Vec::new();
    for n in [500, 5_000] {
        let x = random_csr(&mut Rng::new(3), n, 300, 0.2);
        let data = CellData::new(
            Matrix::Sparse(x),
            (0..n).map(|i| format!("c{i}")).collect(),
            (0..300).map(|i| format!("g{i}")).collect(),
        )
        .unwrap();
        let path = dir.path().join(format!("n{n}.h5ad"));
        peaks.push(stream(&data, &[("X", RowFormat::Csr)], 10, &path, &options));
        assert_eq!(read_h5ad(&path).unwrap(), data);
    }
    // 5,000 rows hold ~300,000 values (2.4 MB with their indices): the
    // writer holds the same few buffers for both.
    assert_eq!(peaks[0], peaks[1]);
    assert!(peaks[1] <= 5 << 20, "{} bytes buffered", peaks[1]);
}

#[test]
fn anndata_reads_a_streamed_file() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import anndata"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("python3 with anndata is not available; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = with_sparse_layer(30, 10, 4);
    let path = dir.path().join("for_python.h5ad");
    stream(
        &data,
        &[("X", RowFormat::Csr), ("layers/sparse", RowFormat::Csr)],
        4,
        &path,
        &WriteOptions::default(),
    );
    let script = "import sys, anndata, numpy as np\n\
                  a = anndata.read_h5ad(sys.argv[1])\n\
                  print(a.shape[0], a.shape[1], a.X.format, repr(float(a.X.sum())), \
                  repr(float(a.layers['sparse'].sum())), a.X.nnz)";
    let out = std::process::Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sum = |m: &Matrix| m.values().to_f64().iter().sum::<f64>();
    let Matrix::Sparse(x) = &data.x else {
        panic!("X is CSR")
    };
    let expected = format!(
        "30 10 csr {:?} {:?} {}",
        sum(&data.x),
        sum(&data.layers["sparse"]),
        x.nnz()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
}
