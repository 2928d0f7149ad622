//! conceptlab_core::preprocess::score_gene_sets against the reference formula
//! (numpy) and scanpy's score_genes (scripts/python/gene_set_goldens.py). CI
//! regenerates the fixture and points CONCEPTLAB_GOLDEN_GENE_SETS at it;
//! otherwise the committed copy is used.

use conceptlab_core::preprocess::{GeneSets, SetScore, score_gene_sets, to_csr_f32};
use conceptlab_core::{DenseArray, Matrix, NumVec};
use serde_json::Value;

fn golden() -> Value {
    let path = std::env::var("CONCEPTLAB_GOLDEN_GENE_SETS").unwrap_or_else(|_| {
        format!(
            "{}/tests/fixtures/golden_gene_sets.json",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The fixture's matrix as float32, dense and CSR.
fn matrices(g: &Value) -> Vec<Matrix> {
    let rows: Vec<Vec<f64>> = g["x"].as_array().unwrap().iter().map(f64s).collect();
    let (r, c) = (rows.len(), rows[0].len());
    let values: Vec<f32> = rows.concat().iter().map(|&v| v as f32).collect();
    let dense = Matrix::Dense(DenseArray::new(vec![r, c], NumVec::F32(values)).unwrap());
    let Matrix::Dense(d) = &dense else {
        unreachable!()
    };
    // A CSR copy: the same values without the zeros.
    let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
    let v = d.data.to_f32();
    for i in 0..r {
        for j in 0..c {
            if v[i * c + j] != 0.0 {
                indices.push(j as u32);
                data.push(v[i * c + j]);
            }
        }
        indptr.push(indices.len() as u64);
    }
    let csr = conceptlab_core::SparseMatrix::new(
        conceptlab_core::SparseFormat::Csr,
        (r, c),
        indptr,
        indices,
        NumVec::F32(data),
    )
    .unwrap();
    vec![dense, Matrix::Sparse(to_csr_f32(&csr).unwrap())]
}

fn sets(g: &Value) -> GeneSets {
    let mut s = GeneSets::new();
    for (name, genes) in g["sets"].as_object().unwrap() {
        s.create(name);
        for gene in strings(genes) {
            s.add(name, &gene);
        }
    }
    s
}

fn check(g: &Value, method: SetScore, want: &Value, tol: f64, what: &str) {
    let names = strings(&g["var_names"]);
    let min_genes = g["min_genes"].as_u64().unwrap() as usize;
    for x in matrices(g) {
        let got = score_gene_sets(&x, &names, &sets(g), min_genes, method).unwrap();
        assert_eq!(got.names, strings(&g["scored"]), "{what}: scored sets");
        let skipped: Vec<String> = got.skipped.iter().map(|s| s.name.clone()).collect();
        assert_eq!(skipped, strings(&g["skipped"]), "{what}: skipped sets");
        for s in &got.skipped {
            assert_eq!(s.shared as u64, g["shared"][&s.name].as_u64().unwrap());
        }
        for (p, name) in got.names.iter().enumerate() {
            assert_eq!(got.shared[p] as u64, g["shared"][name].as_u64().unwrap());
            let want = f64s(&want[name]);
            assert_eq!(want.len(), got.scores.nrows());
            for (n, w) in want.iter().enumerate() {
                let v = got.scores[(n, p)];
                assert!(
                    (v - w).abs() <= tol * (1.0 + w.abs()),
                    "{what} {name} cell {n}: got {v}, want {w}"
                );
            }
        }
    }
}

#[test]
fn reference_score_matches_the_formula() {
    let g = golden();
    let plain = SetScore::Reference {
        unit_interval: false,
        temp: 1.0,
    };
    check(&g, plain, &g["reference"], 1e-10, "reference");
    let unit = SetScore::Reference {
        unit_interval: true,
        temp: g["temp"].as_f64().unwrap(),
    };
    check(
        &g,
        unit,
        &g["reference_unit_interval"],
        1e-10,
        "unit interval",
    );
}

#[test]
fn scanpy_score_matches_score_genes() {
    let g = golden();
    let ctrl_size = g["ctrl_size"].as_u64().unwrap() as usize;
    for (bins, want) in g["scanpy"].as_object().unwrap() {
        // Every bin is within ctrl_size, so no control gene is sampled: the
        // seed cannot matter.
        assert!(g["max_bin_size"][bins].as_u64().unwrap() as usize <= ctrl_size);
        for seed in [0, 17] {
            let method = SetScore::Scanpy {
                ctrl_size,
                n_bins: bins.parse().unwrap(),
                seed,
            };
            // Gene means are float64 sums of float32 values in both.
            check(&g, method, want, 1e-9, &format!("scanpy n_bins={bins}"));
        }
    }
}
