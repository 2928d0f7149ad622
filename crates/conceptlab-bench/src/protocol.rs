//! The synthetic counterfactual benchmark (the paper's protocol S1): hold
//! out a (cell type, concept) combination, train on everything else, edit
//! the held-out cell type's cells to turn the concept on, and compare with
//! their exact counterfactual twins.
//!
//! Every method is a registry model behind [`Counterfactual`] (scCBGM with
//! and without its residual, the trivial predictors), plus, with a
//! [`FlowSetup`], CBM-FM and vanilla FM; the oracle shift is the one row
//! that is not a model (it reads the answer).

use std::cell::RefCell;
use std::time::Instant;

use conceptlab_core::random::{stream_rng, streams};
use conceptlab_eval::{Points, cell_level_mse, concept_score, mse_means};
use conceptlab_models::flow::cbm::{self, ConceptSource};
use conceptlab_models::flow::{CbmFm, FlowConfig, FlowMatcher, FlowMode, Sampling};
use conceptlab_models::registry::{self, ModelConfig};
use conceptlab_models::{
    Annotations, ConceptData, ConceptModel, Counterfactual, EditRequest, EpochReport, Model,
    Observer, Residual, TrainConfig,
};
use conceptlab_nn::ode::Solver;
use conceptlab_synth::{Amount, ConceptTable, Corruption, Role, SynthDataset, corrupt};
use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::BenchError;
use crate::report::MethodScore;
use crate::suite::{SyntheticSuite, counts_matrix};

fn protocol(reason: impl Into<String>) -> BenchError {
    BenchError::Protocol(reason.into())
}

/// One run of the protocol.
#[derive(Debug, Clone)]
pub struct Setup {
    pub intervention: usize,
    pub corruption: Option<(Corruption, Amount)>,
    /// Annotate each cell's type as well (one-hot hard concepts
    /// `celltype_*`, never corrupted, never edited), as a user with a real
    /// data set would (`fit --concepts stim,cell_type`).
    pub cell_type_concepts: bool,
    /// The bottleneck model (scCBGM) the flows condition on.
    pub model: ModelConfig,
    /// Train and score [`Setup::model`] (rows `sccbgm`, `sccbgm-decoder`,
    /// its concept AUROCs, and the flow stage, which conditions on it).
    /// Without it a run scores only the trivial rows and the baselines: a
    /// benchmark that runs one model per run does not pay for scCBGM in
    /// every other model's run.
    pub bottleneck: bool,
    pub train: TrainConfig,
    /// Also train the flow-matching generators and edit with them.
    pub flow: Option<FlowSetup>,
    /// Further registry models (the paper's baselines) fitted on the same
    /// training cells, each scored under its registry name. Models that
    /// integrate an ODE use the flow stage's solver when there is one, their
    /// own defaults otherwise.
    pub baselines: Vec<Baseline>,
    pub seed: u64,
}

/// A registry model a run fits and scores besides its own.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub config: ModelConfig,
    /// Usually the kind's own ([`ModelKind::default_train`](conceptlab_models::ModelKind::default_train)).
    pub train: TrainConfig,
}

impl Baseline {
    /// `config` trained as its kind trains by default.
    pub fn new(config: ModelConfig) -> Self {
        let train = config.kind().default_train();
        Baseline { config, train }
    }
}

/// The flow-matching stage of a run.
#[derive(Debug, Clone)]
pub struct FlowSetup {
    /// The known part of CBM-FM's condition.
    pub concepts: ConceptSource,
    pub config: FlowConfig,
    pub train: TrainConfig,
    pub solver: Solver,
    pub steps: usize,
    /// Also edit with every solver of [`SOLVER_GRID`] and report each one's
    /// error and cost next to the reference's 1000-step Euler.
    pub solver_study: bool,
}

/// The integrations compared by the solver study: (solver, steps).
pub const SOLVER_GRID: &[(Solver, usize)] = &[
    (Solver::Euler, 1000),
    (Solver::Euler, 200),
    (Solver::Euler, 100),
    (Solver::Euler, 50),
    (Solver::Euler, 25),
    (Solver::Euler, 10),
    (Solver::Midpoint, 50),
    (Solver::Midpoint, 25),
    (Solver::Midpoint, 12),
    (Solver::Midpoint, 6),
    (Solver::Midpoint, 3),
    (Solver::Rk4, 25),
    (Solver::Rk4, 12),
    (Solver::Rk4, 6),
    (Solver::Rk4, 3),
    (Solver::Rk4, 2),
    (
        Solver::DormandPrince {
            rtol: 1e-2,
            atol: 1e-2,
        },
        4,
    ),
    (
        Solver::DormandPrince {
            rtol: 1e-3,
            atol: 1e-3,
        },
        4,
    ),
    (
        Solver::DormandPrince {
            rtol: 1e-4,
            atol: 1e-4,
        },
        4,
    ),
];

