//! Files that are valid HDF5 but declare absurd or inconsistent content
//! (written by scripts/python/io_fuzz_corpus.py into tests/fixtures/hostile):
//! each is refused from its metadata, with a message naming the file, the key
//! and the expected form, and without allocating what it declares.

mod alloc_guard;

use std::path::PathBuf;

use conceptlab_core::{
    Categorical, CellData, Column, DenseArray, Matrix, NumVec, UnsValue, Values,
};
use conceptlab_io::{H5ad, IoError, WriteOptions, read_h5ad, write_h5ad};

#[global_allocator]
static ALLOCATOR: alloc_guard::Counting = alloc_guard::Counting;

/// Far below what any of these files declares, far above what reading their
/// real content takes.
const SMALL: usize = 4 << 20;

fn hostile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(name)
}

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(name)
}

/// Reads `name` both ways (whole file and summary), expecting both to fail
/// with bad input, no allocation above `SMALL`, and a message containing
/// every one of `needles`. Returns the whole-file read's message.
fn refused(name: &str, needles: &[&str]) -> String {
    alloc_guard::reset();
    let path = hostile(name);
    let read = read_h5ad(&path).expect_err("read should be refused");
    let summary = H5ad::open(&path)
        .and_then(|f| f.summary())
        .expect_err("summary should be refused");
    let largest = alloc_guard::largest_here();
    assert!(
        largest < SMALL,
        "{name}: allocated {largest} bytes at once ({read})"
    );
    for err in [&read, &summary] {
        assert!(err.is_bad_input(), "{err}");
        let text = err.to_string();
        assert!(text.contains(name), "does not name the file: {text}");
        for needle in needles {
            assert!(text.contains(needle), "`{needle}` missing from: {text}");
        }
    }
    read.to_string()
}

#[test]
fn matrices_declaring_more_than_the_index_allows_are_refused_from_metadata() {
    // Before: 4 GB and 8.6 GB allocations of fill values, then an abort.
    refused(
        "huge_dense_x.h5ad",
        &["`X`", "300 x 60 matrix (obs x var)", "1000000 x 1000000"],
    );
    refused(
        "wide_dense_x.h5ad",
        &["`X`", "300 x 60", "300 x 2147483648"],
    );
    refused(
        "wide_sparse_x.h5ad",
        &["`X`", "300 x 60", "300 x 2147483648"],
    );
    // Before: the 8 MB indptr was read, and only then compared with the shape.
    refused(
        "long_indptr.h5ad",
        &["`X/indptr`", "1000001 entries", "needs 6"],
    );
    refused("x_3d.h5ad", &["`X`", "3-dimensional 6 x 2 x 2"]);
}

#[test]
fn declarations_beyond_memory_are_refused_before_allocating() {
    // obsm/X_huge has the right number of rows: only the memory bound stops it.
    alloc_guard::reset();
    let err = read_h5ad(hostile("huge_obsm.h5ad")).unwrap_err();
    assert!(matches!(err, IoError::TooLarge { .. }), "{err}");
    let text = err.to_string();
    for needle in [
        "`obsm/X_huge`",
        "declares 6 x 1099511627776 float32 (24.0 TiB)",
        "of available memory",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }
    assert!(alloc_guard::largest_here() < SMALL);

    // A caller's limit applies the same way; under a large enough one, the
    // same (valid, unwritten) matrix reads as its zero fill value.
    let path = hostile("budget_dense_x.h5ad");
    let err = H5ad::open(&path)
        .unwrap()
        .with_memory_limit(64 << 10)
        .read()
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "declares 256 x 256 float32 (256.0 KiB), more than the 64.0 KiB memory limit"
        ),
        "{err}"
    );
    let data = H5ad::open(&path)
        .unwrap()
        .with_memory_limit(16 << 20)
        .read()
        .unwrap();
    assert_eq!((data.n_obs(), data.n_vars()), (256, 256));
}

#[test]
fn damaged_or_missing_frame_attributes_are_errors_not_empty_frames() {
    // Before: both read as an obs table with none of its columns, exit 0.
    refused(
        "no_column_order.h5ad",
        &["`obs`", "no `column-order` attribute"],
    );
    refused(
        "unreadable_column_order.h5ad",
        &[
            "`obs`",
            "`column-order` is stored with a type that cannot be read",
        ],
    );
}

