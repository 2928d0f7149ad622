//! Synthetic data as annotated [`CellData`], in the layout the rest of the
//! workspace (and scanpy) expects.

use conceptlab_core::{
    Categorical, CellData, Column, DenseArray, Matrix, NumVec, SparseFormat, SparseMatrix,
    UnsValue, Values,
};
use indexmap::IndexMap;

use crate::split::Role;
use crate::{Intervention, SynthDataset, SynthError};

/// Name of cell `n` in every file made from one data set; twins carry it in
/// `original_index`.
pub fn obs_name(n: usize) -> String {
    format!("obs_{n}")
}

fn labels(prefix: &str, values: impl Iterator<Item = u32>, levels: usize) -> Column {
    let categories = (0..levels).map(|i| format!("{prefix}_{i}")).collect();
    Column::Categorical(Categorical {
        codes: values.map(|v| v as i32).collect(),
        categories: Values::Strings(categories),
        ordered: false,
    })
}

fn concept_names(data: &SynthDataset) -> Vec<String> {
    (0..data.n_concepts())
        .map(|k| format!("concept_{k}"))
        .collect()
}

fn dense(shape: Vec<usize>, data: NumVec) -> Result<DenseArray, SynthError> {
    Ok(DenseArray::new(shape, data)?)
}

/// How a written data set stores its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountStorage {
    /// `X` as CSR (float32 counts; single-cell counts are mostly zeros)
    /// instead of a dense array.
    pub sparse: bool,
    /// Also a `counts` layer (int32) holding the same counts.
    pub counts_layer: bool,
}

impl CountStorage {
    /// Dense `X` and a dense `counts` layer (what the library functions
    /// [`to_cell_data`] and [`twins_cell_data`] build).
    pub const DENSE_WITH_LAYER: CountStorage = CountStorage {
        sparse: false,
        counts_layer: true,
    };
}

/// Cells per block when the counts are compressed (blocks are compressed in
/// parallel and joined in order, so the bytes do not depend on threads).
const SPARSE_BLOCK: usize = 1024;