/// Partial inversion depths compared by the study, next to the full
/// inversion (t_edit = 0) every run makes: how far back toward noise an
/// edit takes each cell before integrating forward with the new concepts.
pub const T_EDIT_GRID: &[f64] = &[0.1, 0.25, 0.5];

/// Both flows' edits at one inversion depth.
#[derive(Debug, Clone, Serialize)]
pub struct TEditPoint {
    pub t_edit: f64,
    pub cbm_fm_edit_mse: f64,
    pub vanilla_fm_edit_mse: f64,
}

/// One integration setting of the solver study.
#[derive(Debug, Clone, Serialize)]
pub struct SolverPoint {
    pub solver: Solver,
    pub steps: usize,
    /// Network evaluations per edited cell (inversion and regeneration).
    pub evaluations_per_cell: f64,
    /// Counterfactual error against the true twins.
    pub mse_to_truth: f64,
    /// Distance to the reference integration (1000-step Euler) of the same flow.
    pub mse_to_euler_1000: f64,
    /// An edit that changes nothing, against the cell itself (inversion error).
    pub round_trip_mse: f64,
}

struct SolverRun {
    solver: Solver,
    steps: usize,
    evaluations: f64,
    edit: Array2<f32>,
    round_trip: Array2<f32>,
}

/// What the flow stage measured beyond its methods' scores (which are rows
/// of [`Outcome::methods`]: `cbm-fm-edit`, `cbm-fm-decode`,
/// `vanilla-fm-edit`, `vanilla-fm-decode`).
#[derive(Debug, Clone, Serialize)]
pub struct FlowOutcome {
    /// How far apart the two flows' edits are (MSE between them): far below
    /// their errors means both make the same mistake.
    pub cbm_fm_vs_vanilla_fm_mse: f64,
    /// Velocity evaluations per cell of an edit (both directions).
    pub evaluations_per_cell: f64,
    pub train_seconds: f64,
    /// Cells edited per second by CBM-FM (edit mode).
    pub edit_cells_per_second: f64,
    /// The solver study, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub solvers: Vec<SolverPoint>,
    /// Both flows' edits at full inversion and at each depth of
    /// [`T_EDIT_GRID`] (with the solver study).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub t_edit: Vec<TEditPoint>,
}

struct FlowEdits {
    cbm_edit: Array2<f32>,
    cbm_decode: Array2<f32>,
    vanilla_edit: Array2<f32>,
    vanilla_decode: Array2<f32>,
    evaluations: f64,
    seconds: f64,
    edit_cells_per_second: f64,
    study: Vec<SolverRun>,
    /// (t_edit, CBM-FM edit, vanilla FM edit) at each depth of [`T_EDIT_GRID`].
    depths: Vec<(f64, Array2<f32>, Array2<f32>)>,
}

/// `request` integrated with `sampling`.
fn sampled<'a>(request: &EditRequest<'a>, sampling: Sampling) -> EditRequest<'a> {
    let mut request = *request;
    request.sampling = Some(sampling);
    request
}

