//! The pbmc68k semi-synthetic suite: a known stimulation program injected
//! into real counts ([`injection`]), one cell type's stimulated cells held
//! out, and every method's edit of that type scored against the exact
//! stimulated twins.
//!
//! Read-free: [`PbmcSuite::new`] takes a [`CellData`] of counts (X) with a
//! cell-type obs column; the caller reads the file ([`counts_from_log_normalized`]
//! recovers the counts of a matrix stored as log1p of library-normalised
//! counts, as pbmc68k's `raw.X`).
//!
//! One run ([`run`]) holds out the stimulated cells of one cell type: the
//! training cells are every other cell, with concepts `stim` and the cell
//! type (one-hot, never edited), as a user would fit (`--concepts
//! stim,bulk_labels`). The preprocessing (normalise to the training median,
//! log1p, HVGs, PCA) is fitted on the training cells. Every cell of the
//! held-out type is edited from its unstimulated twin (its own counts) to
//! `stim = 1` and compared with its stimulated twin in PC space.

mod injection;
#[cfg(test)]
mod tests;

use conceptlab_core::preprocess::to_dense_f32;
use conceptlab_core::{CellData, Column, DenseArray, Matrix, NumVec};
use conceptlab_eval::{Points, cell_level_mse, mse_means};
use conceptlab_models::flow::cbm::{self, ConceptSource};
use conceptlab_models::flow::{CbmFm, FlowConfig, FlowMatcher, FlowMode, Sampling};
use conceptlab_models::intervene_on;
use conceptlab_models::registry::{self, ModelConfig};
use conceptlab_models::{
    Annotations, ConceptData, ConceptModel, Counterfactual, EditRequest, Model, PreprocessConfig,
    Preprocessor, Residual, ScCbgmConfig, TrainConfig,
};
use conceptlab_nn::ode::Solver;
use ndarray::{Array2, Axis, concatenate};
use serde::Serialize;

pub use injection::{Injection, InjectionConfig};

use crate::BenchError;
use crate::report::MethodScore;

fn protocol(reason: impl Into<String>) -> BenchError {
    BenchError::Protocol(reason.into())
}

/// Counts recovered from a matrix of `log1p(count / total · target)`: per
/// cell, the smallest nonzero value is taken to be one count (true of
/// sparse UMI data with any count of 1 among the stored genes), and every
/// value is rounded to the nearest count. Refuses a cell whose recovered
/// values are not close to integers (more than 0.25 away).
pub fn counts_from_log_normalized(x: &Matrix) -> Result<Array2<u32>, BenchError> {
    let dense = to_dense_f32(x)?;
    let mut out = Array2::<u32>::zeros(dense.dim());
    for (i, row) in dense.rows().into_iter().enumerate() {
        let scaled: Vec<f64> = row.iter().map(|&v| f64::from(v).exp_m1()).collect();
        let unit = scaled
            .iter()
            .copied()
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if !unit.is_finite() {
            continue;
        }
        for (j, &v) in scaled.iter().enumerate() {
            let c = v / unit;
            if !c.is_finite() || (c - c.round()).abs() > 0.25 || c > f64::from(u32::MAX) {
                return Err(protocol(format!(
                    "cell {i}, gene {j}: {c} counts is not close to an integer; the matrix is not log1p of normalised counts"
                )));
            }
            out[[i, j]] = c.round() as u32;
        }
    }
    Ok(out)
}

/// Real cells with an injected stimulation and their exact twins.
#[derive(Debug, Clone)]
pub struct PbmcSuite {
    pub type_names: Vec<String>,
    /// Each cell's type (an index into `type_names`).
    pub cell_type: Vec<usize>,
    pub config: InjectionConfig,
    pub injection: Injection,
}

impl PbmcSuite {
    /// Injects the program of `config` (drawn from `seed`) into `data`'s
    /// counts (X, non-negative integers); `cell_type_column` names a
    /// categorical or string obs column.
    pub fn new(
        data: &CellData,
        cell_type_column: &str,
        config: &InjectionConfig,
        seed: u64,
    ) -> Result<Self, BenchError> {
        let dense = to_dense_f32(&data.x)?;
        if let Some(v) = dense.iter().find(|&&v| !(v >= 0.0 && v.fract() == 0.0)) {
            return Err(protocol(format!(
                "X must hold counts (non-negative integers), found {v}"
            )));
        }
        let counts = dense.mapv(|v| v as u32);
        let (type_names, cell_type) = cell_types(data, cell_type_column)?;
        let injection = Injection::draw(&counts, &cell_type, type_names.len(), config, seed)?;
        Ok(PbmcSuite {
            type_names,
            cell_type,
            config: config.clone(),
            injection,
        })
    }

