//! The edit's output semantics on small synthetic counts: only the edited
//! cells change, in the matrix the model reads and on its scale.

use conceptlab_core::preprocess::to_dense_f32;
use conceptlab_core::{
    CellData, Column, DType, DenseArray, Frame, Matrix, NumVec, RawData, SparseFormat,
    SparseMatrix, UnsValue,
};
use ndarray::Array2;

use super::{
    EDIT_BLOCK, EditSpec, Edited, PCA_KEY, Stage, block_sampling, edit, edit_chunked, placeholder,
    plan, rows, stored_values,
};
use crate::checkpoint::Loaded;
use crate::fit::{FitRequest, Trained, fit_cells};
use crate::flow::{FlowMode, Sampling};
use crate::input::{EDIT_RECORD, EDITED_COLUMN};
use crate::pipeline::PreprocessConfig;
use crate::registry::ModelConfig;
use crate::sccbgm::ScCbgmConfig;
use crate::train::TrainConfig;
use crate::{ModelError, Residual};

/// 300 synthetic cells × 60 genes: counts in X (f32) and layers/counts
/// (int32), plus the elements an edit must carry over untouched.
fn cells() -> CellData {
    cells_n(300)
}

fn cells_n(n_obs: usize) -> CellData {
    let mut config = conceptlab_synth::SynthConfig::preset("synthetic_1").unwrap();
    config.n_obs = n_obs;
    config.n_vars = 60;
    let generated = conceptlab_synth::generate(&config, 5).unwrap();
    let mut data = conceptlab_synth::to_cell_data(&generated, &[]).unwrap();
    let n = data.n_obs();
    let user_pca: Vec<f32> = (0..n * 3).map(|i| i as f32 * 0.5).collect();
    data.obsm.insert(
        "X_pca".into(),
        Matrix::Dense(DenseArray::new(vec![n, 3], NumVec::F32(user_pca)).unwrap()),
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
                NumVec::F64(vec![1.0; n]),
            )
            .unwrap(),
        ),
    );
    let g = data.n_vars();
    data.varp.insert(
        "similarity".into(),
        Matrix::Dense(DenseArray::new(vec![g, g], NumVec::F32(vec![0.25; g * g])).unwrap()),
    );
    data.raw = Some(Box::new(RawData {
        x: data.x.clone(),
        var: Frame::with_index(data.var_names().to_vec()),
        varm: Default::default(),
    }));
    data
}

fn fit(data: &CellData, model: ModelConfig, layer: Option<&str>) -> Result<Trained, ModelError> {
    let request = FitRequest {
        hard: vec!["cell_type".into(), "concept_0".into(), "concept_1".into()],
        soft: Vec::new(),
        layer: layer.map(str::to_string),
        model,
        preprocess: PreprocessConfig {
            // Fewer genes than the data's, so some genes are not the model's.
            n_top_genes: Some(40),
            n_pcs: Some(8),
            ..PreprocessConfig::default()
        },
        train: TrainConfig {
            max_epochs: 3,
            ..TrainConfig::default()
        },
        seed: 1,
        device: candle_core::Device::Cpu,
    };
    fit_cells(data, &request, &mut |_| {})
}

fn sccbgm() -> ModelConfig {
    ModelConfig::ScCbgm(ScCbgmConfig {
        hidden_dim: 32,
        latent_dim: 16,
        ..ScCbgmConfig::default()
    })
}

fn loaded(t: Trained) -> Loaded {
    Loaded {
        meta: t.meta,
        model: t.model,
        flow: t.flow,
    }
}

fn spec(set: &str, filter: &str, residual: Residual) -> EditSpec {
    let pair = |s: &str| {
        let (k, v) = s.split_once('=').unwrap();
        (k.to_string(), v.to_string())
    };
    EditSpec {
        set: vec![pair(set)],
        filter: vec![pair(filter)],
        residual,
        stage: Stage::Model,
        sampling: Sampling {
            mode: FlowMode::Decode,
            solver: conceptlab_nn::ode::Solver::Euler,
            steps: 1,
            seed: 0,
        },
        model_label: "test-model".into(),
    }
}