/// Trains CBM-FM (condition [ĉ(μ) ‖ u(μ)] of the trained scCBGM) and vanilla
/// FM (condition: observed concepts) on the training cells `features` /
/// `concepts`, then answers `request` with both.
fn flow_counterfactuals(
    flow: &FlowSetup,
    model: &dyn ConceptModel,
    features: &Array2<f32>,
    concepts: &Array2<f32>,
    request: &EditRequest,
    seed: u64,
) -> Result<FlowEdits, BenchError> {
    let source = request.x;
    let original = request
        .annotations
        .ok_or_else(|| protocol("the flows need the cells' own concepts"))?
        .values;
    let started = Instant::now();
    let progress = |name: &'static str| {
        move |r: &EpochReport| {
            tracing::debug!(
                r.epoch,
                r.train_loss,
                validation = r.validation_loss,
                "{name}"
            );
        }
    };
    let d = features.ncols();
    // CBM-FM.
    let mut cbm = FlowMatcher::new(
        flow.config.clone(),
        d,
        model.embedding_dim(),
        seed,
        &conceptlab_nn::Device::Cpu,
    )?;
    let observed = Array2::ones(concepts.dim());
    let annotations = (flow.concepts == ConceptSource::Annotated).then_some(Annotations {
        values: concepts.view(),
        observed: observed.view(),
    });
    cbm::fit(
        model,
        &mut cbm,
        features,
        annotations,
        &flow.train,
        seed,
        &mut progress("CBM-FM epoch"),
    )?;
    let cbm_fm = CbmFm {
        model,
        flow: &cbm,
        concepts: flow.concepts,
    };
    let edit = Sampling {
        mode: FlowMode::Edit { t_edit: 0.0 },
        solver: flow.solver,
        steps: flow.steps,
        seed,
    };
    let decode = Sampling {
        mode: FlowMode::Decode,
        ..edit
    };
    let counterfactual = |sampling: &Sampling| -> Result<(Array2<f32>, f64), BenchError> {
        let c = cbm_fm.counterfactual(&sampled(request, *sampling))?;
        Ok((c.x, c.evaluations.unwrap_or(0.0)))
    };
    let edit_started = Instant::now();
    let (cbm_edit, evaluations) = counterfactual(&edit)?;
    let edit_cells_per_second = source.nrows() as f64 / edit_started.elapsed().as_secs_f64();
    let (cbm_decode, _) = counterfactual(&decode)?;
    let mut study = Vec::new();
    if flow.solver_study {
        let unchanged = Array2::<f32>::zeros(request.mask.dim());
        for &(solver, steps) in SOLVER_GRID {
            let sampling = Sampling {
                solver,
                steps,
                ..edit
            };
            let (edit, evaluations) = counterfactual(&sampling)?;
            // A request is invariant in its views' lifetime: reborrow them.
            let nothing_set = EditRequest {
                x: request.x.view(),
                annotations: request.annotations.as_ref().map(|a| Annotations {
                    values: a.values.view(),
                    observed: a.observed.view(),
                }),
                values: request.values.view(),
                mask: unchanged.view(),
                residual: request.residual,
                sampling: Some(sampling),
            };
            let round_trip = cbm_fm.counterfactual(&nothing_set)?.x;
            tracing::info!(?solver, steps, evaluations, "solver study");
            study.push(SolverRun {
                solver,
                steps,
                evaluations,
                edit,
                round_trip,
            });
        }
    }
    // Vanilla FM on the observed concepts.
    let mut vanilla = FlowMatcher::new(
        flow.config.clone(),
        d,
        concepts.ncols(),
        seed,
        &conceptlab_nn::Device::Cpu,
    )?;
    vanilla.fit(
        features,
        concepts,
        &flow.train,
        seed,
        &mut progress("vanilla FM epoch"),
    )?;
    let vanilla_counterfactual =
        |sampling: &Sampling| vanilla.counterfactual(source, original, request.values, sampling);
    let (vanilla_edit, _) = vanilla_counterfactual(&edit)?;
    let (vanilla_decode, _) = vanilla_counterfactual(&decode)?;
    let mut depths = Vec::new();
    if flow.solver_study {
        for &t_edit in T_EDIT_GRID {
            let sampling = Sampling {
                mode: FlowMode::Edit { t_edit },
                ..edit
            };
            let (cbm_at, _) = counterfactual(&sampling)?;
            let (vanilla_at, _) = vanilla_counterfactual(&sampling)?;
            depths.push((t_edit, cbm_at, vanilla_at));
        }
    }
    Ok(FlowEdits {
        cbm_edit,
        cbm_decode,
        vanilla_edit,
        vanilla_decode,
        evaluations,
        seconds: started.elapsed().as_secs_f64(),
        edit_cells_per_second,
        study,
        depths,
    })
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub cell_type: String,
    pub concept: String,
    pub corruption: String,
    pub n_train: usize,
    /// Training cells of the held-out cell type with the concept on (always
    /// 0: the combination is unseen).
    pub held_out_in_training: usize,
    pub n_edited: usize,
    pub n_features: usize,
    /// scCBGM's trainable parameters.
    pub n_parameters: usize,
    /// Every method's error against the twins, in a fixed order: `sccbgm`
    /// (its edit keeping each cell's residual), `sccbgm-decoder` (the
    /// decoder's output, the reference's edit), `copy` (the unedited
    /// cells), `mean-shift` (the training mean difference), `oracle-shift`
    /// (every cell shifted by the true mean effect: a bound for predictors
    /// that move all cells alike; it uses the answer), then the flows'.
    pub methods: Vec<MethodScore>,
    /// Mean AUROC of the concept head over the original concepts, on the
    /// never-seen twins; the target concept is scored on twins (on) against
    /// their unedited sources (off).
    pub concept_auroc: Option<f64>,
    pub target_auroc: Option<f64>,
    /// The flow stage's cost and studies (with a [`FlowSetup`]).
    pub flow: Option<FlowOutcome>,
    /// What each of [`Setup::baselines`] cost.
    pub timings: Vec<Timing>,
    /// The baselines that could not fit or edit these cells, and why.
    pub failures: Vec<Failure>,
    pub epochs: usize,
    pub best_epoch: usize,
    pub train_seconds: f64,
    pub cells_per_second: f64,
    /// Mean expression of the genes the true edit changes most, in the
    /// twins and in each method's edited cells.
    pub top_genes: Option<TopGenes>,
}

