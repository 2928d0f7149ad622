//! A data set exercising every element kind the writer supports, built from a
//! tiny deterministic generator so tests need no random-number crate.

#![allow(dead_code)]

use conceptlab_core::{
    Categorical, CellData, Column, DenseArray, Frame, Matrix, NumVec, RawData, SparseFormat,
    SparseMatrix, UnsValue, Values,
};
use indexmap::IndexMap;

/// Test-data randomness from the workspace's seeded streams.
pub struct Rng(conceptlab_core::random::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(conceptlab_core::random::stream_rng(seed, 0))
    }
    pub fn uniform(&mut self) -> f64 {
        conceptlab_core::random::open_uniform(&mut self.0)
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }
}

/// A random CSR matrix with roughly `density` non-zeros, values in whole quarters.
pub fn random_csr(rng: &mut Rng, rows: usize, cols: usize, density: f64) -> SparseMatrix {
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let mut data = Vec::new();
    for _ in 0..rows {
        for c in 0..cols {
            if rng.uniform() < density {
                indices.push(c as u32);
                data.push((1 + rng.below(40)) as f32 * 0.25);
            }
        }
        indptr.push(indices.len() as u64);
    }
    SparseMatrix::new(
        SparseFormat::Csr,
        (rows, cols),
        indptr,
        indices,
        NumVec::F32(data),
    )
    .unwrap()
}

/// The CSC form of a CSR matrix (same values).
pub fn csr_to_csc(m: &SparseMatrix) -> SparseMatrix {
    let (rows, cols) = m.shape;
    let mut per_col: Vec<Vec<(u32, usize)>> = vec![Vec::new(); cols];
    for r in 0..rows {
        for k in m.indptr[r] as usize..m.indptr[r + 1] as usize {
            per_col[m.indices[k] as usize].push((r as u32, k));
        }
    }
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let mut take = Vec::new();
    for col in per_col {
        for (r, k) in col {
            indices.push(r);
            take.push(k);
        }
        indptr.push(indices.len() as u64);
    }
    SparseMatrix::new(
        SparseFormat::Csc,
        m.shape,
        indptr,
        indices,
        m.data.gather(&take).unwrap(),
    )
    .unwrap()
}

pub fn dense(rng: &mut Rng, rows: usize, cols: usize) -> DenseArray {
    DenseArray::new(
        vec![rows, cols],
        NumVec::F64((0..rows * cols).map(|_| rng.uniform() - 0.5).collect()),
    )
    .unwrap()
}

fn scalar(v: NumVec) -> UnsValue {
    UnsValue::Array(DenseArray::scalar(v).unwrap())
}

