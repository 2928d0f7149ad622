//! What `edit` writes: the input data set with only the edited cells
//! changed, in the matrix the model reads and on that matrix's scale, so
//! that an edit's output can be edited again; and the checks that keep a
//! model fitted on counts from silently reading transformed data.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_bad_input, assert_ok, dense, p, pbmc, run, stderr};
use conceptlab_core::{
    CellData, Column, DenseArray, Frame, Matrix, NumVec, RawData, SparseFormat, SparseMatrix,
    UnsValue,
};
use conceptlab_io::{WriteOptions, read_h5ad, write_h5ad};

/// A three-epoch model on 100 of the genes, 16 PCs: enough for edits that
/// change cells, quick in a debug build.
const BUDGET: [&str; 10] = [
    "--override",
    "train.max_epochs=3",
    "--override",
    "model.sccbgm.hidden_dim=32",
    "--override",
    "model.sccbgm.latent_dim=16",
    "--override",
    "preprocess.n_top_genes=100",
    "--override",
    "preprocess.n_pcs=16",
];

/// 600 synthetic cells × 200 genes: counts in X (float32) and in
/// layers/counts (int32), and the elements an edit must carry over.
fn synth(dir: &Path) -> PathBuf {
    let path = dir.join("synth.h5ad");
    assert_ok(&run(&[
        "-q",
        "synth",
        "--cells",
        "600",
        "--genes",
        "200",
        // The layer these tests edit through (synth writes only X by default).
        "--counts-layer",
        // Dense X: the chunked-edit test builds its CSR twin from it.
        "--dense",
        "-o",
        p(&path),
    ]));
    let mut data = read_h5ad(&path).unwrap();
    let n = data.n_obs();
    let g = data.n_vars();
    let pcs: Vec<f32> = (0..n * 5).map(|i| (i % 17) as f32 - 8.0).collect();
    data.obsm.insert(
        "X_pca".into(),
        Matrix::Dense(DenseArray::new(vec![n, 5], NumVec::F32(pcs)).unwrap()),
    );
    let ring: Vec<u32> = (0..n).map(|i| ((i + 1) % n) as u32).collect();
    data.obsp.insert(
        "connectivities".into(),
        Matrix::Sparse(
            SparseMatrix::new(
                SparseFormat::Csr,
                (n, n),
                (0..=n as u64).collect(),
                ring,
                NumVec::F32(vec![1.0; n]),
            )
            .unwrap(),
        ),
    );
    data.varp.insert(
        "similarity".into(),
        Matrix::Dense(DenseArray::new(vec![g, g], NumVec::F64(vec![0.5; g * g])).unwrap()),
    );
    data.raw = Some(Box::new(RawData {
        x: data.x.clone(),
        var: Frame::with_index(data.var_names().to_vec()),
        varm: Default::default(),
    }));
    write(&data, &path);
    path
}

fn write(data: &CellData, path: &Path) {
    write_h5ad(data, path, &WriteOptions::default()).unwrap();
}

/// The same cells with X log-transformed (counts stay in layers/counts).
fn logged(data: &Path, out: &Path) -> PathBuf {
    let mut cells = read_h5ad(data).unwrap();
    let x: Vec<f32> = dense(&cells.x).into_iter().map(f32::ln_1p).collect();
    cells.x = matrix(cells.n_obs(), cells.n_vars(), x);
    write(&cells, out);
    out.to_path_buf()
}

fn matrix(rows: usize, cols: usize, values: Vec<f32>) -> Matrix {
    Matrix::Dense(DenseArray::new(vec![rows, cols], NumVec::F32(values)).unwrap())
}

fn fit(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["-q"];
    args.extend(BUDGET);
    args.extend([
        "fit",
        p(data),
        "--concepts",
        "cell_type,concept_0,concept_1",
    ]);
    args.extend(extra);
    args.extend(["-o", p(out)]);
    run(&args)
}

fn edit(data: &Path, model: &Path, set: &str, filter: &str, out: &Path) -> Output {
    run(&[
        "edit",
        p(data),
        "--model",
        p(model),
        "--set",
        set,
        "--where",
        filter,
        "-o",
        p(out),
    ])
}