    /// Index of the type named `name`.
    pub fn type_index(&self, name: &str) -> Result<usize, BenchError> {
        self.type_names
            .iter()
            .position(|t| t == name)
            .ok_or_else(|| {
                protocol(format!(
                    "no cell type {name:?}; the types are {:?}",
                    self.type_names
                ))
            })
    }

    /// Cells of type `t`.
    pub fn cells_of(&self, t: usize) -> Vec<usize> {
        (0..self.cell_type.len())
            .filter(|&n| self.cell_type[n] == t)
            .collect()
    }
}

fn cell_types(data: &CellData, column: &str) -> Result<(Vec<String>, Vec<usize>), BenchError> {
    let labels: Vec<String> = match data.obs.columns.get(column) {
        Some(Column::Categorical(c)) => (0..c.codes.len())
            .map(|i| {
                c.label(i)
                    .ok_or_else(|| protocol(format!("cell {i} has no {column}")))
            })
            .collect::<Result<_, _>>()?,
        Some(Column::Strings(s)) => s.clone(),
        Some(other) => {
            return Err(protocol(format!(
                "obs column {column} is {}, not categorical or strings",
                other.describe()
            )));
        }
        None => return Err(protocol(format!("obs has no column {column}"))),
    };
    let mut names: Vec<String> = labels.clone();
    names.sort();
    names.dedup();
    let index = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).unwrap_or(0))
        .collect();
    Ok((names, index))
}

/// How a run trains and edits.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub preprocess: PreprocessConfig,
    pub model: ScCbgmConfig,
    pub train: TrainConfig,
    /// CBM-FM on top of the scCBGM (None: not trained).
    pub flow: Option<FlowRun>,
    /// Other scCBGM settings fitted on the same cells and scored as
    /// diagnostic rows (`sccbgm-<name>`, residual kept), so that a candidate
    /// fix is measured on the same program, cells and seeds.
    pub variants: Vec<Variant>,
    pub seed: u64,
}

/// One candidate scCBGM setting.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Row name suffix: the method is `sccbgm-<name>`.
    pub name: String,
    pub model: ScCbgmConfig,
    pub train: TrainConfig,
}

/// The candidate fixes measured by the suite (docs/pbmc-suite.md): one
/// change each from the default, none tuned on the suite.
pub fn candidate_variants() -> Vec<Variant> {
    let base = ScCbgmConfig::default();
    let variant = |name: &str, model: ScCbgmConfig| Variant {
        name: name.to_string(),
        model,
        train: TrainConfig::default(),
    };
    vec![
        // A quarter of the widths: fewer parameters than cells × features
        // allow to fit per-cell noise into the change.
        variant(
            "small",
            ScCbgmConfig {
                hidden_dim: 64,
                latent_dim: 32,
                n_unknown: 32,
                ..base.clone()
            },
        ),
        // Stronger regularisation of the same network.
        variant(
            "dropout-0.3",
            ScCbgmConfig {
                dropout: 0.3,
                ..base.clone()
            },
        ),
        // Ten times the orthogonality weight: less concept information in
        // u, so the change must come from the concepts.
        variant(
            "ortho-5",
            ScCbgmConfig {
                orthogonality_hp: 5.0,
                ..base
            },
        ),
    ]
}

/// CBM-FM's network, training and integration.
#[derive(Debug, Clone)]
pub struct FlowRun {
    pub config: FlowConfig,
    pub train: TrainConfig,
    pub solver: Solver,
    pub steps: usize,
}

impl RunConfig {
    /// What a new user gets: the house defaults (scCBGM, CBM-FM with
    /// annotated concepts, 500 HVGs, 128 PCs).
    pub fn defaults(seed: u64) -> Self {
        RunConfig {
            preprocess: PreprocessConfig {
                n_top_genes: Some(500),
                n_pcs: Some(128),
                ..PreprocessConfig::default()
            },
            model: ScCbgmConfig::default(),
            train: TrainConfig::default(),
            flow: Some(FlowRun {
                config: FlowConfig::default(),
                train: conceptlab_models::flow::default_flow_training(),
                solver: Solver::Midpoint,
                steps: 50,
            }),
            variants: Vec::new(),
            seed,
        }
    }
}

