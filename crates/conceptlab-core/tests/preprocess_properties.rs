//! Properties of conceptlab_core::preprocess that hold for any input:
//! round trips, invariants and error messages.

use conceptlab_core::preprocess::{
    ConceptEncoding, HvgFlavor, Pca, Standardizer, TargetSum, check_finite, curate_concepts,
    encode_with, highly_variable_genes, log1p, looks_like_counts, normalize_total,
    normalize_total_csr, select_rows, stratified_split, to_csr_f32, to_dense_f32,
};
use conceptlab_core::random::{gamma, open_uniform, poisson_quantile, standard_normal, stream_rng};
use conceptlab_core::{
    Categorical, Column, CoreError, DenseArray, Frame, Matrix, NumVec, SparseFormat, SparseMatrix,
    Values,
};
use ndarray::{Array2, Axis};

/// Negative-binomial-like counts with `types` cell-type programmes.
fn synthetic_counts(cells: usize, genes: usize, types: usize, seed: u64) -> Array2<f32> {
    let mut rng = stream_rng(seed, 0);
    let base: Vec<f64> = (0..genes)
        .map(|_| (standard_normal(&mut rng) * 1.3 - 1.0).exp())
        .collect();
    let programmes: Vec<Vec<f64>> = (0..types)
        .map(|_| {
            (0..genes)
                .map(|_| (standard_normal(&mut rng) * 0.7).exp())
                .collect()
        })
        .collect();
    let mut x = Array2::<f32>::zeros((cells, genes));
    for (i, mut row) in x.rows_mut().into_iter().enumerate() {
        let mut r = stream_rng(seed, 1 + i as u64);
        let t = i % types;
        let library = (standard_normal(&mut r) * 0.3).exp() * 0.5;
        for (j, v) in row.iter_mut().enumerate() {
            let mean = base[j] * programmes[t][j] * library;
            let rate = gamma(&mut r, 2.0) * mean / 2.0;
            *v = poisson_quantile(rate, open_uniform(&mut r)) as f32;
        }
    }
    x
}