/// Each row of a matrix as f32 bit patterns (equal means bit-identical).
fn rows(m: &Matrix) -> Vec<Vec<u32>> {
    let width = m.shape().1;
    dense(m)
        .chunks(width.max(1))
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn labels(data: &CellData, column: &str) -> Vec<String> {
    let Column::Categorical(c) = &data.obs.columns[column] else {
        panic!("{column} is not categorical")
    };
    (0..data.n_obs()).map(|i| c.label(i).unwrap()).collect()
}

fn marks(data: &CellData) -> Vec<bool> {
    let Column::Numeric(NumVec::Bool(b)) = &data.obs.columns["conceptlab_edited"] else {
        panic!("no boolean obs column conceptlab_edited")
    };
    b.clone()
}

fn record<'a>(data: &'a CellData, key: &str) -> &'a UnsValue {
    let UnsValue::Mapping(m) = &data.uns["conceptlab_edit"] else {
        panic!("uns/conceptlab_edit is not a mapping")
    };
    &m[key]
}

fn record_text<'a>(data: &'a CellData, key: &str) -> &'a str {
    match record(data, key) {
        UnsValue::String(s) => s,
        other => panic!("uns/conceptlab_edit/{key} is {}", other.describe()),
    }
}

#[test]
fn an_edit_changes_the_edited_cells_only_and_keeps_every_element() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let model = dir.path().join("model");
    assert_ok(&fit(&data, &model, &[]));
    let out = dir.path().join("edited.h5ad");
    assert_ok(&edit(
        &data,
        &model,
        "concept_0=True",
        "cell_type=celltype_1",
        &out,
    ));
    let (input, output) = (read_h5ad(&data).unwrap(), read_h5ad(&out).unwrap());

    assert_eq!(output.var, input.var, "all 200 genes, not the model's 100");
    assert_eq!(output.layers, input.layers, "the model reads X");
    for key in input.obsm.keys() {
        assert_eq!(output.obsm[key], input.obsm[key], "obsm/{key}");
    }
    assert_eq!(output.obsm["X_conceptlab_pca"].shape(), (600, 16));
    assert_eq!(output.varm, input.varm);
    assert_eq!(output.obsp, input.obsp);
    assert_eq!(output.varp, input.varp);
    assert_eq!(output.raw, input.raw);
    for (key, value) in &input.uns {
        assert_eq!(&output.uns[key], value, "uns/{key}");
    }
    assert_eq!(record_text(&output, "matrix"), "X");
    assert!(record_text(&output, "values").starts_with("counts scale"));

    let types = labels(&input, "cell_type");
    let edited = marks(&output);
    let (before, after) = (rows(&input.x), rows(&output.x));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("meta.json")).unwrap()).unwrap();
    let model_genes: Vec<usize> = meta["preprocessing"]["genes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(model_genes.len(), 100);
    let others: Vec<usize> = (0..200).filter(|g| !model_genes.contains(g)).collect();
    for i in 0..600 {
        assert_eq!(edited[i], types[i] == "celltype_1", "cell {i}");
        if edited[i] {
            assert!(before[i] != after[i], "edited cell {i} unchanged");
            for &g in &others {
                assert_eq!(
                    after[i][g], before[i][g],
                    "cell {i}: gene {g} is not the model's"
                );
            }
            let counts = after[i].iter().map(|&b| f32::from_bits(b));
            assert!(
                counts.clone().all(|v| v >= 0.0),
                "cell {i}: negative counts"
            );
        } else {
            assert_eq!(before[i], after[i], "unedited cell {i} changed");
        }
    }
}

#[test]
fn pbmc_edits_keep_the_users_pca_raw_and_graphs() {
    // pbmc68k's X is scaled (not counts): the model works on it as it is,
    // and the edit is written on that scale.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let o = run(&[
        "-q",
        "--override",
        "train.max_epochs=2",
        "--override",
        "model.sccbgm.hidden_dim=32",
        "--override",
        "preprocess.n_top_genes=300",
        "--override",
        "preprocess.n_pcs=20",
        "fit",
        p(&pbmc()),
        "--concepts",
        "bulk_labels,phase",
        "-o",
        p(&model),
    ]);
    assert_ok(&o);
    let out = dir.path().join("edited.h5ad");
    assert_ok(&edit(
        &pbmc(),
        &model,
        "phase=S",
        "bulk_labels=CD19+ B",
        &out,
    ));
    let (input, output) = (read_h5ad(pbmc()).unwrap(), read_h5ad(&out).unwrap());
    assert_eq!(output.var, input.var);
    assert_eq!(output.obsm["X_pca"], input.obsm["X_pca"], "the user's PCA");
    assert_eq!(output.obsm["X_umap"], input.obsm["X_umap"]);
    assert_eq!(output.obsm["X_conceptlab_pca"].shape(), (700, 20));
    // varm/PCs holds NaNs (genes scanpy left out of its PCA), which `==`
    // never matches: compare what Debug prints (every bit but NaN payloads),
    // key by key, as the file's key order is the writer's.
    let bits = |v: &dyn std::fmt::Debug| format!("{v:?}");
    for (a, b) in [(&output.varm, &input.varm), (&output.obsp, &input.obsp)] {
        assert_eq!(a.len(), b.len());
        for (key, m) in b {
            assert_eq!(bits(&a[key]), bits(m), "{key}");
        }
    }
    assert_eq!(bits(&output.raw), bits(&input.raw));
    assert!(record_text(&output, "values").starts_with("the matrix's own scale"));
    let types = labels(&input, "bulk_labels");
    let (before, after) = (rows(&input.x), rows(&output.x));
    for i in 0..700 {
        let is_b = types[i] == "CD19+ B";
        assert_eq!(before[i] != after[i], is_b, "cell {i}");
    }
}