/// The measurements behind the diagnosis of scCBGM's edit.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// Mean ĉ(stim) of the edited cells (all unstimulated: 0 is right).
    pub chat_stim_edited: f64,
    /// Mean ĉ(stim) of the training controls and stimulated cells.
    pub chat_stim_train_control: f64,
    pub chat_stim_train_stimulated: f64,
    /// Mean ĉ of the held-out type's own column on the edited cells.
    pub chat_type_edited: f64,
    /// Per-feature variance across cells of the predicted change (mean
    /// over features), and of the true change.
    pub predicted_change_variance: f64,
    pub true_change_variance: f64,
    /// Covariance of the two changes' per-cell parts (mean over features):
    /// the part of the true variation the prediction tracks.
    pub change_covariance: f64,
}

/// One held-out run.
#[derive(Debug, Clone, Serialize)]
pub struct PbmcOutcome {
    pub cell_type: String,
    pub seed: u64,
    pub n_train: usize,
    pub n_edited: usize,
    pub n_features: usize,
    /// `copy`, `mean-shift`, `oracle-shift`, `sccbgm` (residual kept),
    /// `sccbgm-decoder`, `sccbgm-annotated` (diagnostic: the edit abducting
    /// the annotations instead of ĉ), `sccbgm-mean-change` (diagnostic: every cell moved
    /// by scCBGM's mean predicted change), `sccbgm-<name>` per
    /// [`RunConfig::variants`], `cbm-fm-edit`.
    pub methods: Vec<MethodScore>,
    pub diagnosis: Diagnosis,
    pub sccbgm_epochs: usize,
    pub sccbgm_best_epoch: usize,
}

impl PbmcOutcome {
    /// The score of `method`, if the run has it.
    pub fn score(&self, method: &str) -> Option<&MethodScore> {
        self.methods.iter().find(|m| m.method == method)
    }
}

fn to_matrix(counts: &Array2<u32>) -> Result<Matrix, BenchError> {
    let (n, g) = counts.dim();
    Ok(Matrix::Dense(DenseArray::new(
        vec![n, g],
        NumVec::F32(counts.iter().map(|&c| c as f32).collect()),
    )?))
}

fn mean_of(a: &Array2<f32>) -> Array2<f32> {
    let d = a.ncols();
    a.mean_axis(Axis(0))
        .map_or_else(|| Array2::zeros((1, d)), |m| m.insert_axis(Axis(0)))
}

fn mean_col(a: &Array2<f32>, j: usize, rows: &[usize]) -> f64 {
    rows.iter().map(|&r| f64::from(a[[r, j]])).sum::<f64>() / rows.len().max(1) as f64
}