fn run(model: &Loaded, data: &CellData, spec: &EditSpec) -> Result<Edited, ModelError> {
    edit(model, data, &plan(&model.meta, spec)?)
}

fn values(m: &Matrix) -> Array2<f32> {
    to_dense_f32(m).unwrap()
}

fn marks(data: &CellData) -> Vec<bool> {
    match &data.obs.columns[EDITED_COLUMN] {
        Column::Numeric(NumVec::Bool(b)) => b.clone(),
        other => panic!("{EDITED_COLUMN} is {}", other.describe()),
    }
}

fn cell_types(data: &CellData) -> Vec<String> {
    let Column::Categorical(c) = &data.obs.columns["cell_type"] else {
        panic!("cell_type is not categorical")
    };
    (0..data.n_obs()).map(|i| c.label(i).unwrap()).collect()
}

fn text<'a>(record: &'a UnsValue, key: &str) -> &'a str {
    let UnsValue::Mapping(m) = record else {
        panic!("the record is not a mapping")
    };
    match &m[key] {
        UnsValue::String(s) => s,
        other => panic!("{key} is {}", other.describe()),
    }
}

#[test]
fn only_the_edited_rows_change_and_every_element_is_kept() {
    let data = cells();
    let model = loaded(fit(&data, sccbgm(), None).unwrap());
    assert!(
        model.meta.preprocessing.target_sum.is_some(),
        "counts are normalised"
    );
    let out = run(
        &model,
        &data,
        &spec("concept_0=True", "cell_type=celltype_1", Residual::Keep),
    )
    .unwrap()
    .cells;
    assert_eq!(out.var, data.var, "every gene, not only the model's");
    for key in ["X_pca", "concepts"] {
        assert_eq!(out.obsm[key], data.obsm[key], "obsm/{key}");
    }
    assert_eq!(out.obsm[PCA_KEY].shape(), (300, 8));
    assert_eq!(
        out.layers, data.layers,
        "the model reads X; layers are kept"
    );
    assert_eq!(
        (&out.varm, &out.obsp, &out.varp, &out.raw),
        (&data.varm, &data.obsp, &data.varp, &data.raw)
    );
    for (key, v) in &data.uns {
        assert_eq!(&out.uns[key], v, "uns/{key}");
    }
    let record = &out.uns[EDIT_RECORD];
    assert_eq!(text(record, "matrix"), "X");
    assert!(text(record, "values").starts_with("counts scale"));
    assert_eq!(out.x.dtype(), data.x.dtype());

    let edited = marks(&out);
    let types = cell_types(&data);
    let (x_in, x_out) = (values(&data.x), values(&out.x));
    let genes = &model.meta.preprocessing.genes;
    for i in 0..300 {
        assert_eq!(edited[i], types[i] == "celltype_1", "cell {i}");
        if edited[i] {
            assert!(x_in.row(i) != x_out.row(i), "edited cell {i} unchanged");
            assert!(x_out.row(i).iter().all(|&v| v >= 0.0), "negative counts");
            for g in (0..60).filter(|g| !genes.contains(g)) {
                assert_eq!(
                    x_out[[i, g]],
                    x_in[[i, g]],
                    "cell {i}: gene {g} is not the model's"
                );
            }
        } else {
            // Bit for bit: not even a float round trip.
            let same = x_in
                .row(i)
                .iter()
                .zip(x_out.row(i))
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "unedited cell {i} changed");
        }
    }
}