#[test]
fn repeated_categories_are_refused_on_read_and_on_write() {
    refused(
        "dup_categories.h5ad",
        &["`obs/c/categories`", "must be unique", "`a`"],
    );
    let mut data = small_data();
    data.obs.columns.insert(
        "c".into(),
        Column::Categorical(Categorical {
            codes: vec![0, 1],
            categories: Values::Strings(vec!["a".into(), "a".into()]),
            ordered: false,
        }),
    );
    let err = write_refused(&data);
    assert!(
        err.contains("`obs/c`") && err.contains("must be unique"),
        "{err}"
    );
}

#[test]
fn matrices_anndata_needs_two_dimensional_are_refused_on_write() {
    let mut data = small_data();
    data.x = Matrix::Dense(DenseArray::new(vec![2, 1, 2], NumVec::F32(vec![0.0; 4])).unwrap());
    let err = write_refused(&data);
    assert!(
        err.contains("`X`") && err.contains("not 3 dimensions"),
        "{err}"
    );
}

#[test]
fn a_group_linked_into_itself_is_refused_not_recursed_into() {
    // Before: unbounded recursion, a stack overflow that aborts the process.
    refused(
        "uns_cycle.h5ad",
        &["`uns/loop/again/again", "nested more than 32 deep"],
    );
}

/// Files the fuzz harness found (tests/fuzz), kept as regression cases.
#[test]
fn files_the_fuzzer_found_are_refused_cheaply() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz_found");
    for (name, needle) in [
        // Aborted allocating 4 GiB: a chunk-index entry with a garbage size.
        ("chunk_size_past_eof.h5ad", "past the end of the file"),
        // Allocated 192 MiB of strings: a size field above its maximum.
        ("dim_over_maxdim.h5ad", "declares 4194310 but at most 6"),
        // Stack overflow: a link named "" resolves to the group itself.
        ("empty_link_name.h5ad", "impossible name \"\""),
    ] {
        alloc_guard::reset();
        let err = read_h5ad(dir.join(name)).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert!(alloc_guard::largest_here() < SMALL, "{name}");
    }
}

#[test]
fn records_with_variable_length_strings_are_read() {
    // anndata re-saves a record array with variable-length text fields; they
    // used to be skipped with a warning, losing uns/interventions.
    let data = read_h5ad(hostile("rec_vlen.h5ad")).unwrap();
    let Some(UnsValue::Records(fields)) = data.uns.get("interventions") else {
        panic!("uns/interventions missing: {:?}", data.uns.keys());
    };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name", "value", "n"]);
    assert_eq!(
        fields[0].1,
        Values::Strings(vec!["ko_a".into(), "ko_bb".into(), "ü".into()])
    );
    assert_eq!(
        fields[1].1,
        Values::Numbers(NumVec::F64(vec![1.5, -2.0, 0.25]))
    );
    assert_eq!(fields[2].1, Values::Numbers(NumVec::I32(vec![1, 2, 3])));
}

#[test]
fn a_truncated_file_is_reported_as_truncated() {
    let whole = std::fs::read(corpus("columns.h5ad")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.h5ad");
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let err = read_h5ad(&path).unwrap_err();
    let expected = format!(
        "not a complete HDF5 file ({} bytes; the superblock declares end of file at {})",
        whole.len() / 2,
        whole.len()
    );
    assert!(err.to_string().contains(&expected), "{err}");
    assert!(err.is_bad_input());
}

#[test]
fn an_error_chain_states_each_cause_once() {
    let err = read_h5ad("/nonexistent/dir/file.h5ad").unwrap_err();
    // What a binary printing the whole chain (`{:#}` in anyhow) shows.
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert_eq!(
        chain.matches("No such file or directory").count(),
        1,
        "{chain}"
    );
    assert!(
        chain.starts_with("/nonexistent/dir/file.h5ad: cannot open file"),
        "{chain}"
    );
}

fn small_data() -> CellData {
    CellData::new(
        Matrix::Dense(DenseArray::new(vec![2, 2], NumVec::F32(vec![1.0; 4])).unwrap()),
        vec!["c0".into(), "c1".into()],
        vec!["g0".into(), "g1".into()],
    )
    .unwrap()
}

/// Writes `data`, expecting a bad-input refusal that leaves no file behind.
fn write_refused(data: &CellData) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.h5ad");
    let err = write_h5ad(data, &path, &WriteOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::Unwritable { .. }), "{err}");
    assert!(err.is_bad_input());
    assert!(!path.exists());
    err.to_string()
}