fn frame() -> Frame {
    let mut obs = Frame::with_index((0..6).map(|i| format!("c{i}")).collect());
    let cell_type = Categorical::new(
        vec![0, 1, 2, -1, 1, 0],
        Values::Strings(vec!["T".into(), "B".into(), "NK".into()]),
        false,
    )
    .unwrap();
    obs.insert("cell_type", Column::Categorical(cell_type))
        .unwrap();
    let stim = ["ctrl", "stim", "stim", "ctrl", "ctrl", "stim"];
    obs.insert(
        "stim",
        Column::Strings(stim.iter().map(|s| s.to_string()).collect()),
    )
    .unwrap();
    obs.insert(
        "treated",
        Column::Nullable {
            values: Values::Numbers(NumVec::Bool(vec![true, false, true, true, false, false])),
            mask: vec![false, false, false, true, false, false],
        },
    )
    .unwrap();
    obs.insert("flag", Column::Numeric(NumVec::I64(vec![0, 1, 1, 0, 0, 1])))
        .unwrap();
    obs.insert(
        "dose",
        Column::Numeric(NumVec::F64(vec![0.0, 1.0, 3.0, f64::NAN, 2.0, 1.0])),
    )
    .unwrap();
    obs.insert(
        "count",
        Column::Numeric(NumVec::I32(vec![0, 2, 1, 0, 1, 0])),
    )
    .unwrap();
    obs.insert("constant", Column::Numeric(NumVec::F64(vec![5.0; 6])))
        .unwrap();
    obs
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn concept_curation_names_values_and_masks() {
    let obs = frame();
    let c = curate_concepts(
        &obs,
        &names(&["cell_type", "stim", "treated", "flag"]),
        &names(&["dose"]),
    )
    .unwrap();
    assert_eq!(
        c.names,
        names(&[
            "cell_type=T",
            "cell_type=B",
            "cell_type=NK",
            "stim=stim",
            "treated",
            "flag",
            "dose"
        ])
    );
    let values = ndarray::arr2(&[
        [1., 0., 0., 0., 1., 0., 0.],
        [0., 1., 0., 1., 0., 1., 1. / 3.],
        [0., 0., 1., 1., 1., 1., 1.],
        [0., 0., 0., 0., 0., 0., 0.],
        [0., 1., 0., 0., 0., 0., 2. / 3.],
        [1., 0., 0., 1., 0., 1., 1. / 3.],
    ]);
    let observed = ndarray::arr2(&[
        [1., 1., 1., 1., 1., 1., 1.],
        [1., 1., 1., 1., 1., 1., 1.],
        [1., 1., 1., 1., 1., 1., 1.],
        [0., 0., 0., 1., 0., 1., 0.],
        [1., 1., 1., 1., 1., 1., 1.],
        [1., 1., 1., 1., 1., 1., 1.],
    ]);
    assert!((&c.values - &values).iter().all(|d| d.abs() < 1e-7));
    assert_eq!(c.observed, observed);
    assert_eq!(c.n_hard(), 6);
    assert_eq!(c.groups.len(), 5);
    assert_eq!(c.groups[3].columns, 5..6);
    assert_eq!(
        c.group("stim").unwrap().encoding,
        ConceptEncoding::Binary {
            category: "stim".into(),
            other: "ctrl".into()
        }
    );
    assert_eq!(
        c.group("dose").unwrap().encoding,
        ConceptEncoding::Soft { min: 0.0, max: 3.0 }
    );

    // Stored groups re-encode the same frame identically, and survive JSON.
    let json = serde_json::to_string(&c.groups).unwrap();
    let groups: Vec<conceptlab_core::preprocess::ConceptGroup> =
        serde_json::from_str(&json).unwrap();
    assert_eq!(encode_with(&groups, &obs).unwrap(), c);
}

#[test]
fn concept_curation_errors_name_the_problem() {
    let obs = frame();
    let err = |hard: &[&str], soft: &[&str]| {
        curate_concepts(&obs, &names(hard), &names(soft))
            .unwrap_err()
            .to_string()
    };
    let e = err(&["missing"], &[]);
    assert!(
        e.contains("`missing`") && e.contains("cell_type") && e.contains("dose"),
        "{e}"
    );
    let e = err(&["dose"], &["dose"]);
    assert!(e.contains("`dose`") && e.contains("both"), "{e}");
    let e = err(&["count"], &[]);
    assert!(e.contains("`count`") && e.contains("found 2"), "{e}");
    let e = err(&[], &["constant"]);
    assert!(e.contains("`constant`") && e.contains("distinct"), "{e}");
    let e = err(&[], &["cell_type"]);
    assert!(e.contains("`cell_type`") && e.contains("numeric"), "{e}");

    // A new data set with a category the encoding never saw.
    let c = curate_concepts(&obs, &names(&["cell_type"]), &[]).unwrap();
    let mut other = frame();
    other
        .insert(
            "cell_type",
            Column::Categorical(Categorical::from_labels(&["T", "B", "DC", "T", "T", "B"])),
        )
        .unwrap();
    let e = encode_with(&c.groups, &other).unwrap_err();
    assert!(
        matches!(&e, CoreError::UnknownCategory { column, value, .. } if column == "cell_type" && value == "DC"),
        "{e}"
    );
    other.columns.shift_remove("cell_type");
    let e = encode_with(&c.groups, &other).unwrap_err().to_string();
    assert!(e.contains("`cell_type`"), "{e}");
}

#[test]
fn encode_value_and_select_rows() {
    let obs = frame();
    let c = curate_concepts(
        &obs,
        &names(&["cell_type", "stim", "treated", "flag"]),
        &names(&["dose"]),
    )
    .unwrap();
    let group = |name: &str| c.group(name).unwrap();
    assert_eq!(
        group("cell_type").encode_value("NK").unwrap(),
        vec![0., 0., 1.]
    );
    assert_eq!(group("stim").encode_value("stim").unwrap(), vec![1.]);
    assert_eq!(group("stim").encode_value("ctrl").unwrap(), vec![0.]);
    assert_eq!(group("treated").encode_value("False").unwrap(), vec![0.]);
    assert_eq!(group("flag").encode_value("1").unwrap(), vec![1.]);
    assert_eq!(group("dose").encode_value("1.5").unwrap(), vec![0.5]);
    // Outside the training range: unclipped.
    assert_eq!(group("dose").encode_value("6").unwrap(), vec![2.0]);

    let e = group("cell_type")
        .encode_value("DC")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`DC`") && e.contains("T, B, NK"), "{e}");
    let e = group("stim")
        .encode_value("treated")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ctrl, stim"), "{e}");
    assert!(group("treated").encode_value("maybe").is_err());
    assert!(group("dose").encode_value("high").is_err());
    // Finite as f64 but not once scaled to f32 (here by 1/3): refused, for either sign
    // (it used to become ±inf and edit both to the same cells).
    for v in ["1e40", "-1e40", "inf", "NaN"] {
        let e = group("dose").encode_value(v).unwrap_err().to_string();
        assert!(e.contains("finite"), "{v}: {e}");
    }

    let mask = |col: &str, v: &str| select_rows(&obs, col, v).unwrap();
    assert_eq!(
        mask("cell_type", "B"),
        vec![false, true, false, false, true, false]
    );
    assert_eq!(
        mask("stim", "ctrl"),
        vec![true, false, false, true, true, false]
    );
    assert_eq!(
        mask("treated", "true"),
        vec![true, false, true, false, false, false]
    );
    assert_eq!(
        mask("dose", "1"),
        vec![false, true, false, false, false, true]
    );
    let e = select_rows(&obs, "cell_type", "DC")
        .unwrap_err()
        .to_string();
    assert!(e.contains("T, B, NK"), "{e}");
    assert!(select_rows(&obs, "nope", "x").is_err());
    assert!(select_rows(&obs, "dose", "x").is_err());
}

#[test]
fn normalize_total_reaches_the_target() {
    let mut x = synthetic_counts(50, 80, 3, 1);
    x.row_mut(7).fill(0.0);
    let mut y = x.clone();
    assert_eq!(normalize_total(&mut x, TargetSum::Value(1e4)).unwrap(), 1e4);
    for (i, row) in x.rows().into_iter().enumerate() {
        let total: f64 = row.iter().map(|&v| f64::from(v)).sum();
        if i == 7 {
            assert_eq!(total, 0.0);
        } else {
            assert!((total - 1e4).abs() < 1e-2, "row {i}: {total}");
        }
    }
    let median = normalize_total(&mut y, TargetSum::Median).unwrap();
    for row in y.rows() {
        let total: f64 = row.iter().map(|&v| f64::from(v)).sum();
        assert!(total == 0.0 || (total - median).abs() < 1e-3 * median);
    }
    assert!(normalize_total(&mut y, TargetSum::Value(-1.0)).is_err());
    let mut empty = Array2::<f32>::zeros((3, 4));
    assert!(normalize_total(&mut empty, TargetSum::Median).is_err());
}

#[test]
fn matrix_conversions_and_checks() {
    let dense = ndarray::arr2(&[[1.0f32, 0.0, 2.0], [0.0, 0.0, 3.0]]);
    let csr = SparseMatrix::new(
        SparseFormat::Csr,
        (2, 3),
        vec![0, 2, 3],
        vec![0, 2, 2],
        NumVec::U16(vec![1, 2, 3]),
    )
    .unwrap();
    let as_csc = Matrix::Sparse(csr.clone()).transpose().to_dense();
    let csc = Matrix::Dense(as_csc);
    assert_eq!(to_dense_f32(&Matrix::Sparse(csr.clone())).unwrap(), dense);
    assert_eq!(to_dense_f32(&csc.transpose()).unwrap(), dense);
    let csc_sparse = match Matrix::Sparse(csr.clone()).transpose() {
        Matrix::Sparse(s) => s,
        Matrix::Dense(_) => unreachable!(),
    };
    // The transpose's CSC is the original's CSR as CSC of the transpose;
    // converting it to CSR gives the transpose in CSR.
    let back = to_csr_f32(&csc_sparse).unwrap();
    assert_eq!(
        to_dense_f32(&Matrix::Sparse(back)).unwrap(),
        dense.t().to_owned()
    );
    assert!(looks_like_counts(&Matrix::Sparse(csr.clone())));
    let frac = Matrix::Dense(DenseArray::new(vec![1, 2], NumVec::F32(vec![1.0, 0.5])).unwrap());
    assert!(!looks_like_counts(&frac));
    let neg = Matrix::Dense(DenseArray::new(vec![1, 2], NumVec::I32(vec![1, -1])).unwrap());
    assert!(!looks_like_counts(&neg));

    let bad = SparseMatrix::new(
        SparseFormat::Csr,
        (3, 4),
        vec![0, 1, 1, 3],
        vec![2, 0, 3],
        NumVec::F64(vec![1.0, 2.0, f64::NAN]),
    )
    .unwrap();
    let e = check_finite(&Matrix::Sparse(bad.clone()), "X").unwrap_err();
    assert!(
        matches!(&e, CoreError::NonFinite { what, row: 2, col: 3, value } if what == "X" && value.is_nan()),
        "{e}"
    );
    assert!(e.to_string().contains("row 2, column 3"), "{e}");
    assert!(check_finite(&Matrix::Sparse(csr), "X").is_ok());
    let mut sparse = bad;
    assert!(normalize_total_csr(&mut sparse, TargetSum::Value(10.0)).is_ok());
}

#[test]
fn pca_round_trip_with_all_components() {
    let x = synthetic_counts(40, 12, 3, 2);
    let mut x = x;
    normalize_total(&mut x, TargetSum::Value(100.0)).unwrap();
    log1p(&mut x);
    let pca = Pca::fit(&x, 50, 0).unwrap();
    // Clamped to genes − 1.
    assert_eq!(pca.n_components, 11);
    assert_eq!(pca.requested_components, 50);
    let gram = pca.components.dot(&pca.components.t());
    for ((i, j), v) in gram.indexed_iter() {
        let want = if i == j { 1.0 } else { 0.0 };
        assert!((v - want).abs() < 1e-5, "WWᵀ[{i},{j}] = {v}");
    }
    let back = pca.inverse_transform(&pca.transform(&x).unwrap()).unwrap();
    // The round trip is the projection X̂ = μ + (X − μ)WᵀW, and what it
    // loses is exactly the unexplained share of the variance.
    let centred = &x - &pca.mean.view().insert_axis(Axis(0));
    let projected = centred.dot(&pca.components.t()).dot(&pca.components)
        + pca.mean.view().insert_axis(Axis(0));
    assert!((&back - &projected).iter().all(|d| d.abs() < 1e-4));
    let residual: f64 = (&back - &x).iter().map(|d| f64::from(*d).powi(2)).sum();
    let total: f64 = centred.iter().map(|d| f64::from(*d).powi(2)).sum();
    let explained: f64 = pca.explained_variance_ratio.sum();
    assert!((residual / total - (1.0 - explained)).abs() < 1e-4);

    // Rank-deficient data (more components than the data's rank) still gives
    // orthonormal components; and a JSON round trip keeps the transform.
    let low = Array2::from_shape_fn((30, 8), |(i, j)| ((i % 3) * (j + 1)) as f32);
    let p = Pca::fit(&low, 6, 1).unwrap();
    let gram = p.components.dot(&p.components.t());
    for ((i, j), v) in gram.indexed_iter() {
        let want = if i == j { 1.0 } else { 0.0 };
        assert!((v - want).abs() < 1e-5, "rank-deficient WWᵀ[{i},{j}] = {v}");
    }
    let json = serde_json::to_string(&p).unwrap();
    let q: Pca = serde_json::from_str(&json).unwrap();
    assert_eq!(q.n_components, p.n_components);
    assert_eq!(q.components, p.components);
    assert_eq!(q.mean, p.mean);
    let ev = &q.explained_variance - &p.explained_variance;
    assert!(
        ev.iter()
            .all(|d| d.abs() <= 1e-12 * p.explained_variance[0])
    );
    assert!(p.transform(&Array2::<f32>::zeros((2, 7))).is_err());
}

#[test]
fn pca_reconstructs_centred_data_with_g_minus_one_components() {
    // Fewer genes than cells and a centred rank of G − 1: dropping one gene's
    // worth of variance is exact when that direction carries none.
    let mut rng = stream_rng(5, 0);
    let (n, g) = (25, 6);
    let mut x = Array2::<f32>::zeros((n, g));
    for mut row in x.rows_mut() {
        let mut sum = 0.0;
        for v in row.iter_mut().take(g - 1) {
            *v = standard_normal(&mut rng) as f32;
            sum += *v;
        }
        row[g - 1] = 3.0 - sum; // rows sum to 3: centred data has rank G − 1
    }
    let pca = Pca::fit(&x, g - 1, 0).unwrap();
    let back = pca.inverse_transform(&pca.transform(&x).unwrap()).unwrap();
    assert!((&back - &x).iter().all(|d| d.abs() < 1e-4));
}

#[test]
fn pca_does_not_depend_on_the_thread_count() {
    // Larger than the exact solver's limit, so the randomized one runs.
    let mut rng = stream_rng(6, 0);
    let x = Array2::from_shape_simple_fn((600, 530), || standard_normal(&mut rng) as f32);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| Pca::fit(&x, 5, 3).unwrap());
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| Pca::fit(&x, 5, 3).unwrap());
    assert!(matches!(
        one.solver,
        conceptlab_core::preprocess::PcaSolver::Randomized { .. }
    ));
    assert_eq!(one, many);
}

