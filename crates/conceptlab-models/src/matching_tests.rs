//! `cinemaot` and `nearest` on small synthetic data with exact
//! counterfactual twins: a held-out (cell type, concept) combination, and a
//! seen one (the edited cells' type has treated cells in training), which
//! is where matching onto observed cells can work.

use conceptlab_synth::{Role, SynthConfig, benchmark_split, counterfactual, generate};
use ndarray::{Array2, Axis};

use crate::cinemaot::{CinemaOt, CinemaOtConfig, RowWeights};
use crate::model::{Annotations, Counterfactual, EditRequest, Model, Residual};
use crate::nearest::NearestPopulation;
use crate::registry::{self, ModelConfig};
use crate::{ConceptData, ModelError};

/// Synthetic concepts (binary) then the cell type (one-hot), all observed.
struct Bench {
    train: ConceptData,
    /// The held-out combination's cells to edit, their annotations and twins.
    held_out: Edit,
    /// Training cells of a seen combination with the concept off, and twins.
    seen: Edit,
    /// The cell type's one-hot columns.
    types: std::ops::Range<usize>,
}

struct Edit {
    x: Array2<f32>,
    annotations: Array2<f32>,
    twins: Array2<f32>,
    concept: usize,
    celltype: usize,
}

fn log1p(counts: &[u32], cols: usize) -> Array2<f32> {
    Array2::from_shape_vec(
        (counts.len() / cols, cols),
        counts.iter().map(|&c| (c as f32).ln_1p()).collect(),
    )
    .unwrap()
}

fn bench() -> Bench {
    let config = SynthConfig {
        n_obs: 500,
        n_vars: 40,
        n_celltypes: 3,
        n_concepts: 3,
        std_concept: 0.6,
        std_celltype: 0.4,
        benchmark: conceptlab_synth::BenchmarkConfig {
            n_hold_out: 1,
            min_cells: 10,
        },
        ..SynthConfig::default()
    };
    let data = generate(&config, 11).unwrap();
    let split = benchmark_split(&data).unwrap().remove(0);
    let (c, u, g) = (config.n_concepts, config.n_celltypes, config.n_vars);
    let annotation = |cell: usize| -> Vec<f32> {
        let mut row: Vec<f32> = data
            .cell_concepts(cell)
            .iter()
            .map(|&v| f32::from(v))
            .collect();
        row.extend((0..u).map(|t| f32::from(u8::from(data.celltype[cell] as usize == t))));
        row
    };
    let rows_of = |cells: &[usize]| {
        Array2::from_shape_vec(
            (cells.len(), c + u),
            cells.iter().flat_map(|&n| annotation(n)).collect(),
        )
        .unwrap()
    };
    let counts_of = |cells: &[usize]| -> Vec<u32> {
        cells
            .iter()
            .flat_map(|&n| data.cell_counts(n).to_vec())
            .collect()
    };
    let train_cells: Vec<usize> = (0..data.n_obs())
        .filter(|&n| split.roles[n] == Role::Train)
        .collect();
    let concepts = rows_of(&train_cells);
    let train = ConceptData::new(
        log1p(&counts_of(&train_cells), g),
        concepts.clone(),
        Array2::ones(concepts.dim()),
        c + u,
    )
    .unwrap()
    .with_groups(
        (0..c)
            .map(|j| j..j + 1)
            .chain(std::iter::once(c..c + u))
            .collect(),
    )
    .unwrap();
    let held_out = Edit {
        x: log1p(&counts_of(&split.modify), g),
        annotations: rows_of(&split.modify),
        twins: log1p(&split.twins, g),
        concept: split.concept,
        celltype: split.celltype,
    };
    // A seen combination: another type, the same concept, cells with it off.
    let other = (0..u).find(|&t| t != split.celltype).unwrap();
    let seen_cells: Vec<usize> = train_cells
        .iter()
        .copied()
        .filter(|&n| {
            data.celltype[n] as usize == other && data.cell_concepts(n)[split.concept] == 0
        })
        .take(40)
        .collect();
    let on: Vec<u8> = seen_cells
        .iter()
        .flat_map(|&n| {
            let mut v = data.cell_concepts(n).to_vec();
            v[split.concept] = 1;
            v
        })
        .collect();
    let seen = Edit {
        x: log1p(&counts_of(&seen_cells), g),
        annotations: rows_of(&seen_cells),
        twins: log1p(&counterfactual(&data, &seen_cells, &on).unwrap(), g),
        concept: split.concept,
        celltype: other,
    };
    Bench {
        train,
        held_out,
        seen,
        types: c..c + u,
    }
}