#[test]
fn an_edit_to_the_cells_own_values_returns_their_counts() {
    // Mean shift moves a cell by the target minus its own annotation: 0 here,
    // so a kept residual must give back exactly the counts it read.
    let data = cells();
    let model = loaded(fit(&data, ModelConfig::MeanShift, None).unwrap());
    let out = run(
        &model,
        &data,
        &spec(
            "cell_type=celltype_2",
            "cell_type=celltype_2",
            Residual::Keep,
        ),
    )
    .unwrap()
    .cells;
    assert!(marks(&out).iter().any(|&m| m));
    assert_eq!(values(&out.x), values(&data.x));

    // The inverse itself: f·expm1 of the log-normalised expression the model
    // reads is the cell's counts, up to float rounding.
    let pre = &model.meta.preprocessing;
    let rows: Vec<usize> = (0..300).step_by(7).collect();
    let expr = pre
        .expression(&data.x)
        .unwrap()
        .select(ndarray::Axis(0), &rows);
    let back = stored_values(&data.x, &rows, &pre.genes, pre.target_sum, &expr, None).unwrap();
    let counts = values(&data.x);
    for (i, &r) in rows.iter().enumerate() {
        for (j, &g) in pre.genes.iter().enumerate() {
            let want = f64::from(counts[[r, g]]);
            let got = back[[i, j]];
            assert!(
                (got - want).abs() <= 1e-5 * want.max(1.0),
                "cell {r}, gene {g}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn editing_an_edit_leaves_the_other_cells_alone() {
    let data = cells();
    let model = loaded(fit(&data, sccbgm(), None).unwrap());
    let first = run(
        &model,
        &data,
        &spec("concept_0=True", "cell_type=celltype_1", Residual::Keep),
    )
    .unwrap()
    .cells;
    let x_first = values(&first.x);
    let fractional = x_first.iter().any(|v| v.fract() != 0.0);
    assert!(fractional, "edited cells hold expected counts");
    let second = run(
        &model,
        &first,
        &spec("concept_1=True", "cell_type=celltype_2", Residual::Discard),
    )
    .unwrap()
    .cells;
    let types = cell_types(&data);
    let (x_in, x_second) = (values(&data.x), values(&second.x));
    for (i, t) in types.iter().enumerate() {
        match t.as_str() {
            "celltype_2" => assert!(x_second.row(i) != x_first.row(i), "cell {i}"),
            "celltype_1" => assert_eq!(x_second.row(i), x_first.row(i), "cell {i}"),
            _ => assert_eq!(x_second.row(i), x_in.row(i), "cell {i}"),
        }
    }
    let both: Vec<bool> = types
        .iter()
        .map(|t| t == "celltype_1" || t == "celltype_2")
        .collect();
    assert_eq!(marks(&second), both, "the mark covers both edits");
    let UnsValue::Mapping(record) = &second.uns[EDIT_RECORD] else {
        panic!()
    };
    assert_eq!(record["previous"], first.uns[EDIT_RECORD]);
}

#[test]
fn transformed_input_is_refused() {
    let data = cells();
    let model = loaded(fit(&data, sccbgm(), None).unwrap());
    let request = spec("concept_0=True", "cell_type=celltype_1", Residual::Keep);
    let mut logged = data.clone();
    let mut x = values(&data.x);
    x.mapv_inplace(f32::ln_1p);
    logged.x = conceptlab_core::preprocess::dense_matrix(x).unwrap();
    let err = run(&model, &logged, &request).unwrap_err().to_string();
    for fragment in [
        "X: cell `obs_",
        "not an integer",
        "counts",
        "normalize=never",
    ] {
        assert!(err.contains(fragment), "expected `{fragment}` in: {err}");
    }
    let mut negative = data.clone();
    let mut x = values(&data.x);
    x[[4, 2]] = -1.0;
    negative.x = conceptlab_core::preprocess::dense_matrix(x).unwrap();
    let err = run(&model, &negative, &request).unwrap_err().to_string();
    assert!(
        err.contains("cell `obs_4` (row 4)") && err.contains("negative"),
        "{err}"
    );

    // A user's own obs["conceptlab_edited"] vouches for nothing without the
    // record an edit writes beside it.
    let mut marked = logged.clone();
    marked
        .obs
        .insert(
            EDITED_COLUMN,
            Column::Numeric(NumVec::Bool(vec![true; 300])),
        )
        .unwrap();
    assert!(run(&model, &marked, &request).is_err());
}

#[test]
fn a_layer_model_writes_the_layer_and_leaves_x_alone() {
    let mut data = cells();
    // X log-normalised, counts only in the layer: the usual layout.
    let mut x = values(&data.x);
    x.mapv_inplace(f32::ln_1p);
    data.x = conceptlab_core::preprocess::dense_matrix(x).unwrap();
    let model = loaded(fit(&data, sccbgm(), Some("counts")).unwrap());
    let edited = run(
        &model,
        &data,
        &spec("concept_0=True", "cell_type=celltype_1", Residual::Keep),
    )
    .unwrap();
    let out = &edited.cells;
    assert_eq!(out.x, data.x, "X is not the model's matrix");
    assert_eq!(text(&out.uns[EDIT_RECORD], "matrix"), "layers/counts");
    let said = edited.warnings.join("\n");
    assert!(said.contains("X is unchanged"), "{said}");
    assert!(said.contains("float32") && said.contains("int32"), "{said}");
    let layer = &out.layers["counts"];
    assert_eq!(layer.dtype(), DType::F32);
    let (before, after) = (values(&data.layers["counts"]), values(layer));
    for (i, edited) in marks(out).into_iter().enumerate() {
        assert_eq!(edited, before.row(i) != after.row(i), "cell {i}");
    }
}

#[test]
fn fit_says_why_auto_does_not_normalise() {
    let mut data = cells();
    let mut x = values(&data.x);
    x.mapv_inplace(f32::ln_1p);
    data.x = conceptlab_core::preprocess::dense_matrix(x).unwrap();
    let trained = fit(&data, ModelConfig::Copy, None).unwrap();
    assert!(trained.meta.preprocessing.target_sum.is_none());
    let said = trained.warnings.join("\n");
    for fragment in ["X: cell `obs_", "not an integer", "normalize=always"] {
        assert!(said.contains(fragment), "expected `{fragment}` in: {said}");
    }
    // A layer asked for by name must hold counts under `auto`.
    data.layers.insert("counts".into(), data.x.clone());
    let err = fit(&data, ModelConfig::Copy, Some("counts"))
        .unwrap_err()
        .to_string();
    for fragment in ["layers/counts", "does not hold counts", "normalize=never"] {
        assert!(err.contains(fragment), "expected `{fragment}` in: {err}");
    }
    let counts = fit(&cells(), ModelConfig::Copy, None).unwrap();
    assert!(counts.warnings.is_empty(), "{:?}", counts.warnings);
}

/// The non-zeros of a dense matrix as CSR.
fn csr_of(x: ndarray::ArrayView2<f32>) -> SparseMatrix {
    let (mut indptr, mut indices, mut stored) = (vec![0u64], Vec::new(), Vec::new());
    for row in x.rows() {
        for (j, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            indices.push(j as u32);
            stored.push(v);
        }
        indptr.push(indices.len() as u64);
    }
    SparseMatrix::new(
        SparseFormat::Csr,
        x.dim(),
        indptr,
        indices,
        NumVec::F32(stored),
    )
    .unwrap()
}

#[test]
fn sparse_counts_stay_sparse_and_unedited_rows_stay_as_stored() {
    let data = cells();
    let model = loaded(fit(&data, sccbgm(), None).unwrap());
    let request = spec("concept_0=True", "cell_type=celltype_1", Residual::Keep);
    let on_dense = values(&run(&model, &data, &request).unwrap().cells.x);
    let counts = values(&data.x);
    let csr = Matrix::Sparse(csr_of(counts.view()));
    // The CSR of the transpose, transposed, is the CSC of the matrix.
    let csc = Matrix::Sparse(csr_of(counts.t())).transpose();
    for x in [csr, csc] {
        let mut sparse = data.clone();
        sparse.x = x;
        let out = run(&model, &sparse, &request).unwrap().cells;
        assert_eq!(out.x.encoding(), sparse.x.encoding());
        // The same edit as on dense storage, up to the rounding of sums.
        for ((i, g), &v) in values(&out.x).indexed_iter() {
            let want = on_dense[[i, g]];
            assert!(
                (v - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{} {i},{g}: {v} vs {want}",
                out.x.encoding()
            );
        }
        let (Matrix::Sparse(written), Matrix::Sparse(read)) = (&out.x, &sparse.x) else {
            panic!("not sparse")
        };
        if written.format == SparseFormat::Csr {
            // Unedited rows keep exactly their stored entries.
            let span = |s: &SparseMatrix, i: usize| s.indptr[i] as usize..s.indptr[i + 1] as usize;
            for (i, _) in marks(&out).into_iter().enumerate().filter(|(_, e)| !e) {
                assert_eq!(
                    written.indices[span(written, i)],
                    read.indices[span(read, i)]
                );
                assert_eq!(
                    written
                        .data
                        .slice(span(written, i).start, span(written, i).end)
                        .unwrap(),
                    read.data
                        .slice(span(read, i).start, span(read, i).end)
                        .unwrap()
                );
            }
        }
    }
}

/// The edit of `data` read `chunk` rows at a time, with the rows written
/// put back in place of the placeholder.
fn run_chunked(model: &Loaded, data: &CellData, spec: &EditSpec, chunk: usize) -> CellData {
    let plan = plan(&model.meta, spec).unwrap();
    let matrix = &data.x;
    let mut head = data.clone();
    head.x = placeholder(matrix.shape(), matrix.dtype()).unwrap();
    let mut blocks = Vec::new();
    let mut reads = 0;
    let edited = edit_chunked(
        model,
        &head,
        &plan,
        chunk,
        &mut |start, count| {
            reads += 1;
            assert!(count <= chunk);
            let rows: Vec<usize> = (start..start + count).collect();
            Ok(matrix.select_rows(&rows)?)
        },
        &mut |block| {
            blocks.push(block);
            Ok(())
        },
    )
    .unwrap();
    // Two passes over the rows.
    assert_eq!(reads, 2 * data.n_obs().div_ceil(chunk));
    let mut cells = edited.cells;
    cells.x = rows::stack(blocks, matrix.shape().1, cells.x.dtype()).unwrap();
    cells
}

#[test]
fn chunked_edits_are_the_whole_edit_for_any_chunk_size() {
    // More selected cells than one model block, between unselected ones.
    let data = cells_n(2 * EDIT_BLOCK + 500);
    let model = loaded(fit(&data, sccbgm(), None).unwrap());
    let request = spec("concept_0=True", "concept_1=False", Residual::Keep);
    let n = data.n_obs();
    let mut sparse = data.clone();
    sparse.x = Matrix::Sparse(csr_of(values(&data.x).view()));
    for input in [data, sparse] {
        let whole = run(&model, &input, &request).unwrap();
        assert!(whole.n_edited > EDIT_BLOCK, "{} edited", whole.n_edited);
        assert_eq!(whole.cells.x.encoding(), input.x.encoding());
        for chunk in [1, 7, 1000, n] {
            let chunked = run_chunked(&model, &input, &request, chunk);
            assert!(
                chunked == whole.cells,
                "{} input, chunks of {chunk}: not the whole edit",
                input.x.encoding()
            );
        }
    }
}

#[test]
fn each_model_block_has_its_own_seed() {
    let sampling = Sampling {
        mode: FlowMode::Decode,
        solver: conceptlab_nn::ode::Solver::Euler,
        steps: 1,
        seed: 42,
    };
    assert_eq!(block_sampling(sampling, 0).seed, 42);
    let seeds: std::collections::BTreeSet<u64> =
        (0..100).map(|b| block_sampling(sampling, b).seed).collect();
    assert_eq!(seeds.len(), 100);
}
