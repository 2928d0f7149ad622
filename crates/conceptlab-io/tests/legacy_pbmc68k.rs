//! scanpy's `10x_pbmc68k_reduced.h5ad` (pre-0.7 layout), checked against the
//! values Python anndata 0.12 reads from the same file.

use std::path::PathBuf;

use conceptlab_core::{Column, Matrix, NumVec, Values};
use conceptlab_io::{H5ad, read_h5ad};

fn pbmc() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/pbmc68k_reduced.h5ad")
}

fn categories(column: &Column) -> (Vec<String>, Vec<usize>) {
    let Column::Categorical(c) = column else {
        panic!("expected a categorical, got {}", column.describe());
    };
    let Values::Strings(names) = &c.categories else {
        panic!("expected string categories");
    };
    (names.clone(), c.counts())
}

#[test]
fn reads_shape_categories_and_values() {
    let data = read_h5ad(pbmc()).unwrap();
    assert_eq!((data.n_obs(), data.n_vars()), (700, 765));
    assert_eq!(
        &data.obs_names()[..2],
        ["AAAGCCTGGCTAAC-1", "AAATTCGATGCACA-1"]
    );
    assert_eq!(&data.var_names()[..2], ["HES4", "TNFRSF4"]);

    let (labels, counts) = categories(&data.obs.columns["bulk_labels"]);
    assert_eq!(labels.len(), 10);
    assert_eq!(labels[0], "CD4+/CD25 T Reg");
    assert_eq!(labels[9], "Dendritic");
    assert_eq!(counts, vec![68, 8, 19, 54, 43, 129, 95, 13, 31, 240]);
    let (phases, phase_counts) = categories(&data.obs.columns["phase"]);
    assert_eq!(phases, vec!["G1", "G2M", "S"]);
    assert_eq!(phase_counts, vec![501, 17, 182]);
    assert_eq!(categories(&data.obs.columns["louvain"]).0.len(), 11);

    // Column order and types as anndata reports them.
    let names: Vec<&str> = data.obs.columns.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bulk_labels",
            "n_genes",
            "percent_mito",
            "n_counts",
            "S_score",
            "G2M_score",
            "phase",
            "louvain"
        ]
    );
    match &data.obs.columns["n_genes"] {
        Column::Numeric(NumVec::I64(v)) => assert_eq!(&v[..3], [1003, 1080, 1228]),
        other => panic!("n_genes: {}", other.describe()),
    }
    match &data.var.columns["highly_variable"] {
        Column::Numeric(NumVec::Bool(v)) => assert_eq!(v.iter().filter(|&&b| b).count(), 309),
        other => panic!("highly_variable: {}", other.describe()),
    }

    // X: dense float32; first values and the float64 sum of all entries.
    let Matrix::Dense(x) = &data.x else {
        panic!("X should be dense")
    };
    let NumVec::F32(values) = &x.data else {
        panic!("X should be float32")
    };
    assert_eq!(&values[..3], [-0.326f32, -0.191, -0.728]);
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - -243.681057988666).abs() < 1e-6, "{sum}");

    // raw.X: CSR from the h5sparse layout.
    let raw = data.raw.as_ref().unwrap();
    let Matrix::Sparse(rx) = &raw.x else {
        panic!("raw.X should be sparse")
    };
    assert_eq!(rx.nnz(), 174_400);
    // Stored unsorted, as in the file (scipy only sorts on request).
    assert_eq!(&rx.indices[..3], [764, 761, 760]);
    assert_eq!(raw.var.len(), 765);

    // Compound obsm fields become matrices; neighbour graphs move to obsp.
    assert_eq!(data.obsm["X_pca"].shape(), (700, 50));
    let Matrix::Dense(umap) = &data.obsm["X_umap"] else {
        panic!()
    };
    assert_eq!(umap.data.get_f64(0), Some(-1.9918625454649166));
    assert_eq!(data.varm["PCs"].shape(), (765, 50));
    assert_eq!(data.obsp["distances"].values().len(), 6_300);
    assert_eq!(data.obsp["connectivities"].values().len(), 9_992);
    // The category arrays consumed by obs are not left behind in uns.
    assert!(!data.uns.contains_key("bulk_labels_categories"));
    assert!(data.uns.contains_key("bulk_labels_colors"));
    // scanpy's marker-gene record arrays are kept, fixed-length strings and all.
    let conceptlab_core::UnsValue::Mapping(rgg) = &data.uns["rank_genes_groups"] else {
        panic!()
    };
    let conceptlab_core::UnsValue::Records(names) = &rgg["names"] else {
        panic!("names: {}", rgg["names"].describe())
    };
    assert_eq!(names.len(), 10);
    assert_eq!(names[0].0, "CD4+/CD25 T Reg");
    let Values::Strings(first) = &names[0].1 else {
        panic!()
    };
    assert_eq!(&first[..2], ["RGS19", "HIST1H4C"]);
}

#[test]
fn summary_matches_full_read() {
    let file = H5ad::open(pbmc()).unwrap();
    assert!(file.is_legacy());
    let s = file.summary().unwrap();
    assert_eq!((s.n_obs, s.n_vars), (700, 765));
    assert_eq!(s.x.encoding, "array");
    let bulk = s.obs.iter().find(|c| c.name == "bulk_labels").unwrap();
    assert_eq!(bulk.categories.as_ref().unwrap().len(), 10);
    let phase = s.obs.iter().find(|c| c.name == "phase").unwrap();
    assert_eq!(phase.kind, "categorical[3]");
    assert_eq!(s.raw.as_ref().unwrap().stored, 174_400);
}

#[test]
fn legacy_file_converts_to_current_encoding_losslessly() {
    let original = read_h5ad(pbmc()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pbmc_modern.h5ad");
    conceptlab_io::write_h5ad(&original, &out, &Default::default()).unwrap();
    let again = H5ad::open(&out).unwrap();
    assert!(!again.is_legacy());
    let mut again = again.read().unwrap();
    let mut original = original;
    // varm/PCs holds NaN (22,800 of them), which `==` never equates: compare bits.
    let bits = |m: &Matrix| -> Vec<u64> {
        let Matrix::Dense(d) = m else {
            panic!("PCs should be dense")
        };
        let NumVec::F64(v) = &d.data else {
            panic!("PCs should be float64")
        };
        v.iter().map(|x| x.to_bits()).collect()
    };
    assert_eq!(bits(&again.varm["PCs"]), bits(&original.varm["PCs"]));
    again.varm.clear();
    original.varm.clear();
    assert_eq!(again, original);
}