fn edit_of(model: &dyn Counterfactual, e: &Edit) -> Result<Array2<f32>, ModelError> {
    let (values, mask) = targets(e);
    let observed = Array2::ones(e.annotations.dim());
    Ok(model
        .counterfactual(&EditRequest {
            x: e.x.view(),
            annotations: Some(Annotations {
                values: e.annotations.view(),
                observed: observed.view(),
            }),
            values: values.view(),
            mask: mask.view(),
            residual: Residual::Discard,
            sampling: None,
        })?
        .x)
}

fn targets(e: &Edit) -> (Array2<f32>, Array2<f32>) {
    let mut values = e.annotations.clone();
    let mut mask = Array2::zeros(values.dim());
    values.column_mut(e.concept).fill(1.0);
    mask.column_mut(e.concept).fill(1.0);
    (values, mask)
}

/// Cell-level MSE against the twins.
fn cell_mse(pred: &Array2<f32>, twins: &Array2<f32>) -> f64 {
    (pred - twins).mapv(|v| f64::from(v * v)).mean().unwrap()
}

/// Squared distance between the mean prediction and the twins' mean.
fn mean_error(pred: &Array2<f32>, twins: &Array2<f32>) -> f64 {
    let d = pred.mean_axis(Axis(0)).unwrap() - twins.mean_axis(Axis(0)).unwrap();
    d.mapv(|v| f64::from(v * v)).sum()
}

fn report(name: &str, pred: &Array2<f32>, e: &Edit) -> (f64, f64, f64, f64) {
    let r = (
        cell_mse(pred, &e.twins),
        cell_mse(&e.x, &e.twins),
        mean_error(pred, &e.twins),
        mean_error(&e.x, &e.twins),
    );
    println!(
        "{name}: cell MSE {:.4} (copy {:.4}); mean error {:.4} (copy {:.4})",
        r.0, r.1, r.2, r.3
    );
    r
}

/// Which cell type each predicted cell is nearest to among the training
/// type means (held-out predictions land on other types' cells).
fn nearest_type(
    pred: &Array2<f32>,
    train: &ConceptData,
    types: std::ops::Range<usize>,
) -> Vec<usize> {
    let means: Vec<_> = types
        .clone()
        .map(|t| {
            let rows: Vec<usize> = (0..train.n_cells())
                .filter(|&i| train.concepts[[i, t]] > 0.5)
                .collect();
            train.x.select(Axis(0), &rows).mean_axis(Axis(0)).unwrap()
        })
        .collect();
    pred.rows()
        .into_iter()
        .map(|row| {
            (0..means.len())
                .min_by(|&a, &b| {
                    let da = (&row - &means[a]).mapv(|v| v * v).sum();
                    let db = (&row - &means[b]).mapv(|v| v * v).sum();
                    da.total_cmp(&db)
                })
                .unwrap()
        })
        .collect()
}