#[test]
fn standardizer_matches_population_statistics() {
    let x = ndarray::arr2(&[[1.0f32, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]]);
    let s = Standardizer::fit(&x).unwrap();
    assert_eq!(s.mean.to_vec(), vec![3.0, 5.0, 5.0]);
    assert!((s.scale[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(s.scale[1], 1.0);
    let z = s.transform(&x).unwrap();
    assert!(z.column(1).iter().all(|&v| v == 0.0));
    let back = s.inverse_transform(&z).unwrap();
    assert!((&back - &x).iter().all(|d| d.abs() < 1e-6));
    let json = serde_json::to_string(&s).unwrap();
    let t = serde_json::from_str::<Standardizer>(&json).unwrap();
    assert!((&t.scale - &s.scale).iter().all(|d| d.abs() < 1e-12));
}

#[test]
fn stratified_split_shares_validation_in_proportion() {
    let strata: Vec<String> = (0..203)
        .map(|i| match i {
            0 => "singleton".to_string(),
            1 | 2 => "pair".to_string(),
            i => format!("p{}", i % 4),
        })
        .collect();
    let (train, val) = stratified_split(&strata, 0.2, 11);
    assert_eq!(train.len() + val.len(), strata.len());
    let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..strata.len()).collect::<Vec<_>>());
    assert!(train.contains(&0));
    assert_eq!(val.iter().filter(|&&i| i == 1 || i == 2).count(), 1);
    for p in 0..4 {
        let name = format!("p{p}");
        let n = strata.iter().filter(|s| **s == name).count();
        let v = val.iter().filter(|&&i| strata[i] == name).count();
        assert_eq!(v, (0.2 * n as f64).round() as usize, "stratum {name}");
    }
    assert_eq!(
        stratified_split(&strata, 0.2, 11),
        (train.clone(), val.clone())
    );
    assert_ne!(stratified_split(&strata, 0.2, 12).1, val);
    let (t0, v0) = stratified_split(&strata, 0.0, 11);
    assert!(v0.is_empty() && t0.len() == strata.len());
}

#[test]
fn stratified_split_gives_the_fraction_asked_for() {
    // Many small patterns (the synthetic benchmark's concept combinations)
    // and all-singleton strata: 10 % asked, 10 % given.
    for strata in [
        (0..600).map(|i| i / 3).collect::<Vec<usize>>(),
        (0..600).map(|i| i / 2).collect(),
        (0..600).collect(),
        (0..600).map(|i| (i * i) % 97).collect(),
    ] {
        for fraction in [0.05, 0.1, 0.25] {
            let (train, val) = stratified_split(&strata, fraction, 3);
            assert_eq!(
                val.len(),
                (fraction * strata.len() as f64).round() as usize,
                "fraction {fraction}"
            );
            assert_eq!(train.len() + val.len(), strata.len());
        }
    }
    // No stratum loses its last training cell while another can give one.
    let strata: Vec<usize> = (0..100).map(|i| if i < 90 { 0 } else { i }).collect();
    let (train, val) = stratified_split(&strata, 0.1, 1);
    assert_eq!(val.len(), 10);
    assert!((90..100).all(|i| train.contains(&i)), "{val:?}");
}

#[test]
fn hvg_rejects_bad_input() {
    let x = synthetic_counts(30, 40, 2, 3);
    let mut bad = x.clone();
    bad[(3, 5)] = f32::NAN;
    let e = highly_variable_genes(&bad, HvgFlavor::Seurat, 5).unwrap_err();
    assert!(e.to_string().contains("row 3, column 5"), "{e}");
    assert!(highly_variable_genes(&x, HvgFlavor::Seurat, 0).is_err());
    let r = highly_variable_genes(&x, HvgFlavor::SeuratV3, 1000).unwrap();
    assert_eq!(r.selected.len(), 40);
    assert_eq!(r.mask().iter().filter(|&&m| m).count(), 40);
}

/// PCA at the size of the synthetic benchmark: 10,000 cells × 5,000 genes,
/// 128 components. `cargo test --release -p conceptlab-core --test
/// preprocess_properties -- --ignored --nocapture pca_benchmark`.
#[test]
#[ignore]
fn pca_benchmark() {
    let t = std::time::Instant::now();
    let mut x = synthetic_counts(10_000, 5_000, 8, 9);
    normalize_total(&mut x, TargetSum::Value(1214.0)).unwrap();
    log1p(&mut x);
    eprintln!("data: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let pca = Pca::fit(&x, 128, 0).unwrap();
    eprintln!(
        "PCA 10000 x 5000 x 128: {:?} ({:?}, {} threads)",
        t.elapsed(),
        pca.solver,
        rayon::current_num_threads()
    );
    let t = std::time::Instant::now();
    let z = pca.transform(&x).unwrap();
    eprintln!("transform: {:?}", t.elapsed());
    assert_eq!(z.dim(), (10_000, 128));
}