#[test]
fn editing_an_edit_changes_only_the_newly_edited_cells() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let model = dir.path().join("model");
    assert_ok(&fit(&data, &model, &[]));
    let first = dir.path().join("first.h5ad");
    let second = dir.path().join("second.h5ad");
    assert_ok(&edit(
        &data,
        &model,
        "concept_0=True",
        "cell_type=celltype_1",
        &first,
    ));
    let o = edit(
        &first,
        &model,
        "concept_1=True",
        "cell_type=celltype_2",
        &second,
    );
    assert_ok(&o);
    let input = read_h5ad(&data).unwrap();
    let (once, twice) = (read_h5ad(&first).unwrap(), read_h5ad(&second).unwrap());
    let types = labels(&input, "cell_type");
    let (x0, x1, x2) = (rows(&input.x), rows(&once.x), rows(&twice.x));
    for (i, t) in types.iter().enumerate() {
        match t.as_str() {
            "celltype_1" => assert_eq!(x2[i], x1[i], "cell {i}: edited only the first time"),
            "celltype_2" => assert!(x2[i] != x1[i], "cell {i}: not edited the second time"),
            _ => assert_eq!(x2[i], x0[i], "cell {i}: never edited, yet changed"),
        }
    }
    let either: Vec<bool> = types
        .iter()
        .map(|t| t == "celltype_1" || t == "celltype_2")
        .collect();
    assert_eq!(marks(&twice), either);
    assert_eq!(record(&twice, "previous"), &once.uns["conceptlab_edit"]);
}

#[test]
fn an_edit_to_the_cells_own_values_gives_back_their_counts() {
    // Mean shift moves a cell by its target minus its own annotation, so
    // setting the cell type a cell already has, with the residual kept, is
    // the identity: the counts written must be the counts read.
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-4 * x.abs().max(1.0))
    };
    for layer in [None, Some("counts")] {
        let model = dir.path().join(format!("shift-{}", layer.unwrap_or("x")));
        let mut extra = vec!["--model-type", "mean-shift"];
        if let Some(l) = layer {
            extra.extend(["--layer", l]);
        }
        assert_ok(&fit(&data, &model, &extra));
        let out = dir
            .path()
            .join(format!("same-{}.h5ad", layer.unwrap_or("x")));
        assert_ok(&run(&[
            "edit",
            p(&data),
            "--model",
            p(&model),
            "--set",
            "cell_type=celltype_2",
            "--where",
            "cell_type=celltype_2",
            "--residual",
            "keep",
            "-o",
            p(&out),
        ]));
        let (input, output) = (read_h5ad(&data).unwrap(), read_h5ad(&out).unwrap());
        assert!(marks(&output).iter().filter(|&&m| m).count() > 20);
        let (a, b) = match layer {
            None => (&input.x, &output.x),
            Some(l) => (&input.layers[l], &output.layers[l]),
        };
        assert!(close(&dense(a), &dense(b)), "{layer:?}: the counts changed");
        if layer.is_some() {
            assert_eq!(output.x, input.x, "X is not the model's matrix");
        }
    }
}

#[test]
fn a_layer_model_edits_its_layer_and_leaves_x_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = logged(&synth(dir.path()), &dir.path().join("logged.h5ad"));
    let model = dir.path().join("model");
    assert_ok(&fit(&data, &model, &["--layer", "counts"]));
    let out = dir.path().join("edited.h5ad");
    let o = edit(
        &data,
        &model,
        "concept_0=True",
        "cell_type=celltype_1",
        &out,
    );
    assert_ok(&o);
    assert!(stderr(&o).contains("X is unchanged"), "{}", stderr(&o));
    let (input, output) = (read_h5ad(&data).unwrap(), read_h5ad(&out).unwrap());
    assert_eq!(output.x, input.x);
    assert_eq!(record_text(&output, "matrix"), "layers/counts");
    let (before, after) = (
        rows(&input.layers["counts"]),
        rows(&output.layers["counts"]),
    );
    for (i, edited) in marks(&output).into_iter().enumerate() {
        assert_eq!(before[i] != after[i], edited, "cell {i}");
    }
}