#[test]
fn cinemaot_beats_copying_on_a_seen_combination_and_maps_held_out_cells_elsewhere() {
    let b = bench();
    let model = CinemaOt::fit(&CinemaOtConfig::default(), &b.train, 7).unwrap();
    let seen = edit_of(&model, &b.seen).unwrap();
    let (_, _, mean, copy_mean) = report("cinemaot seen", &seen, &b.seen);
    assert!(mean < 0.5 * copy_mean, "{mean} vs copy {copy_mean}");
    let held = edit_of(&model, &b.held_out).unwrap();
    report("cinemaot held-out", &held, &b.held_out);
    // No training cell of the held-out type has the concept on, so the
    // predictions are other types' treated cells.
    let types = nearest_type(&held, &b.train, b.types.clone());
    let own = types.iter().filter(|&&t| t == b.held_out.celltype).count();
    println!(
        "held-out predictions nearest their own type: {own} of {}",
        types.len()
    );
    assert!(
        4 * own < types.len(),
        "{own} of {} stayed with their own type",
        types.len()
    );
    // Each prediction is a convex combination of treated training cells:
    // inside their per-feature range.
    let treated: Vec<usize> = (0..b.train.n_cells())
        .filter(|&i| b.train.concepts[[i, b.held_out.concept]] > 0.5)
        .collect();
    let tx = b.train.x.select(Axis(0), &treated);
    for (j, col) in held.columns().into_iter().enumerate() {
        let lo = tx.column(j).fold(f32::INFINITY, |a, &v| a.min(v));
        let hi = tx.column(j).fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        assert!(col.iter().all(|&v| v >= lo - 1e-4 && v <= hi + 1e-4));
    }
}

/// The reference's mean-row-sum rule against the per-row one, with Sinkhorn
/// converged (default settings) and stopped early (20 iterations).
#[test]
fn per_row_weights_match_the_mean_row_sum_when_converged_and_beat_it_when_not() {
    let b = bench();
    for max_iter in [2000, 20] {
        let config = CinemaOtConfig {
            max_iter,
            ..CinemaOtConfig::default()
        };
        let model = CinemaOt::fit(&config, &b.train, 7).unwrap();
        let (values, mask) = targets(&b.seen);
        let observed = Array2::ones(b.seen.annotations.dim());
        let request = EditRequest {
            x: b.seen.x.view(),
            annotations: Some(Annotations {
                values: b.seen.annotations.view(),
                observed: observed.view(),
            }),
            values: values.view(),
            mask: mask.view(),
            residual: Residual::Discard,
            sampling: None,
        };
        let per_row = model
            .counterfactual_with(&request, RowWeights::PerRow)
            .unwrap();
        let mean_sum = model
            .counterfactual_with(&request, RowWeights::MeanRowSum)
            .unwrap();
        let (r, _, rm, _) = report(&format!("per-row, max_iter {max_iter}"), &per_row, &b.seen);
        let (m, _, mm, _) = report(
            &format!("mean row sum, max_iter {max_iter}"),
            &mean_sum,
            &b.seen,
        );
        if max_iter == 2000 {
            // Converged marginals: the two rules agree to within 0.1 %.
            assert!((r - m).abs() < 1e-3 * m && (rm - mm).abs() < 1e-3 * mm);
        } else {
            // Stopped early, the mean-sum rule scales each cell by its row's
            // mass: cells move off the data although the mean barely moves.
            assert!(r < 0.6 * m, "cell MSE per-row {r}, mean row sum {m}");
        }
    }
}

fn registry_fit(config: &ModelConfig, data: &ConceptData, seed: u64) -> Box<dyn Model> {
    registry::fit(
        config,
        data,
        &crate::TrainConfig::default(),
        seed,
        &candle_core::Device::Cpu,
        &mut |_| {},
    )
    .unwrap()
    .model
}

#[test]
fn both_round_trip_through_checkpoint_bytes_and_repeat_under_a_seed() {
    let b = bench();
    for config in [
        ModelConfig::CinemaOt(CinemaOtConfig::default()),
        ModelConfig::Nearest,
    ] {
        let model = registry_fit(&config, &b.train, 5);
        assert!(model.reads_annotations());
        let bytes = model.to_safetensors().unwrap();
        let back =
            registry::load(&config, model.dims(), 5, &bytes, &candle_core::Device::Cpu).unwrap();
        let again = registry_fit(&config, &b.train, 5);
        assert_eq!(again.to_safetensors().unwrap(), bytes);
        let edit = edit_of(model.as_ref(), &b.held_out).unwrap();
        assert_eq!(edit_of(back.as_ref(), &b.held_out).unwrap(), edit);
        assert_eq!(edit_of(again.as_ref(), &b.held_out).unwrap(), edit);
        assert_ne!(edit, b.held_out.x);
        // A truncated file is refused.
        assert!(
            registry::load(
                &config,
                model.dims(),
                5,
                &bytes[..bytes.len() / 2],
                &candle_core::Device::Cpu
            )
            .is_err()
        );
    }
}