/// How many genes [`TopGenes`] keeps.
pub const TOP_DE_GENES: usize = 20;

/// Mean log-normalised expression of the [`TOP_DE_GENES`] genes whose
/// mean the true edit moves most (|twins − sources|): the truth is the
/// twins' own expression; a method's is its edited cells' mean mapped back
/// from the features (inverse PCA, which is affine, so the mean commutes).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TopGenes {
    /// Indices into the preprocessing's kept genes, largest change first.
    pub genes: Vec<usize>,
    /// The unedited cells' mean.
    pub source: Vec<f64>,
    /// The twins' mean.
    pub truth: Vec<f64>,
    /// (method, its edited cells' mean), in [`Outcome::methods`] order.
    pub methods: Vec<(String, Vec<f64>)>,
}

/// What fitting and editing with one baseline cost in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub method: String,
    pub fit_seconds: f64,
    /// Epochs trained (0 for closed-form models).
    pub epochs: usize,
    pub edit_seconds: f64,
}

/// A baseline that could not run on a run's cells.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Failure {
    pub method: String,
    pub error: String,
}

/// Mean squared difference per entry of two equally shaped arrays.
fn mean_sq(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// Scores the inversion-depth study; full inversion is the run's own edit.
fn depth_points(edits: &FlowEdits, mse: &Scorer) -> Result<Vec<TEditPoint>, BenchError> {
    if edits.depths.is_empty() {
        return Ok(Vec::new());
    }
    std::iter::once((0.0, &edits.cbm_edit, &edits.vanilla_edit))
        .chain(edits.depths.iter().map(|(t, c, v)| (*t, c, v)))
        .map(|(t_edit, cbm_at, vanilla_at)| {
            Ok(TEditPoint {
                t_edit,
                cbm_fm_edit_mse: mse(cbm_at, "CBM-FM edits")?,
                vanilla_fm_edit_mse: mse(vanilla_at, "vanilla FM edits")?,
            })
        })
        .collect()
}

/// Scores the solver study: against the truth, against 1000-step Euler
/// (the study's first entry) and the round trip against the cells.
fn solver_points(
    study: &[SolverRun],
    source: &Array2<f32>,
    mse: &Scorer,
) -> Result<Vec<SolverPoint>, BenchError> {
    let Some(reference) = study.first() else {
        return Ok(Vec::new());
    };
    study
        .iter()
        .map(|run| {
            Ok(SolverPoint {
                solver: run.solver,
                steps: run.steps,
                evaluations_per_cell: run.evaluations,
                mse_to_truth: mse(&run.edit, "solver study edits")?,
                mse_to_euler_1000: mean_sq(&run.edit, &reference.edit),
                round_trip_mse: mean_sq(&run.round_trip, source),
            })
        })
        .collect()
}

/// Appends one-hot cell-type columns to a concept table.
fn with_cell_types(table: ConceptTable, data: &SynthDataset) -> Result<ConceptTable, BenchError> {
    let n_types = data
        .celltype
        .iter()
        .map(|&u| u as usize + 1)
        .max()
        .unwrap_or(0);
    let k = table.n_cols();
    let mut names = table.names.clone();
    names.extend((0..n_types).map(|u| format!("celltype_{u}")));
    let width = k + n_types;
    let mut values = vec![0u8; table.n_rows * width];
    for n in 0..table.n_rows {
        values[n * width..n * width + k].copy_from_slice(&table.values[n * k..(n + 1) * k]);
        values[n * width + k + data.celltype[n] as usize] = 1;
    }
    Ok(ConceptTable::new(names, values, table.n_rows)?)
}

/// Scores edited cells (named for error messages) against the twins.
type Scorer<'a> = dyn Fn(&Array2<f32>, &str) -> Result<f64, BenchError> + 'a;

/// `model`'s edited cells for `request` with `residual`.
fn edit_with(
    model: &dyn Counterfactual,
    request: &EditRequest,
    residual: Residual,
) -> Result<Array2<f32>, BenchError> {
    let mut request = *request;
    request.residual = residual;
    Ok(model.counterfactual(&request)?.x)
}

/// Runs the protocol for one held-out combination of `suite`.
pub fn run(
    suite: &SyntheticSuite,
    setup: &Setup,
    observer: &mut Observer,
) -> Result<Outcome, BenchError> {
    let (data, interventions) = (&suite.data, &suite.interventions);
    let Some(iv) = interventions.get(setup.intervention) else {
        return Err(protocol(format!(
            "intervention {} does not exist (the split has {})",
            setup.intervention,
            interventions.len()
        )));
    };
    let (g, c) = (data.n_vars(), data.n_concepts());
    let names: Vec<String> = (0..c).map(|j| format!("concept_{j}")).collect();
    let target = names[iv.concept].clone();
    // S1: training = everything but the dropped (held-out) cells; the cells
    // to edit are part of it, with the concept off.
    let train_cells: Vec<usize> = (0..data.n_obs())
        .filter(|&n| iv.roles[n] != Role::Drop)
        .collect();

    // Concepts, optionally corrupted (never the target).
    let table = ConceptTable::new(names.clone(), data.concepts.clone(), data.n_obs())?;
    let (table, label) = match setup.corruption {
        None => (table, "none".to_string()),
        Some((kind, amount)) => {
            let mut rng = stream_rng(setup.seed, streams::CORRUPTION);
            (
                corrupt(&table, kind, amount, Some(&target), &mut rng)?,
                format!("{kind:?} {amount:?}"),
            )
        }
    };
    let n_annotated = table.n_cols();
    let table = if setup.cell_type_concepts {
        with_cell_types(table, data)?
    } else {
        table
    };
    let k = table.n_cols();
    // Each annotated concept is one column; the cell types one one-hot group.
    let mut groups: Vec<std::ops::Range<usize>> = (0..n_annotated).map(|j| j..j + 1).collect();
    if k > n_annotated {
        groups.push(n_annotated..k);
    }
    let target_col = table
        .names
        .iter()
        .position(|n| *n == target)
        .ok_or_else(|| protocol("target concept lost"))?;
    let concept_rows = |cells: &[usize]| -> Array2<f32> {
        let mut out = Array2::zeros((cells.len(), k));
        for (r, &n) in cells.iter().enumerate() {
            for j in 0..k {
                out[[r, j]] = table.values[n * k + j] as f32;
            }
        }
        out
    };

    // Zero-shot by construction; checked, since everything downstream relies on it.
    let leaked = train_cells
        .iter()
        .filter(|&&n| {
            data.celltype[n] as usize == iv.celltype && data.cell_concepts(n)[iv.concept] == 1
        })
        .count();
    if leaked > 0 {
        return Err(protocol(format!(
            "{leaked} training cells show the held-out combination"
        )));
    }
    let features = suite.features.select(Axis(0), &train_cells);
    let concepts = concept_rows(&train_cells);
    let observed = Array2::ones(concepts.dim());
    let training =
        ConceptData::new(features.clone(), concepts.clone(), observed, k)?.with_groups(groups)?;
    let started = Instant::now();
    let sccbgm = match setup.bottleneck {
        true => Some(registry::fit(
            &setup.model,
            &training,
            &setup.train,
            setup.seed,
            &conceptlab_nn::Device::Cpu,
            observer,
        )?),
        false if setup.flow.is_some() => {
            return Err(protocol(
                "the flow stage conditions on the bottleneck model, which this run does not train",
            ));
        }
        false => None,
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let concept_model = match &sccbgm {
        Some(fitted) => Some(fitted.model.as_concept_model().ok_or_else(|| {
            protocol(format!(
                "the benchmark's concept model must be a bottleneck model, not {}",
                fitted.model.kind().name()
            ))
        })?),
        None => None,
    };
    let trivial = |config: ModelConfig| -> Result<Box<dyn Model>, BenchError> {
        Ok(registry::fit(
            &config,
            &training,
            &setup.train,
            setup.seed,
            &conceptlab_nn::Device::Cpu,
            &mut |_| {},
        )?
        .model)
    };
    let copy = trivial(ModelConfig::Copy)?;
    let mean_shift = trivial(ModelConfig::MeanShift)?;

    // Edit: the cells to modify with the target concept turned on.
    let n_edit = iv.modify.len();
    let source = suite.features.select(Axis(0), &iv.modify);
    let twins = suite.pre.transform(&counts_matrix(&iv.twins, n_edit, g)?)?;
    let original = concept_rows(&iv.modify);
    let mut values = original.clone();
    let mut mask = Array2::zeros(values.dim());
    for r in 0..n_edit {
        values[[r, target_col]] = 1.0;
        mask[[r, target_col]] = 1.0;
    }
    let all_observed = Array2::ones(original.dim());
    let request = EditRequest {
        x: source.view(),
        annotations: Some(Annotations {
            values: original.view(),
            observed: all_observed.view(),
        }),
        values: values.view(),
        mask: mask.view(),
        residual: Residual::Keep,
        sampling: None,
    };
    let bottleneck_edits = match &sccbgm {
        Some(fitted) => Some((
            edit_with(&*fitted.model, &request, Residual::Keep)?,
            edit_with(&*fitted.model, &request, Residual::Discard)?,
        )),
        None => None,
    };
    let unedited = edit_with(&*copy, &request, Residual::Keep)?;
    let shifted = edit_with(&*mean_shift, &request, Residual::Keep)?;
    // An oracle no method can use: every cell shifted by the true mean
    // effect on these very cells. What is left is cell-to-cell variation of
    // the effect (quantile-coupled Poisson counts move in whole units).
    let oracle = match (&twins - &source).mean_axis(Axis(0)) {
        Some(mean_effect) => &source + &mean_effect,
        None => source.clone(),
    };
    let fm = match (&setup.flow, concept_model) {
        (Some(flow), Some(concept_model)) => Some(flow_counterfactuals(
            flow,
            concept_model,
            &features,
            &concepts,
            &request,
            setup.seed,
        )?),
        _ => None,
    };

    let keys: Vec<String> = (0..n_edit).map(|i| i.to_string()).collect();
    let as_f64 = |a: &Array2<f32>| a.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let twins64 = as_f64(&twins);
    let d = suite.pre.n_features();
    let truth = Points::new("true counterfactuals", &twins64, d)?;
    let mse = |a: &Array2<f32>, what: &str| -> Result<f64, BenchError> {
        let v = as_f64(a);
        Ok(cell_level_mse(
            &Points::new(what, &v, d)?,
            &keys,
            &truth,
            &keys,
        )?)
    };
    // The part of an error every cell shares (the held-out cell type moved
    // by the wrong amount) is the squared distance of the means, per
    // feature; the rest of the cell-level MSE is cell-to-cell.
    // Each scored method's mean edited cell, for the expression of the top genes.
    let edited_means: RefCell<Vec<(String, Array2<f32>)>> = RefCell::new(Vec::new());
    let score = |method: &str, label: &str, a: &Array2<f32>| -> Result<MethodScore, BenchError> {
        let v = as_f64(a);
        if let Some(m) = a.mean_axis(Axis(0)) {
            edited_means
                .borrow_mut()
                .push((method.to_string(), m.insert_axis(Axis(0))));
        }
        Ok(MethodScore {
            method: method.to_string(),
            label: label.to_string(),
            mse: mse(a, label)?,
            shared_mse: mse_means(&truth, &Points::new(label, &v, d)?)?,
        })
    };
    let mut methods = Vec::new();
    if let Some((edited_residual, edited)) = &bottleneck_edits {
        methods.push(score(
            "sccbgm",
            "scCBGM edit (residual kept)",
            edited_residual,
        )?);
        methods.push(score(
            "sccbgm-decoder",
            "scCBGM edit (decoder output)",
            edited,
        )?);
    }
    methods.extend([
        score("copy", "unedited cells", &unedited)?,
        score("mean-shift", "shift by training mean difference", &shifted)?,
        score("oracle-shift", "oracle: true mean effect (bound)", &oracle)?,
    ]);
    let mut timings = Vec::new();
    let mut failures = Vec::new();
    for baseline in &setup.baselines {
        let name = baseline.config.kind().name();
        let started = Instant::now();
        // A model that cannot run on these cells (a design limit, e.g. a
        // held-out pattern it cannot represent) is recorded and the run goes
        // on: one baseline never costs a benchmark the others' results.
        let fitted = match registry::fit(
            &baseline.config,
            &training,
            &baseline.train,
            setup.seed,
            &conceptlab_nn::Device::Cpu,
            observer,
        ) {
            Ok(fitted) => fitted,
            Err(e) => {
                tracing::warn!("{name} could not be fitted: {e}");
                failures.push(Failure {
                    method: name.to_string(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let fit_seconds = started.elapsed().as_secs_f64();
        let mut baseline_request = request;
        baseline_request.sampling = setup.flow.as_ref().map(|f| Sampling {
            mode: FlowMode::Edit { t_edit: 0.0 },
            solver: f.solver,
            steps: f.steps,
            seed: setup.seed,
        });
        let started = Instant::now();
        let edited = match fitted.model.counterfactual(&baseline_request) {
            Ok(c) => c.x,
            Err(e) => {
                tracing::warn!("{name} could not edit: {e}");
                failures.push(Failure {
                    method: name.to_string(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let edit_seconds = started.elapsed().as_secs_f64();
        // Tables name baselines as users type them (`fit --model-type`).
        methods.push(score(name, name, &edited)?);
        timings.push(Timing {
            method: name.to_string(),
            fit_seconds,
            epochs: fitted.epochs,
            edit_seconds,
        });
    }
    let flow = match fm {
        Some(f) => {
            methods.extend([
                score("cbm-fm-edit", "scCBGM-FM edit", &f.cbm_edit)?,
                score("cbm-fm-decode", "scCBGM-FM decode", &f.cbm_decode)?,
                score(
                    "vanilla-fm-edit",
                    "vanilla FM edit (observed concepts)",
                    &f.vanilla_edit,
                )?,
                score("vanilla-fm-decode", "vanilla FM decode", &f.vanilla_decode)?,
            ]);
            Some(FlowOutcome {
                cbm_fm_vs_vanilla_fm_mse: mean_sq(&f.cbm_edit, &f.vanilla_edit),
                evaluations_per_cell: f.evaluations,
                train_seconds: f.seconds,
                edit_cells_per_second: f.edit_cells_per_second,
                solvers: solver_points(&f.study, &source, &mse)?,
                t_edit: depth_points(&f, &mse)?,
            })
        }
        None => None,
    };

    let top_genes = top_genes(
        suite,
        &counts_matrix(&iv.twins, n_edit, g)?,
        &iv.modify,
        &edited_means.into_inner(),
    )?;
    let (concept_auroc, target_auroc) = match concept_model {
        Some(model) => {
            concept_aurocs(model, &table, &names, target_col, iv, data, &twins, &source)?
        }
        None => (None, None),
    };
    let (n_train, n_parameters, epochs, best_epoch) = match &sccbgm {
        Some(f) => (f.n_train, f.model.n_parameters(), f.epochs, f.best_epoch),
        None => (train_cells.len(), 0, 0, 0),
    };
    let cells_trained: usize = n_train * epochs;
    Ok(Outcome {
        cell_type: format!("celltype_{}", iv.celltype),
        concept: target,
        corruption: label,
        n_train,
        held_out_in_training: leaked,
        n_edited: n_edit,
        n_features: d,
        n_parameters,
        methods,
        concept_auroc,
        target_auroc,
        flow,
        timings,
        failures,
        epochs,
        best_epoch,
        train_seconds,
        cells_per_second: cells_trained as f64 / train_seconds.max(1e-9),
        top_genes: Some(top_genes),
    })
}

/// [`TopGenes`] of a run: `twins` are the edited cells' true counterfactual
/// counts, `modify` the cells edited, `means` each method's mean edited
/// features (one row each).
fn top_genes(
    suite: &SyntheticSuite,
    twins: &conceptlab_core::Matrix,
    modify: &[usize],
    means: &[(String, Array2<f32>)],
) -> Result<TopGenes, BenchError> {
    let g = suite.data.n_vars();
    let source_counts = counts_matrix(
        &modify
            .iter()
            .flat_map(|&n| suite.data.counts[n * g..(n + 1) * g].iter().copied())
            .collect::<Vec<u32>>(),
        modify.len(),
        g,
    )?;
    let column_means = |a: &Array2<f32>| -> Vec<f64> {
        a.mean_axis(Axis(0))
            .map_or_else(Vec::new, |m| m.iter().map(|&v| f64::from(v)).collect())
    };
    let truth = column_means(&suite.pre.expression(twins)?);
    let source = column_means(&suite.pre.expression(&source_counts)?);
    let mut order: Vec<usize> = (0..truth.len().min(source.len())).collect();
    // Largest true change first; ties by gene index, so the choice is stable.
    order.sort_by(|&a, &b| {
        let (da, db) = ((truth[a] - source[a]).abs(), (truth[b] - source[b]).abs());
        db.total_cmp(&da).then(a.cmp(&b))
    });
    order.truncate(TOP_DE_GENES);
    let pick = |v: &[f64]| order.iter().map(|&j| v[j]).collect::<Vec<f64>>();
    let mut methods = Vec::with_capacity(means.len());
    for (method, mean) in means {
        let expression = suite.pre.to_expression(mean.view())?;
        methods.push((method.clone(), pick(&column_means(&expression))));
    }
    Ok(TopGenes {
        source: pick(&source),
        truth: pick(&truth),
        genes: order,
        methods,
    })
}

/// Mean AUROC of the concept head over the original concepts on the twins,
/// and of the target concept on twins (on) against their sources (off).
#[allow(clippy::too_many_arguments)]
fn concept_aurocs(
    concept_model: &dyn ConceptModel,
    table: &ConceptTable,
    names: &[String],
    target_col: usize,
    iv: &conceptlab_synth::Intervention,
    data: &SynthDataset,
    twins: &Array2<f32>,
    source: &Array2<f32>,
) -> Result<(Option<f64>, Option<f64>), BenchError> {
    let n_edit = iv.modify.len();
    // Concept recovery on cells the model never saw.
    let enc_twins = concept_model.encode(twins.view())?;
    let mut aurocs = Vec::new();
    for (orig, name) in names.iter().enumerate() {
        let Some(j) = table.names.iter().position(|n| n == name) else {
            continue;
        };
        if j == target_col {
            continue;
        }
        let truth: Vec<u8> = iv
            .modify
            .iter()
            .map(|&n| data.cell_concepts(n)[orig])
            .collect();
        let prob: Vec<f64> = enc_twins
            .known
            .column(j)
            .iter()
            .map(|&p| p as f64)
            .collect();
        if let Some(a) = concept_score(&truth, &prob)?.auroc {
            aurocs.push(a);
        }
    }
    let enc_source = concept_model.encode(source.view())?;
    let mut truth = vec![1u8; n_edit];
    truth.extend(std::iter::repeat_n(0u8, n_edit));
    let prob: Vec<f64> = enc_twins
        .known
        .column(target_col)
        .iter()
        .chain(enc_source.known.column(target_col).iter())
        .map(|&p| p as f64)
        .collect();
    let target_auroc = concept_score(&truth, &prob)?.auroc;
    let concept_auroc =
        (!aurocs.is_empty()).then(|| aurocs.iter().sum::<f64>() / aurocs.len() as f64);
    Ok((concept_auroc, target_auroc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_models::{PreprocessConfig, ScCbgmConfig};

    fn small_setup(baselines: Vec<Baseline>) -> (SyntheticSuite, Setup) {
        let preprocess = PreprocessConfig {
            n_pcs: Some(8),
            ..PreprocessConfig::default()
        };
        let suite =
            SyntheticSuite::preset("synthetic_1", Some(600), Some(40), 3, &preprocess).unwrap();
        let setup = Setup {
            intervention: 0,
            corruption: None,
            cell_type_concepts: true,
            model: ModelConfig::ScCbgm(ScCbgmConfig {
                hidden_dim: 16,
                latent_dim: 8,
                n_unknown: 8,
                ..ScCbgmConfig::default()
            }),
            train: TrainConfig {
                max_epochs: 2,
                ..TrainConfig::default()
            },
            bottleneck: true,
            flow: None,
            baselines,
            seed: 3,
        };
        (suite, setup)
    }

    /// A baseline is scored under its registry name, on the same cells and
    /// request as the built-in rows: a second mean shift gives exactly the
    /// built-in mean shift's scores, and each baseline's cost is recorded.
    #[test]
    fn baselines_are_scored_by_registry_name() {
        let (suite, setup) = small_setup(vec![
            Baseline::new(ModelConfig::MeanShift),
            Baseline::new(ModelConfig::Copy),
        ]);
        let outcome = run(&suite, &setup, &mut |_| {}).unwrap();
        let names: Vec<&str> = outcome.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(
            names,
            [
                "sccbgm",
                "sccbgm-decoder",
                "copy",
                "mean-shift",
                "oracle-shift",
                "mean-shift",
                "copy"
            ]
        );
        let built_in = &outcome.methods[3];
        let again = &outcome.methods[5];
        assert_eq!(built_in.mse.to_bits(), again.mse.to_bits());
        assert_eq!(built_in.shared_mse.to_bits(), again.shared_mse.to_bits());
        assert_eq!(outcome.methods[2].mse, outcome.methods[6].mse);
        assert_eq!(outcome.methods[6].label, "copy");
        let timed: Vec<&str> = outcome.timings.iter().map(|t| t.method.as_str()).collect();
        assert_eq!(timed, ["mean-shift", "copy"]);
        assert!(outcome.timings.iter().all(|t| t.epochs == 0));
    }
}