#[test]
fn a_model_fitted_on_counts_refuses_transformed_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let model = dir.path().join("model");
    assert_ok(&fit(&data, &model, &[]));
    let transformed = logged(&data, &dir.path().join("logged.h5ad"));
    let o = edit(
        &transformed,
        &model,
        "concept_0=True",
        "cell_type=celltype_1",
        &dir.path().join("out.h5ad"),
    );
    assert_bad_input(
        &o,
        &[
            "X: cell `obs_",
            "not an integer",
            "counts",
            "normalize=never",
        ],
    );
    assert!(!dir.path().join("out.h5ad").exists());

    let mut cells = read_h5ad(&data).unwrap();
    let mut x = dense(&cells.x);
    x[3 * 200 + 7] = -2.0;
    cells.x = matrix(600, 200, x);
    let negative = dir.path().join("negative.h5ad");
    write(&cells, &negative);
    let o = edit(
        &negative,
        &model,
        "concept_0=True",
        "cell_type=celltype_1",
        &dir.path().join("out.h5ad"),
    );
    assert_bad_input(&o, &["cell `obs_3` (row 3)", "gene `gene_7`", "negative"]);
}

#[test]
fn fit_says_when_auto_does_not_normalise() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let counts_model = dir.path().join("counts");
    let o = fit(&data, &counts_model, &["--model-type", "copy"]);
    assert_ok(&o);
    assert!(!stderr(&o).contains("not counts"), "{}", stderr(&o));

    let transformed = logged(&data, &dir.path().join("logged.h5ad"));
    let o = fit(
        &transformed,
        &dir.path().join("m1"),
        &["--model-type", "copy"],
    );
    assert_ok(&o);
    let err = stderr(&o);
    for fragment in ["WARN", "X: cell `obs_", "not counts", "normalize=always"] {
        assert!(err.contains(fragment), "expected `{fragment}` in: {err}");
    }

    // A layer asked for by name must hold counts.
    let mut cells = read_h5ad(&transformed).unwrap();
    cells.layers.insert("counts".into(), cells.x.clone());
    let fake = dir.path().join("fake-counts.h5ad");
    write(&cells, &fake);
    let o = fit(
        &fake,
        &dir.path().join("m2"),
        &["--model-type", "copy", "--layer", "counts"],
    );
    assert_bad_input(
        &o,
        &["layers/counts", "does not hold counts", "normalize=never"],
    );
}

#[test]
fn chunked_edits_write_the_same_bytes_for_any_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let dense_input = synth(dir.path());
    let model = dir.path().join("model");
    assert_ok(&fit(&dense_input, &model, &[]));
    // The same cells with X stored as CSR: the output stays CSR.
    let mut data = read_h5ad(&dense_input).unwrap();
    let Matrix::Dense(x) = &data.x else {
        panic!("synth writes dense X")
    };
    let (n, g) = (x.shape[0], x.shape[1]);
    let values = x.data.to_f32();
    let (mut indptr, mut indices, mut stored) = (vec![0u64], Vec::new(), Vec::new());
    for i in 0..n {
        for j in 0..g {
            if values[i * g + j] != 0.0 {
                indices.push(j as u32);
                stored.push(values[i * g + j]);
            }
        }
        indptr.push(indices.len() as u64);
    }
    data.x = Matrix::Sparse(
        SparseMatrix::new(
            SparseFormat::Csr,
            (n, g),
            indptr,
            indices,
            NumVec::F32(stored),
        )
        .unwrap(),
    );
    let sparse_input = dir.path().join("sparse.h5ad");
    write(&data, &sparse_input);
    for (input, encoding) in [(&dense_input, "array"), (&sparse_input, "csr_matrix")] {
        let mut outputs = Vec::new();
        for chunk in ["1", "7", "8192"] {
            let out = dir.path().join(format!("{encoding}-{chunk}.h5ad"));
            assert_ok(&run(&[
                "edit",
                p(input),
                "--model",
                p(&model),
                "--set",
                "concept_0=True",
                "--where",
                "cell_type=celltype_1",
                "--chunk-rows",
                chunk,
                "-o",
                p(&out),
            ]));
            outputs.push(std::fs::read(&out).unwrap());
        }
        assert!(
            outputs[0] == outputs[1] && outputs[1] == outputs[2],
            "{encoding}"
        );
        let out = read_h5ad(dir.path().join(format!("{encoding}-1.h5ad"))).unwrap();
        assert_eq!(out.x.encoding(), encoding);
    }
}
