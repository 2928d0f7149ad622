//! conceptlab_core::preprocess against scanpy / scikit-misc / scikit-learn
//! (scripts/python/golden_preprocess.py). CI regenerates the fixture with the
//! Python packages and points CONCEPTLAB_GOLDEN_PREPROCESS at it; otherwise
//! the committed copy is used.

use conceptlab_core::preprocess::{
    ExprMatrix, HvgFlavor, LoessSurface, Pca, PcaOptions, PcaSolver, TargetSum, curate_concepts,
    highly_variable_genes, loess_fit, log1p, normalize_total, normalize_total_csr, to_dense_f32,
};
use conceptlab_core::{
    Categorical, Column, DenseArray, Frame, Matrix, NumVec, SparseFormat, SparseMatrix, Values,
};
use ndarray::Array2;
use serde_json::Value;

fn golden() -> Value {
    let path = std::env::var("CONCEPTLAB_GOLDEN_PREPROCESS").unwrap_or_else(|_| {
        format!(
            "{}/tests/fixtures/golden_preprocess.json",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(f64s).collect();
    let (r, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    Array2::from_shape_vec((r, c), rows.concat()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// `|got − want| ≤ abs + rel·|want|`, NaN only where NaN is expected.
fn close(got: f64, want: f64, abs: f64, rel: f64, what: &str) {
    if want.is_nan() {
        assert!(got.is_nan(), "{what}: got {got}, want NaN");
        return;
    }
    assert!(
        (got - want).abs() <= abs + rel * want.abs(),
        "{what}: got {got}, want {want}"
    );
}

fn close_all(got: &[f64], want: &[f64], abs: f64, rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(*g, *w, abs, rel, &format!("{what}[{i}]"));
    }
}

fn counts(g: &Value) -> Array2<f32> {
    matrix(&g["counts"]).mapv(|v| v as f32)
}

fn counts_csr(g: &Value) -> SparseMatrix {
    let c = matrix(&g["counts"]);
    let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
    for row in c.rows() {
        for (j, &v) in row.iter().enumerate() {
            if v != 0.0 {
                indices.push(j as u32);
                data.push(v as i64);
            }
        }
        indptr.push(indices.len() as u64);
    }
    SparseMatrix::new(
        SparseFormat::Csr,
        c.dim(),
        indptr,
        indices,
        NumVec::I64(data),
    )
    .unwrap()
}

fn log_normalized(g: &Value) -> Array2<f32> {
    let mut x = counts(g);
    normalize_total(&mut x, TargetSum::Value(g["target_sum"].as_f64().unwrap())).unwrap();
    log1p(&mut x);
    x
}

fn compare_rows(got: &Array2<f32>, want: &Value, what: &str) {
    let want = matrix(want);
    for ((r, c), w) in want.indexed_iter() {
        // The same float32 operations as scanpy: equal up to the last bit of
        // the decimal round trip.
        close(
            f64::from(got[(r, c)]),
            *w,
            0.0,
            1e-6,
            &format!("{what}[{r},{c}]"),
        );
    }
}

#[test]
fn normalize_total_and_log1p_match_scanpy() {
    let g = golden();
    let target = g["target_sum"].as_f64().unwrap();

    let mut dense = counts(&g);
    assert_eq!(
        normalize_total(&mut dense, TargetSum::Value(target)).unwrap(),
        target
    );
    compare_rows(&dense, &g["normalized_rows"], "dense normalize_total");

    let mut csr = counts_csr(&g);
    assert_eq!(
        normalize_total_csr(&mut csr, TargetSum::Value(target)).unwrap(),
        target
    );
    let from_csr = to_dense_f32(&Matrix::Sparse(csr)).unwrap();
    assert_eq!(from_csr, dense, "CSR and dense normalisation agree exactly");

    // The median rule differs between dense (positive totals) and sparse
    // (all cells) input, as in scanpy.
    let mut dense = counts(&g);
    let median = normalize_total(&mut dense, TargetSum::Median).unwrap();
    assert_eq!(median, g["median_target_dense"].as_f64().unwrap());
    compare_rows(&dense, &g["normalized_median_dense_rows"], "dense median");
    let mut csr = counts_csr(&g);
    let median = normalize_total_csr(&mut csr, TargetSum::Median).unwrap();
    assert_eq!(median, g["median_target_sparse"].as_f64().unwrap());
    let from_csr = to_dense_f32(&Matrix::Sparse(csr)).unwrap();
    compare_rows(
        &from_csr,
        &g["normalized_median_sparse_rows"],
        "sparse median",
    );

    let log = log_normalized(&g);
    compare_rows(&log, &g["log1p_rows"], "log1p");
}

fn check_hvg_seurat(got: &conceptlab_core::preprocess::HvgResult, want: &Value, what: &str) {
    close_all(
        &got.means,
        &f64s(&want["means"]),
        1e-12,
        1e-6,
        &format!("{what} means"),
    );
    // Logs of variances near 1 are near 0: compare them absolutely (numpy's
    // and Rust's float32 expm1 may differ in the last bit).
    close_all(
        &got.dispersions,
        &f64s(&want["dispersions"]),
        1e-6,
        1e-6,
        &format!("{what} dispersions"),
    );
    close_all(
        &got.normalized,
        &f64s(&want["dispersions_norm"]),
        1e-5,
        1e-5,
        &format!("{what} dispersions_norm"),
    );
    assert_eq!(got.selected, usizes(&want["selected"]), "{what} selection");
}

#[test]
fn hvg_seurat_matches_scanpy_dense_and_sparse() {
    let g = golden();
    let want = &g["hvg_seurat"];
    let n_top = want["n_top"].as_u64().unwrap() as usize;
    let log = log_normalized(&g);
    let dense = highly_variable_genes(&log, HvgFlavor::Seurat, n_top).unwrap();
    check_hvg_seurat(&dense, want, "seurat (dense)");
    // scanpy's fixture selects more than n_top genes: ties at the cut-off.
    assert!(dense.selected.len() > n_top);

    let mut csr = counts_csr(&g);
    normalize_total_csr(
        &mut csr,
        TargetSum::Value(g["target_sum"].as_f64().unwrap()),
    )
    .unwrap();
    conceptlab_core::preprocess::log1p_csr(&mut csr).unwrap();
    let sparse = Matrix::Sparse(csr);
    let from_sparse = highly_variable_genes(&sparse, HvgFlavor::Seurat, n_top).unwrap();
    check_hvg_seurat(&from_sparse, want, "seurat (CSR)");
}

#[test]
fn hvg_seurat_v3_matches_scanpy() {
    let g = golden();
    let want = &g["hvg_seurat_v3"];
    let n_top = want["n_top"].as_u64().unwrap() as usize;
    let dense = counts(&g);
    let csr = Matrix::Sparse(counts_csr(&g));
    let (rows, cols) = dense.dim();
    let dense_i64 = Matrix::Dense(
        DenseArray::new(
            vec![rows, cols],
            NumVec::I64(dense.iter().map(|&v| v as i64).collect()),
        )
        .unwrap(),
    );
    let inputs: [(&str, ExprMatrix<'_>); 3] = [
        ("f32 array", (&dense).into()),
        ("CSR int64", (&csr).into()),
        ("dense int64", (&dense_i64).into()),
    ];
    for (what, x) in inputs {
        let got = highly_variable_genes(x, HvgFlavor::SeuratV3, n_top).unwrap();
        close_all(&got.means, &f64s(&want["means"]), 1e-12, 1e-12, what);
        close_all(
            &got.dispersions,
            &f64s(&want["variances"]),
            1e-12,
            1e-10,
            what,
        );
        // Same kd-tree loess as scikit-misc: agreement to rounding.
        close_all(
            &got.normalized,
            &f64s(&want["variances_norm"]),
            1e-9,
            1e-9,
            what,
        );
        assert_eq!(got.selected, usizes(&want["selected"]), "{what} selection");
        assert_eq!(got.selected.len(), n_top);
    }
}

#[test]
fn loess_matches_scikit_misc() {
    let g = golden();
    let l = &g["loess"];
    let (x, y) = (f64s(&l["x"]), f64s(&l["y"]));
    let span = l["span"].as_f64().unwrap();
    let degree = l["degree"].as_u64().unwrap() as usize;
    let interpolated = loess_fit(&x, &y, span, degree, LoessSurface::Interpolate).unwrap();
    close_all(
        &interpolated,
        &f64s(&l["interpolate"]),
        1e-10,
        1e-10,
        "interpolate",
    );
    let direct = loess_fit(&x, &y, span, degree, LoessSurface::Direct).unwrap();
    close_all(&direct, &f64s(&l["direct"]), 1e-10, 1e-10, "direct");
}

fn check_pca(pca: &Pca, x: &Array2<f32>, want: &Value, what: &str) {
    let k = want["n_components"].as_u64().unwrap() as usize;
    assert_eq!(pca.n_components, k);
    let mean: Vec<f64> = pca.mean.iter().map(|&v| f64::from(v)).collect();
    close_all(
        &mean,
        &f64s(&want["mean"]),
        1e-5,
        1e-5,
        &format!("{what} mean"),
    );
    let comps = matrix(&want["components"]);
    for ((i, j), w) in comps.indexed_iter() {
        let got = f64::from(pca.components[(i, j)]);
        close(got, *w, 1e-4, 0.0, &format!("{what} component[{i},{j}]"));
    }
    let ev: Vec<f64> = pca.explained_variance.to_vec();
    close_all(
        &ev,
        &f64s(&want["explained_variance"]),
        0.0,
        1e-4,
        &format!("{what} var"),
    );
    let ratio: Vec<f64> = pca.explained_variance_ratio.to_vec();
    let want_ratio = f64s(&want["explained_variance_ratio"]);
    close_all(&ratio, &want_ratio, 0.0, 1e-4, &format!("{what} ratio"));
    let scores = pca.transform(x).unwrap();
    let want_scores = matrix(&want["scores"]);
    for ((i, j), w) in want_scores.indexed_iter() {
        let got = f64::from(scores[(i, j)]);
        close(got, *w, 1e-4, 1e-4, &format!("{what} score[{i},{j}]"));
    }
}

#[test]
fn pca_exact_solver_matches_sklearn() {
    let g = golden();
    let log = log_normalized(&g);
    let want = &g["pca_log"];
    let k = want["n_components"].as_u64().unwrap() as usize;
    let pca = Pca::fit(&log, k, 0).unwrap();
    assert_eq!(pca.solver, PcaSolver::Exact);
    check_pca(&pca, &log, want, "PCA (exact)");
}

/// The non-zeros of a dense array as CSR `f32`.
fn csr_of(x: &Array2<f32>) -> SparseMatrix {
    let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
    for row in x.rows() {
        for (j, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            indices.push(j as u32);
            data.push(v);
        }
        indptr.push(indices.len() as u64);
    }
    SparseMatrix::new(
        SparseFormat::Csr,
        x.dim(),
        indptr,
        indices,
        NumVec::F32(data),
    )
    .unwrap()
}

/// Sparse scores equal the dense scores of the same PCA.
fn check_sparse_scores(pca: &Pca, x: &Array2<f32>, sparse: &SparseMatrix, what: &str) {
    let dense = pca.transform(x).unwrap();
    let got = pca.transform_sparse(sparse).unwrap();
    for ((i, j), w) in dense.indexed_iter() {
        close(
            f64::from(got[(i, j)]),
            f64::from(*w),
            1e-4,
            1e-5,
            &format!("{what} sparse score[{i},{j}]"),
        );
    }
}

#[test]
fn pca_of_sparse_log_counts_matches_sklearn() {
    let g = golden();
    let log = log_normalized(&g);
    let mut csr = counts_csr(&g);
    normalize_total_csr(
        &mut csr,
        TargetSum::Value(g["target_sum"].as_f64().unwrap()),
    )
    .unwrap();
    conceptlab_core::preprocess::log1p_csr(&mut csr).unwrap();
    let want = &g["pca_log"];
    let k = want["n_components"].as_u64().unwrap() as usize;
    // Few cells and genes: the exact solver, on the centred Gram matrix when
    // genes are fewer than cells and on a small dense copy otherwise.
    let pca = Pca::fit_sparse(&csr, k, 0, &PcaOptions::default()).unwrap();
    assert_eq!(pca.solver, PcaSolver::Exact);
    check_pca(&pca, &log, want, "PCA (exact, CSR)");
    check_sparse_scores(&pca, &log, &csr, "PCA (exact, CSR)");
    // The same matrix stored CSC (the CSR of its transpose, relabelled).
    let t = csr_of(&log.t().as_standard_layout().into_owned());
    let csc = SparseMatrix::new(SparseFormat::Csc, log.dim(), t.indptr, t.indices, t.data).unwrap();
    let again = Pca::fit_sparse(&csc, k, 0, &PcaOptions::default()).unwrap();
    assert_eq!(again.components, pca.components);
    check_sparse_scores(&pca, &log, &csc, "PCA (exact, CSC)");
}

#[test]
fn pca_randomized_solver_with_implicit_centring_matches_sklearn() {
    let g = golden();
    let want = &g["pca_hashed"];
    let field = |k: &str| want[k].as_f64().unwrap();
    let x = hashed_matrix(
        field("rows") as usize,
        field("cols") as usize,
        field("rank") as usize,
        field("decay"),
        field("noise"),
    );
    let csr = csr_of(&x);
    let k = want["n_components"].as_u64().unwrap() as usize;
    let pca = Pca::fit_sparse(&csr, k, 7, &PcaOptions::default()).unwrap();
    assert!(
        matches!(pca.solver, PcaSolver::Randomized { iterations, .. } if iterations >= 7),
        "{:?}",
        pca.solver
    );
    check_pca(&pca, &x, want, "PCA (randomized, CSR)");
    check_sparse_scores(&pca, &x, &csr, "PCA (randomized, CSR)");
    let dense = Pca::fit(&x, k, 7).unwrap();
    let diff = (&dense.components - &pca.components).mapv(f32::abs);
    assert!(diff.iter().all(|&d| d < 1e-4), "sparse vs dense components");
}

/// splitmix64 of (salt, row, col) → uniform [0, 1), as the Python script.
fn splitmix_uniform(rows: usize, cols: usize, salt: u64) -> Array2<f64> {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        let idx = (i as u64).wrapping_mul(cols as u64).wrapping_add(j as u64);
        let mut z = idx
            .wrapping_add(salt.wrapping_mul(GOLDEN))
            .wrapping_add(GOLDEN);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn hashed_matrix(rows: usize, cols: usize, rank: usize, decay: f64, noise: f64) -> Array2<f32> {
    let a = splitmix_uniform(rows, rank, 1) - 0.5;
    let b = splitmix_uniform(rank, cols, 2) - 0.5;
    let e = splitmix_uniform(rows, cols, 3) - 0.5;
    let mut x = Array2::<f64>::zeros((rows, cols));
    for r in 0..rank {
        let s = 10.0 * decay.powi(r as i32);
        for i in 0..rows {
            for j in 0..cols {
                x[(i, j)] += s * a[(i, r)] * b[(r, j)];
            }
        }
    }
    x.scaled_add(noise, &e);
    x.mapv(|v| v as f32)
}

#[test]
fn pca_randomized_solver_matches_sklearn() {
    let g = golden();
    let want = &g["pca_hashed"];
    let field = |k: &str| want[k].as_f64().unwrap();
    let x = hashed_matrix(
        field("rows") as usize,
        field("cols") as usize,
        field("rank") as usize,
        field("decay"),
        field("noise"),
    );
    let k = want["n_components"].as_u64().unwrap() as usize;
    let pca = Pca::fit(&x, k, 7).unwrap();
    assert!(
        matches!(pca.solver, PcaSolver::Randomized { iterations, .. } if iterations >= 7),
        "{:?}",
        pca.solver
    );
    check_pca(&pca, &x, want, "PCA (randomized)");
    // Another seed converges to the same components.
    let other = Pca::fit(&x, k, 8).unwrap();
    let diff = (&other.components - &pca.components).mapv(f32::abs);
    assert!(diff.iter().all(|&d| d < 1e-4));
}

#[test]
fn concepts_match_the_pandas_encoding() {
    let g = golden();
    let o = &g["obs"];
    let mut obs = Frame::with_index(strings(&o["index"]));
    for name in ["condition", "cell_type"] {
        let codes: Vec<i32> = o[name]["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap() as i32)
            .collect();
        let cats = Values::Strings(strings(&o[name]["categories"]));
        let column = Column::Categorical(Categorical::new(codes, cats, false).unwrap());
        obs.insert(name, column).unwrap();
    }
    let doublet: Vec<bool> = o["is_doublet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    obs.insert("is_doublet", Column::Numeric(NumVec::Bool(doublet)))
        .unwrap();
    obs.insert("dose", Column::Numeric(NumVec::F64(f64s(&o["dose"]))))
        .unwrap();

    let want = &g["concepts"];
    let concepts = curate_concepts(&obs, &strings(&want["hard"]), &strings(&want["soft"])).unwrap();
    assert_eq!(concepts.names, strings(&want["names"]));
    assert_eq!(concepts.values.mapv(f64::from), matrix(&want["values"]));
    assert_eq!(concepts.observed.mapv(f64::from), matrix(&want["observed"]));
    assert_eq!(concepts.n_hard(), concepts.len() - 1);
}