/// Runs the suite with the stimulated cells of type `held_out` held out.
pub fn run(
    suite: &PbmcSuite,
    held_out: usize,
    config: &RunConfig,
) -> Result<PbmcOutcome, BenchError> {
    let inj = &suite.injection;
    let n_types = suite.type_names.len();
    if held_out >= n_types {
        return Err(protocol(format!("cell type {held_out} does not exist")));
    }
    let n = suite.cell_type.len();
    let train_cells: Vec<usize> = (0..n)
        .filter(|&i| !(suite.cell_type[i] == held_out && inj.stimulated[i]))
        .collect();
    let edit_cells = suite.cells_of(held_out);
    if !train_cells
        .iter()
        .any(|&i| inj.stimulated[i] && suite.cell_type[i] != held_out)
    {
        return Err(protocol("no stimulated training cell"));
    }
    if edit_cells.is_empty() {
        return Err(protocol("the held-out type has no cells"));
    }
    // One matrix: training cells as observed, then the edited cells'
    // unstimulated and stimulated twins; the preprocessing sees only the first.
    let observed = inj.observed();
    let blocks = [
        observed.select(Axis(0), &train_cells),
        inj.control.select(Axis(0), &edit_cells),
        inj.stimulated_twin.select(Axis(0), &edit_cells),
    ];
    let all = concatenate(
        Axis(0),
        &[blocks[0].view(), blocks[1].view(), blocks[2].view()],
    )
    .map_err(|e| protocol(e.to_string()))?;
    let n_train = train_cells.len();
    let n_edit = edit_cells.len();
    let fit_rows: Vec<usize> = (0..n_train).collect();
    let (_pre, features): (Preprocessor, _) = Preprocessor::fit(
        &to_matrix(&all)?,
        &config.preprocess,
        Some(&fit_rows),
        config.seed,
    )?;
    let x_train = features.slice(ndarray::s![..n_train, ..]).to_owned();
    let source = features
        .slice(ndarray::s![n_train..n_train + n_edit, ..])
        .to_owned();
    let twins = features
        .slice(ndarray::s![n_train + n_edit.., ..])
        .to_owned();

    // Concepts: stim, then the cell types one-hot (one group).
    let k = 1 + n_types;
    let concept_row = |i: usize, stim: bool| {
        let mut row = vec![0.0f32; k];
        row[0] = if stim { 1.0 } else { 0.0 };
        row[1 + suite.cell_type[i]] = 1.0;
        row
    };
    let mut concepts = Array2::<f32>::zeros((n_train, k));
    for (r, &i) in train_cells.iter().enumerate() {
        concepts
            .row_mut(r)
            .assign(&ndarray::Array1::from(concept_row(i, inj.stimulated[i])));
    }
    let training = ConceptData::new(
        x_train.clone(),
        concepts.clone(),
        Array2::ones((n_train, k)),
        k,
    )?
    .with_groups(vec![0..1, 1..k])?;
    let mut original = Array2::<f32>::zeros((n_edit, k));
    for (r, &i) in edit_cells.iter().enumerate() {
        original
            .row_mut(r)
            .assign(&ndarray::Array1::from(concept_row(i, false)));
    }
    let mut values = original.clone();
    let mut mask = Array2::<f32>::zeros((n_edit, k));
    values.column_mut(0).fill(1.0);
    mask.column_mut(0).fill(1.0);
    let observed_all = Array2::<f32>::ones((n_edit, k));
    let request = EditRequest {
        x: source.view(),
        annotations: Some(Annotations {
            values: original.view(),
            observed: observed_all.view(),
        }),
        values: values.view(),
        mask: mask.view(),
        residual: Residual::Keep,
        sampling: None,
    };

    let fit = |c: &ModelConfig| {
        registry::fit(
            c,
            &training,
            &config.train,
            config.seed,
            &conceptlab_nn::Device::Cpu,
            &mut |_| {},
        )
    };
    let sccbgm = fit(&ModelConfig::ScCbgm(config.model.clone()))?;
    let copy = fit(&ModelConfig::Copy)?.model;
    let mean_shift = fit(&ModelConfig::MeanShift)?.model;
    let edit = |m: &dyn Model, residual: Residual| -> Result<Array2<f32>, BenchError> {
        let mut r = request;
        r.residual = residual;
        Ok(m.counterfactual(&r)?.x)
    };
    let sccbgm_edit = edit(&*sccbgm.model, Residual::Keep)?;
    let sccbgm_decoder = edit(&*sccbgm.model, Residual::Discard)?;
    let copied = edit(&*copy, Residual::Keep)?;
    let shifted = edit(&*mean_shift, Residual::Keep)?;
    let true_change = &twins - &source;
    let oracle = &source + &mean_of(&true_change);
    let predicted_change = &sccbgm_edit - &source;
    let mean_change = &source + &mean_of(&predicted_change);

    let concept_model = sccbgm
        .model
        .as_concept_model()
        .ok_or_else(|| protocol("scCBGM is not a bottleneck model"))?;
    // Hypothesis: ĉ is soft on the held-out type, where a teacher-forced
    // decoder has only seen 0/1 concepts; the same edit abducting the
    // annotations instead tells whether that costs anything.
    let from_annotations = annotated_edit(concept_model, &request)?;
    let cbm_fm = match &config.flow {
        Some(flow) => Some(cbm_fm_edit(
            flow,
            concept_model,
            &x_train,
            &concepts,
            &request,
            config.seed,
        )?),
        None => None,
    };

    let d = features.ncols();
    let as_f64 = |a: &Array2<f32>| a.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let twins64 = as_f64(&twins);
    let truth = Points::new("true counterfactuals", &twins64, d)?;
    let keys: Vec<String> = (0..n_edit).map(|i| i.to_string()).collect();
    let score = |method: &str, label: &str, a: &Array2<f32>| -> Result<MethodScore, BenchError> {
        let v = as_f64(a);
        let p = Points::new(label, &v, d)?;
        Ok(MethodScore {
            method: method.to_string(),
            label: label.to_string(),
            mse: cell_level_mse(&p, &keys, &truth, &keys)?,
            shared_mse: mse_means(&truth, &p)?,
        })
    };
    let mut methods = vec![
        score("copy", "unedited cells", &copied)?,
        score("mean-shift", "shift by training mean difference", &shifted)?,
        score("oracle-shift", "oracle: true mean effect (bound)", &oracle)?,
        score("sccbgm", "scCBGM edit (residual kept)", &sccbgm_edit)?,
        score(
            "sccbgm-decoder",
            "scCBGM edit (decoder output)",
            &sccbgm_decoder,
        )?,
        score(
            "sccbgm-annotated",
            "diagnostic: scCBGM edit abducting the annotations",
            &from_annotations,
        )?,
        score(
            "sccbgm-mean-change",
            "diagnostic: scCBGM's mean change for every cell",
            &mean_change,
        )?,
    ];
    for v in &config.variants {
        let fitted = registry::fit(
            &ModelConfig::ScCbgm(v.model.clone()),
            &training,
            &v.train,
            config.seed,
            &conceptlab_nn::Device::Cpu,
            &mut |_| {},
        )?;
        let e = edit(&*fitted.model, Residual::Keep)?;
        methods.push(score(
            &format!("sccbgm-{}", v.name),
            &format!("candidate: scCBGM {} (residual kept)", v.name),
            &e,
        )?);
    }
    if let Some(e) = &cbm_fm {
        methods.push(score("cbm-fm-edit", "CBM-FM edit", e)?);
    }

    // ĉ where it matters.
    let enc_edit = concept_model.encode(source.view())?;
    let enc_train = concept_model.encode(x_train.view())?;
    let (controls, stimulated): (Vec<usize>, Vec<usize>) =
        (0..n_train).partition(|&r| !inj.stimulated[train_cells[r]]);
    let all_edit: Vec<usize> = (0..n_edit).collect();
    let per_cell = |a: &Array2<f32>| a - &mean_of(a);
    let (dp, dt) = (per_cell(&predicted_change), per_cell(&true_change));
    let cells = n_edit.max(1) as f64 * d as f64;
    let diagnosis = Diagnosis {
        chat_stim_edited: mean_col(&enc_edit.known, 0, &all_edit),
        chat_stim_train_control: mean_col(&enc_train.known, 0, &controls),
        chat_stim_train_stimulated: mean_col(&enc_train.known, 0, &stimulated),
        chat_type_edited: mean_col(&enc_edit.known, 1 + held_out, &all_edit),
        predicted_change_variance: dp.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / cells,
        true_change_variance: dt.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / cells,
        change_covariance: dp
            .iter()
            .zip(&dt)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum::<f64>()
            / cells,
    };
    Ok(PbmcOutcome {
        cell_type: suite.type_names[held_out].clone(),
        seed: config.seed,
        n_train,
        n_edited: n_edit,
        n_features: d,
        methods,
        diagnosis,
        sccbgm_epochs: sccbgm.epochs,
        sccbgm_best_epoch: sccbgm.best_epoch,
    })
}