#[test]
fn bad_settings_and_missing_annotations_are_refused() {
    let b = bench();
    for bad in [
        CinemaOtConfig {
            thres: 0.0,
            ..CinemaOtConfig::default()
        },
        CinemaOtConfig {
            thres: f64::NAN,
            ..CinemaOtConfig::default()
        },
        CinemaOtConfig {
            eps: 0.0,
            ..CinemaOtConfig::default()
        },
        CinemaOtConfig {
            smoothness: -1.0,
            ..CinemaOtConfig::default()
        },
        CinemaOtConfig {
            n_components: 0,
            ..CinemaOtConfig::default()
        },
        CinemaOtConfig {
            n_components: 100_000,
            ..CinemaOtConfig::default()
        },
        CinemaOtConfig {
            max_iter: 0,
            ..CinemaOtConfig::default()
        },
    ] {
        let settings = crate::ModelSettings {
            cinemaot: bad.clone(),
            ..Default::default()
        };
        assert!(
            matches!(settings.validate(), Err(ModelError::Config(_))),
            "{bad:?}"
        );
        let err = registry::fit(
            &ModelConfig::CinemaOt(bad),
            &b.train,
            &crate::TrainConfig::default(),
            1,
            &candle_core::Device::Cpu,
            &mut |_| {},
        );
        assert!(matches!(err, Err(ModelError::Config(_))));
    }
    for config in [
        ModelConfig::CinemaOt(CinemaOtConfig::default()),
        ModelConfig::Nearest,
    ] {
        let model = registry_fit(&config, &b.train, 5);
        let e = &b.held_out;
        let (values, mask) = targets(e);
        let mut observed = Array2::ones(e.annotations.dim());
        let request = |annotations| EditRequest {
            x: e.x.view(),
            annotations,
            values: values.view(),
            mask: mask.view(),
            residual: Residual::Discard,
            sampling: None,
        };
        let none = model
            .counterfactual(&request(None))
            .unwrap_err()
            .to_string();
        assert!(none.contains("annotations"), "{none}");
        observed[[2, e.concept]] = 0.0;
        let missing = model
            .counterfactual(&request(Some(Annotations {
                values: e.annotations.view(),
                observed: observed.view(),
            })))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cell 2") && missing.contains(&format!("column {}", e.concept)),
            "{missing}"
        );
    }
}

#[test]
fn nearest_returns_cells_of_one_target_population() {
    let b = bench();
    let model = NearestPopulation::fit(&b.train).unwrap();
    for (name, e) in [("seen", &b.seen), ("held-out", &b.held_out)] {
        let pred = edit_of(&model, e).unwrap();
        let (_, _, mean, copy_mean) = report(&format!("nearest {name}"), &pred, e);
        if name == "seen" {
            // The type has treated training cells: the population is right.
            assert!(mean < 0.5 * copy_mean, "{mean} vs copy {copy_mean}");
        }
        // Every prediction is a training cell with the concept on, all of
        // one annotation pattern.
        let rows: Vec<usize> = pred
            .rows()
            .into_iter()
            .map(|p| {
                (0..b.train.n_cells())
                    .find(|&i| b.train.x.row(i) == p)
                    .expect("a training cell")
            })
            .collect();
        assert!(
            rows.iter()
                .all(|&i| b.train.concepts[[i, e.concept]] == 1.0)
        );
        let first = b.train.concepts.row(rows[0]).to_owned();
        assert!(rows.iter().all(|&i| b.train.concepts.row(i) == first));
        // Each is the nearest member of that population to its source cell.
        let members: Vec<usize> = (0..b.train.n_cells())
            .filter(|&i| b.train.concepts.row(i) == first)
            .collect();
        for (src, &got) in e.x.rows().into_iter().zip(&rows) {
            let d = |i: usize| (&src - &b.train.x.row(i)).mapv(|v| v * v).sum();
            assert!(members.iter().all(|&m| d(got) <= d(m)));
        }
    }
}