/// Every element kind at once: sparse X, dense and sparse layers, all column
/// kinds, obsm/varm/obsp/varp, a nested uns, and raw.
pub fn rich_cell_data(n_obs: usize, n_vars: usize, seed: u64) -> CellData {
    let mut rng = Rng::new(seed);
    let x = random_csr(&mut rng, n_obs, n_vars, 0.2);
    let obs_names = (0..n_obs).map(|i| format!("zelle_ü_{i}")).collect();
    let var_names = (0..n_vars).map(|i| format!("gene{i}")).collect();
    let mut data = CellData::new(Matrix::Sparse(x.clone()), obs_names, var_names).unwrap();
    data.obs.index_name = "cell_id".into();

    let types = ["B", "NK", "T"];
    let labels: Vec<&str> = (0..n_obs).map(|_| types[rng.below(3)]).collect();
    let obs = &mut data.obs;
    obs.insert(
        "cell_type",
        Column::Categorical(Categorical::from_labels(&labels)),
    )
    .unwrap();
    let stage_codes = (0..n_obs)
        .map(|i| if i % 7 == 0 { -1 } else { (i % 3) as i32 })
        .collect();
    let stages = Values::Strings(vec!["early".into(), "mid".into(), "late".into()]);
    obs.insert(
        "stage",
        Column::Categorical(Categorical::new(stage_codes, stages, true).unwrap()),
    )
    .unwrap();
    let batch_codes = (0..n_obs).map(|i| (i % 2) as i32).collect();
    let batches = Values::Numbers(NumVec::I64(vec![10, 20]));
    obs.insert(
        "batch",
        Column::Categorical(Categorical::new(batch_codes, batches, false).unwrap()),
    )
    .unwrap();
    obs.insert(
        "n_counts",
        Column::Numeric(NumVec::F64((0..n_obs).map(|i| i as f64 * 1.5).collect())),
    )
    .unwrap();
    obs.insert(
        "score",
        Column::Numeric(NumVec::F32((0..n_obs).map(|i| i as f32 / 3.0).collect())),
    )
    .unwrap();
    obs.insert(
        "n_genes",
        Column::Numeric(NumVec::I32((0..n_obs as i32).collect())),
    )
    .unwrap();
    obs.insert(
        "flag",
        Column::Numeric(NumVec::Bool((0..n_obs).map(|i| i % 3 == 0).collect())),
    )
    .unwrap();
    obs.insert(
        "barcode",
        Column::Strings((0..n_obs).map(|i| format!("AC{i:04}")).collect()),
    )
    .unwrap();
    let mask: Vec<bool> = (0..n_obs).map(|i| i % 5 == 1).collect();
    obs.insert(
        "dose",
        Column::Nullable {
            values: Values::Numbers(NumVec::I64((0..n_obs as i64).collect())),
            mask: mask.clone(),
        },
    )
    .unwrap();
    obs.insert(
        "qc_pass",
        Column::Nullable {
            values: Values::Numbers(NumVec::Bool(vec![true; n_obs])),
            mask: mask.clone(),
        },
    )
    .unwrap();
    obs.insert(
        "donor",
        Column::Nullable {
            values: Values::Strings((0..n_obs).map(|i| format!("d{}", i % 4)).collect()),
            mask,
        },
    )
    .unwrap();
    data.var
        .insert(
            "highly_variable",
            Column::Numeric(NumVec::Bool((0..n_vars).map(|i| i % 2 == 0).collect())),
        )
        .unwrap();

    let counts = x.to_dense();
    let counts_i32 = NumVec::I32(
        counts
            .data
            .to_f64()
            .into_iter()
            .map(|v| (v * 4.0) as i32)
            .collect(),
    );
    data.layers.insert(
        "counts".into(),
        Matrix::Dense(DenseArray::new(counts.shape.clone(), counts_i32).unwrap()),
    );
    data.layers
        .insert("csc".into(), Matrix::Sparse(csr_to_csc(&x)));
    data.obsm
        .insert("X_pca".into(), Matrix::Dense(dense(&mut rng, n_obs, 4)));
    data.varm
        .insert("PCs".into(), Matrix::Dense(dense(&mut rng, n_vars, 4)));
    data.obsp.insert(
        "distances".into(),
        Matrix::Sparse(random_csr(&mut rng, n_obs, n_obs, 0.05)),
    );
    data.varp.insert(
        "corr".into(),
        Matrix::Dense(dense(&mut rng, n_vars, n_vars)),
    );

    let mut params = IndexMap::new();
    params.insert("lr".into(), scalar(NumVec::F64(vec![1e-3])));
    params.insert("epochs".into(), scalar(NumVec::I64(vec![42])));
    params.insert("flag".into(), scalar(NumVec::Bool(vec![true])));
    params.insert("name".into(), UnsValue::String("scCBGM ü".into()));
    params.insert("empty".into(), UnsValue::Mapping(IndexMap::new()));
    let mut uns = IndexMap::new();
    uns.insert("params".into(), UnsValue::Mapping(params));
    uns.insert(
        "grid".into(),
        UnsValue::Array(
            DenseArray::new(vec![2, 3], NumVec::F32(vec![1., 2., 3., 4., 5., 6.])).unwrap(),
        ),
    );
    uns.insert(
        "colors".into(),
        UnsValue::StringArray {
            shape: vec![3],
            values: vec!["#ff0000".into(), "#00ff00".into(), "#0000ff".into()],
        },
    );
    uns.insert(
        "graph".into(),
        UnsValue::Sparse(random_csr(&mut rng, 5, 5, 0.3)),
    );
    uns.insert(
        "rank_genes".into(),
        UnsValue::Records(vec![
            (
                "CD4+/CD25 T Reg".into(),
                Values::Strings(vec!["RGS19".into(), "HIST1H4C".into(), "".into()]),
            ),
            (
                "score".into(),
                Values::Numbers(NumVec::F32(vec![1.5, -0.25, 0.0])),
            ),
            (
                "flag".into(),
                Values::Numbers(NumVec::Bool(vec![true, false, true])),
            ),
        ]),
    );
    data.uns = uns;

    let mut raw_var = Frame::with_index((0..n_vars + 3).map(|i| format!("raw_gene{i}")).collect());
    raw_var
        .insert("mean", Column::Numeric(NumVec::F32(vec![0.5; n_vars + 3])))
        .unwrap();
    data.raw = Some(Box::new(RawData {
        x: Matrix::Sparse(random_csr(&mut rng, n_obs, n_vars + 3, 0.1)),
        var: raw_var,
        varm: IndexMap::new(),
    }));
    data.validate().unwrap();
    data
}