/// scCBGM's residual-kept edit with the cells' annotations in place of ĉ:
/// `x + decode(c', u) − decode(c, u)` with `c` the annotations.
fn annotated_edit(
    model: &dyn ConceptModel,
    request: &EditRequest,
) -> Result<Array2<f32>, BenchError> {
    let a = request
        .annotations
        .ok_or_else(|| protocol("the annotated edit needs the cells' annotations"))?;
    let enc = model.encode(request.x)?;
    let current = intervene_on(&enc.known, a.values, a.observed)?;
    let target = intervene_on(&current, request.values, request.mask)?;
    let edited = model.decode(target.view(), enc.unknown.view())?;
    let reconstruction = model.decode(current.view(), enc.unknown.view())?;
    Ok(edited - reconstruction + request.x)
}

/// CBM-FM (annotated concepts) trained on the training cells, editing `request`.
fn cbm_fm_edit(
    flow: &FlowRun,
    model: &dyn ConceptModel,
    x: &Array2<f32>,
    concepts: &Array2<f32>,
    request: &EditRequest,
    seed: u64,
) -> Result<Array2<f32>, BenchError> {
    let mut matcher = FlowMatcher::new(
        flow.config.clone(),
        x.ncols(),
        model.embedding_dim(),
        seed,
        &conceptlab_nn::Device::Cpu,
    )?;
    let observed = Array2::ones(concepts.dim());
    let annotations = Some(Annotations {
        values: concepts.view(),
        observed: observed.view(),
    });
    cbm::fit(
        model,
        &mut matcher,
        x,
        annotations,
        &flow.train,
        seed,
        &mut |_| {},
    )?;
    let cbm_fm = CbmFm {
        model,
        flow: &matcher,
        concepts: ConceptSource::Annotated,
    };
    let mut r = *request;
    r.sampling = Some(Sampling {
        mode: FlowMode::Edit { t_edit: 0.0 },
        solver: flow.solver,
        steps: flow.steps,
        seed,
    });
    Ok(cbm_fm.counterfactual(&r)?.x)
}