/// The non-zero counts of a row-major `rows × cols` buffer as CSR: float32
/// values for `X` and, when `layer`, int32 values sharing the pattern.
fn sparse_counts(
    counts: &[u32],
    rows: usize,
    cols: usize,
    layer: bool,
) -> Result<(Matrix, Option<Matrix>), SynthError> {
    use rayon::prelude::*;
    let blocks: Vec<(Vec<u64>, Vec<u32>, Vec<u32>)> = counts
        .par_chunks(SPARSE_BLOCK * cols.max(1))
        .map(|block| {
            let (mut lengths, mut indices, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for row in block.chunks(cols.max(1)) {
                let before = indices.len();
                for (j, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0) {
                    indices.push(j as u32);
                    values.push(v);
                }
                lengths.push((indices.len() - before) as u64);
            }
            (lengths, indices, values)
        })
        .collect();
    let nnz: usize = blocks.iter().map(|b| b.1.len()).sum();
    let mut indptr = Vec::with_capacity(rows + 1);
    indptr.push(0u64);
    let (mut indices, mut values) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (lengths, idx, val) in blocks {
        for l in lengths {
            let last = indptr.last().copied().unwrap_or(0);
            indptr.push(last + l);
        }
        indices.extend_from_slice(&idx);
        values.extend_from_slice(&val);
    }
    let layer = if layer {
        let ints = values
            .iter()
            .map(|&v| v.min(i32::MAX as u32) as i32)
            .collect();
        Some(Matrix::Sparse(SparseMatrix::new(
            SparseFormat::Csr,
            (rows, cols),
            indptr.clone(),
            indices.clone(),
            NumVec::I32(ints),
        )?))
    } else {
        None
    };
    let floats = values.into_iter().map(|v| v as f32).collect();
    let x = SparseMatrix::new(
        SparseFormat::Csr,
        (rows, cols),
        indptr,
        indices,
        NumVec::F32(floats),
    )?;
    Ok((Matrix::Sparse(x), layer))
}

/// `X` and the optional `counts` layer under `storage`.
fn stored_counts(
    counts: &[u32],
    rows: usize,
    cols: usize,
    storage: CountStorage,
) -> Result<(Matrix, Option<Matrix>), SynthError> {
    if storage.sparse {
        return sparse_counts(counts, rows, cols, storage.counts_layer);
    }
    let (x, layer) = count_matrices(counts, rows, cols)?;
    Ok((x, storage.counts_layer.then_some(layer)))
}

/// Counts as `X` (float32, as anndata tools expect) plus an int32 `counts` layer.
fn count_matrices(
    counts: &[u32],
    rows: usize,
    cols: usize,
) -> Result<(Matrix, Matrix), SynthError> {
    let x = dense(
        vec![rows, cols],
        NumVec::F32(counts.iter().map(|&v| v as f32).collect()),
    )?;
    let layer = dense(
        vec![rows, cols],
        NumVec::I32(
            counts
                .iter()
                .map(|&v| v.min(i32::MAX as u32) as i32)
                .collect(),
        ),
    )?;
    Ok((Matrix::Dense(x), Matrix::Dense(layer)))
}

/// Adds the per-cell annotations of `cells` (cell type, tissue, batch, one
/// boolean column per concept) and `obsm["concepts"]`.
fn annotate(
    out: &mut CellData,
    data: &SynthDataset,
    cells: &[usize],
    concepts: &[u8],
) -> Result<(), SynthError> {
    let c = data.n_concepts();
    let cfg = &data.config;
    let obs = &mut out.obs;
    obs.insert(
        "cell_type",
        labels(
            "celltype",
            cells.iter().map(|&n| data.celltype[n]),
            cfg.n_celltypes,
        ),
    )?;
    obs.insert(
        "tissue",
        labels(
            "tissue",
            cells.iter().map(|&n| data.tissue[n]),
            cfg.n_tissues,
        ),
    )?;
    obs.insert(
        "batch",
        labels("batch", cells.iter().map(|&n| data.batch[n]), cfg.n_batches),
    )?;
    for (k, name) in concept_names(data).into_iter().enumerate() {
        let column = (0..cells.len()).map(|i| concepts[i * c + k] == 1).collect();
        obs.insert(name, Column::Numeric(NumVec::Bool(column)))?;
    }
    if let (Some(m), Some(p)) = (&data.mediation, &data.params.mediation) {
        let n_p = p.n_pathways();
        obs.insert(
            "stim",
            Column::Categorical(Categorical::new(
                cells.iter().map(|&n| i32::from(m.perturbed[n])).collect(),
                Values::Strings(vec!["ctrl".into(), "stim".into()]),
                false,
            )?),
        )?;
        for j in 0..n_p {
            let values = cells.iter().map(|&n| m.observed[n * n_p + j]).collect();
            obs.insert(pathway_name(j), Column::Numeric(NumVec::F64(values)))?;
        }
    }
    obs.insert(
        "original_index",
        Column::Strings(cells.iter().map(|&n| obs_name(n)).collect()),
    )?;
    let as_float = concepts.iter().map(|&v| f32::from(v)).collect();
    out.obsm.insert(
        "concepts".into(),
        Matrix::Dense(dense(vec![cells.len(), c], NumVec::F32(as_float))?),
    );
    let names = concept_names(data);
    out.uns.insert(
        "concept_names".into(),
        UnsValue::StringArray {
            shape: vec![names.len()],
            values: names,
        },
    );
    Ok(())
}

/// The generated cells with their annotations, the benchmark split labels
/// (`intervention_<k>` = train / modify / drop), the ground-truth effects in
/// `varm["concept_coef"]` and everything needed to reproduce the data in
/// `uns["synth"]`.
pub fn to_cell_data(
    data: &SynthDataset,
    interventions: &[Intervention],
) -> Result<CellData, SynthError> {
    to_cell_data_as(data, interventions, CountStorage::DENSE_WITH_LAYER)
}

/// [`to_cell_data`] with the counts stored as `storage` says.
pub fn to_cell_data_as(
    data: &SynthDataset,
    interventions: &[Intervention],
    storage: CountStorage,
) -> Result<CellData, SynthError> {
    let (n, f) = (data.n_obs(), data.n_vars());
    let (x, counts) = stored_counts(&data.counts, n, f, storage)?;
    let mut out = CellData::new(x, (0..n).map(obs_name).collect(), var_names(f))?;
    if let Some(counts) = counts {
        out.layers.insert("counts".into(), counts);
    }
    let cells: Vec<usize> = (0..n).collect();
    annotate(&mut out, data, &cells, &data.concepts)?;
    for (k, iv) in interventions.iter().enumerate() {
        let roles = [Role::Train, Role::Modify, Role::Drop];
        let codes = iv
            .roles
            .iter()
            .map(|r| roles.iter().position(|x| x == r).unwrap_or(0) as i32)
            .collect();
        let categories = Values::Strings(roles.iter().map(|r| r.label().to_owned()).collect());
        out.obs.insert(
            format!("intervention_{k}"),
            Column::Categorical(Categorical::new(codes, categories, false)?),
        )?;
    }
    let c = data.n_concepts();
    let coef_t: Vec<f64> = (0..f)
        .flat_map(|g| (0..c).map(move |k| (k, g)))
        .map(|(k, g)| data.params.concept_coef[k * f + g])
        .collect();
    out.varm.insert(
        "concept_coef".into(),
        Matrix::Dense(dense(vec![f, c], NumVec::F64(coef_t))?),
    );
    out.uns.insert(
        "interventions".into(),
        interventions_table(data, interventions),
    );
    out.uns.insert("synth".into(), provenance(data)?);
    Ok(out)
}

/// The ground-truth counterfactual twins of every intervention's `modify`
/// cells, one row per twin, paired with its source by `original_index`
/// (and named `obs_<n>-iv<k>`). Concepts show the edited values.
pub fn twins_cell_data(
    data: &SynthDataset,
    interventions: &[Intervention],
) -> Result<CellData, SynthError> {
    twins_cell_data_as(data, interventions, CountStorage::DENSE_WITH_LAYER)
}

/// [`twins_cell_data`] with the counts stored as `storage` says.
pub fn twins_cell_data_as(
    data: &SynthDataset,
    interventions: &[Intervention],
    storage: CountStorage,
) -> Result<CellData, SynthError> {
    let (f, c) = (data.n_vars(), data.n_concepts());
    let mut cells = Vec::new();
    let mut names = Vec::new();
    let mut which = Vec::new();
    let mut counts = Vec::new();
    let mut concepts = Vec::new();
    for (k, iv) in interventions.iter().enumerate() {
        for &cell in &iv.modify {
            cells.push(cell);
            names.push(format!("{}-iv{k}", obs_name(cell)));
            which.push(k as u32);
            let mut v = data.cell_concepts(cell).to_vec();
            v[iv.concept] = 1;
            concepts.extend(v);
        }
        counts.extend_from_slice(&iv.twins);
    }
    let (x, layer) = stored_counts(&counts, cells.len(), f, storage)?;
    let mut out = CellData::new(x, names, var_names(f))?;
    if let Some(layer) = layer {
        out.layers.insert("counts".into(), layer);
    }
    annotate(&mut out, data, &cells, &concepts)?;
    out.obs.insert(
        "intervention",
        labels("intervention", which.into_iter(), interventions.len()),
    )?;
    debug_assert_eq!(concepts.len(), cells.len() * c);
    out.uns.insert(
        "interventions".into(),
        interventions_table(data, interventions),
    );
    out.uns.insert("synth".into(), provenance(data)?);
    Ok(out)
}

/// The obs column of pathway `j`'s observed activity (mediation option).
pub fn pathway_name(j: usize) -> String {
    format!("pathway_{j}")
}

/// `uns["synth"]["mediation"]`: the exact decomposition of the
/// perturbation's log-rate effect (see [`crate::MediationParams::shares`]).
fn mediation_truth(p: &crate::MediationParams) -> Result<UnsValue, SynthError> {
    let (n_p, f) = (p.n_pathways(), p.direct.len());
    let (direct, shares) = p.shares();
    let mut out = IndexMap::new();
    out.insert(
        "perturbation".to_owned(),
        UnsValue::String("stim=stim".into()),
    );
    out.insert(
        "pathways".to_owned(),
        UnsValue::StringArray {
            shape: vec![n_p],
            values: (0..n_p).map(pathway_name).collect(),
        },
    );
    out.insert(
        "direct_share".to_owned(),
        scalar(NumVec::F64(vec![direct]))?,
    );
    out.insert("pathway_shares".to_owned(), array(vec![n_p], &shares)?);
    out.insert("shifts".to_owned(), array(vec![n_p], &p.shifts)?);
    out.insert("direct_coef".to_owned(), array(vec![f], &p.direct)?);
    out.insert("program_coef".to_owned(), array(vec![n_p, f], &p.programs)?);
    out.insert("total_coef".to_owned(), array(vec![f], &p.total())?);
    Ok(UnsValue::Mapping(out))
}

fn var_names(f: usize) -> Vec<String> {
    (0..f).map(|g| format!("gene_{g}")).collect()
}

fn interventions_table(data: &SynthDataset, interventions: &[Intervention]) -> UnsValue {
    let names = concept_names(data);
    UnsValue::Records(vec![
        (
            "cell_type".into(),
            Values::Strings(
                interventions
                    .iter()
                    .map(|iv| format!("celltype_{}", iv.celltype))
                    .collect(),
            ),
        ),
        (
            "concept".into(),
            Values::Strings(
                interventions
                    .iter()
                    .map(|iv| names[iv.concept].clone())
                    .collect(),
            ),
        ),
        (
            "n_modify".into(),
            Values::Numbers(NumVec::I64(
                interventions
                    .iter()
                    .map(|iv| iv.modify.len() as i64)
                    .collect(),
            )),
        ),
        (
            "n_drop".into(),
            Values::Numbers(NumVec::I64(
                interventions
                    .iter()
                    .map(|iv| iv.roles.iter().filter(|r| **r == Role::Drop).count() as i64)
                    .collect(),
            )),
        ),
    ])
}

fn scalar(v: NumVec) -> Result<UnsValue, SynthError> {
    Ok(UnsValue::Array(DenseArray::scalar(v)?))
}

fn array(shape: Vec<usize>, v: &[f64]) -> Result<UnsValue, SynthError> {
    Ok(UnsValue::Array(dense(shape, NumVec::F64(v.to_vec()))?))
}

/// `uns["synth"]`: the seed, the configuration and the sampled parameters.
fn provenance(data: &SynthDataset) -> Result<UnsValue, SynthError> {
    let cfg = &data.config;
    let (b, t, u, c, f) = (
        cfg.n_batches,
        cfg.n_tissues,
        cfg.n_celltypes,
        cfg.n_concepts,
        cfg.n_vars,
    );
    let mut config = IndexMap::new();
    let text = toml::to_string(cfg).map_err(|e| SynthError::InvalidConfig(e.to_string()))?;
    config.insert("toml".to_owned(), UnsValue::String(text));
    let p = &data.params;
    let mut params = IndexMap::new();
    params.insert("p_batch".into(), array(vec![b], &p.p_batch)?);
    params.insert("p_tissue".into(), array(vec![t], &p.p_tissue)?);
    params.insert(
        "p_celltype_in_tissue".into(),
        array(vec![t, u], &p.p_celltype_in_tissue)?,
    );
    params.insert(
        "p_concept_in_celltype".into(),
        array(vec![u, c], &p.p_concept_in_celltype)?,
    );
    params.insert("std_libsize".into(), array(vec![b], &p.std_libsize)?);
    params.insert("baseline".into(), array(vec![f], &p.baseline)?);
    params.insert("batch_coef".into(), array(vec![b, f], &p.batch_coef)?);
    params.insert("celltype_coef".into(), array(vec![u, f], &p.celltype_coef)?);
    params.insert("tissue_coef".into(), array(vec![t, f], &p.tissue_coef)?);
    params.insert("concept_coef".into(), array(vec![c, f], &p.concept_coef)?);
    params.insert(
        "concept_covariance".into(),
        array(vec![c, c], &p.concept_covariance)?,
    );
    let mut out = IndexMap::new();
    out.insert("seed".to_owned(), scalar(NumVec::U64(vec![data.seed]))?);
    out.insert(
        "generator".to_owned(),
        UnsValue::String(format!("conceptlab-synth {}", env!("CARGO_PKG_VERSION"))),
    );
    out.insert("config".to_owned(), UnsValue::Mapping(config));
    out.insert("params".to_owned(), UnsValue::Mapping(params));
    if let Some(m) = &p.mediation {
        out.insert("mediation".to_owned(), mediation_truth(m)?);
    }
    Ok(UnsValue::Mapping(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_counts_are_the_dense_ones_on_any_thread_count() {
        // More rows than one block, a few empty rows, zeros everywhere else.
        let (rows, cols) = (2 * SPARSE_BLOCK + 37, 9);
        let counts: Vec<u32> = (0..rows * cols)
            .map(|k| {
                if k % 4 == 0 && k / cols % 50 != 3 {
                    (k % 13) as u32
                } else {
                    0
                }
            })
            .collect();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| sparse_counts(&counts, rows, cols, true).unwrap())
        };
        let (x, layer) = on(1);
        assert_eq!((x.clone(), layer.clone()), on(4));
        let (dense_x, dense_layer) = count_matrices(&counts, rows, cols).unwrap();
        let (Matrix::Sparse(sx), Some(Matrix::Sparse(sl)), Matrix::Dense(dx), Matrix::Dense(dl)) =
            (&x, &layer, &dense_x, &dense_layer)
        else {
            panic!("expected sparse X and layer from sparse_counts");
        };
        assert_eq!(sx.format, SparseFormat::Csr);
        assert_eq!(sx.to_dense(), *dx);
        assert_eq!(sl.to_dense(), *dl);
        assert!(sx.nnz() < rows * cols / 3);
        let (_, none) = sparse_counts(&counts, rows, cols, false).unwrap();
        assert!(none.is_none());
    }
}
