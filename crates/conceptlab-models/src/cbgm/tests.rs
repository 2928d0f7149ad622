//! CBGM's behaviour on a small additive data set whose counterfactuals are
//! exact: held-out edits, checkpoints, determinism, refusals.

use std::sync::OnceLock;

use conceptlab_core::random::{standard_normal, stream_rng};
use ndarray::{Array2, Axis};

use super::*;
use crate::model::Residual;
use crate::registry::{self, ModelConfig};

const G: usize = 12;
const N: usize = 480;
/// Concept columns: 0 = the edited concept, 1 = another binary concept,
/// 2..5 = one-hot cell type.
const K: usize = 5;

fn effect(k: usize, j: usize) -> f32 {
    (1.3 * (k as f32 + 1.0) + 0.7 * j as f32).sin() * 1.5
}

/// x = Σ_k c_k·w_k + 0.3·ε: a concept's effect is the same in every cell
/// type, so a cell's twin with concept 0 turned on is x + w_0, exactly.
fn cells() -> (Array2<f32>, Array2<f32>) {
    let mut rng = stream_rng(7, 0);
    let mut x = Array2::zeros((N, G));
    let mut c = Array2::zeros((N, K));
    for i in 0..N {
        c[[i, 0]] = ((i * 7 + i / 5) % 2) as f32;
        c[[i, 1]] = ((i / 3) % 2) as f32;
        c[[i, 2 + i % 3]] = 1.0;
        for j in 0..G {
            let signal: f32 = (0..K).map(|k| c[[i, k]] * effect(k, j)).sum();
            x[[i, j]] = signal + 0.3 * standard_normal(&mut rng) as f32;
        }
    }
    (x, c)
}

/// Every fourth cell is held out of training.
fn held_out(i: usize) -> bool {
    i.is_multiple_of(4)
}

fn training() -> ConceptData {
    let (x, c) = cells();
    let rows: Vec<usize> = (0..N).filter(|&i| !held_out(i)).collect();
    let c = c.select(Axis(0), &rows);
    let observed = Array2::ones(c.dim());
    ConceptData::new(x.select(Axis(0), &rows), c, observed, K).unwrap()
}

fn config() -> CbgmConfig {
    CbgmConfig {
        hidden_dim: 32,
        latent_dim: 8,
        n_unknown: 10,
        concepts_hp: 0.5,
        ..CbgmConfig::default()
    }
}

fn train_config() -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        batch_size: 64,
        max_epochs: 40,
        patience: 40,
        ..TrainConfig::default()
    }
}

fn fit(seed: u64) -> registry::Fit {
    registry::fit(
        &ModelConfig::Cbgm(config()),
        &training(),
        &train_config(),
        seed,
        &candle_core::Device::Cpu,
        &mut |_| {},
    )
    .unwrap()
}

fn trained() -> &'static registry::Fit {
    static FIT: OnceLock<registry::Fit> = OnceLock::new();
    FIT.get_or_init(|| fit(3))
}

/// The held-out cells without concept 0, the edit turning it on, and their
/// twins.
fn edit_case() -> (Array2<f32>, Array2<f32>, Array2<f32>, Array2<f32>) {
    let (x, c) = cells();
    let rows: Vec<usize> = (0..N)
        .filter(|&i| held_out(i) && c[[i, 0]] == 0.0)
        .collect();
    let source = x.select(Axis(0), &rows);
    let mut values = c.select(Axis(0), &rows);
    values.column_mut(0).fill(1.0);
    let mut mask = Array2::zeros(values.dim());
    mask.column_mut(0).fill(1.0);
    let shift = ndarray::Array1::from_iter((0..G).map(|j| effect(0, j)));
    let twins = &source + &shift;
    (source, values, mask, twins)
}

fn edit(model: &dyn Model, residual: Residual) -> Array2<f32> {
    let (source, values, mask, _) = edit_case();
    let request = EditRequest {
        x: source.view(),
        annotations: None,
        values: values.view(),
        mask: mask.view(),
        residual,
        sampling: None,
    };
    model.counterfactual(&request).unwrap().x
}

fn mse(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    (a - b).mapv(|v| (v as f64).powi(2)).mean().unwrap()
}

/// CBGM's edits move held-out cells toward their twins, but only a little
/// (measured: 1.156 against copying's 1.205 with the residual kept): a
/// concept's positive embedding s⁺ is trained only through cells whose
/// predicted probability is high, so turning the concept on in a cell that
/// lacks it mixes in a context the generator never learned for that cell.
/// This is the reference's CBGM (no training-time interventions); it is why
/// CBGM trails scCBGM (docs/noisy-concepts.md, docs/results.md).
#[test]
fn edits_of_held_out_cells_move_toward_the_twins() {
    let fit = trained();
    let (source, _, _, twins) = edit_case();
    let copy = mse(&source, &twins);
    let err = mse(&edit(&*fit.model, Residual::Keep), &twins);
    assert!(
        err < 0.99 * copy,
        "CBGM error {err:.4} vs copying {copy:.4}"
    );
}

#[test]
fn save_then_load_gives_identical_edits() {
    let fit = trained();
    let bytes = fit.model.to_safetensors().unwrap();
    let loaded = registry::load(
        &fit.model.config(),
        fit.model.dims(),
        999,
        &bytes,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(loaded.kind(), ModelKind::Cbgm);
    assert!(loaded.kind().is_bottleneck());
    for residual in [Residual::Keep, Residual::Discard] {
        assert_eq!(edit(&*fit.model, residual), edit(&*loaded, residual));
    }
    assert_eq!(loaded.to_safetensors().unwrap(), bytes);
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = fit(11);
    let b = fit(11);
    assert_eq!(
        a.model.to_safetensors().unwrap(),
        b.model.to_safetensors().unwrap()
    );
    assert_eq!(a.history_csv, b.history_csv);
    let other = Cbgm::new(config(), training().dims(), 12, &candle_core::Device::Cpu).unwrap();
    assert_ne!(
        a.model.to_safetensors().unwrap(),
        Model::to_safetensors(&other).unwrap()
    );
}

#[test]
fn encode_then_decode_reconstructs_and_an_empty_edit_keeps_the_cell() {
    let fit = trained();
    let cm = fit.model.as_concept_model().unwrap();
    let (source, values, _, _) = edit_case();
    let enc = cm.encode(source.view()).unwrap();
    assert_eq!(enc.unknown.ncols(), cm.unknown_dim());
    // U = 10 (e = 2), then K·2e = 20 context values.
    assert_eq!(cm.unknown_dim(), 10 + 20);
    assert!(enc.known.iter().all(|p| (0.0..=1.0).contains(p)));
    let rec = cm.decode(enc.known.view(), enc.unknown.view()).unwrap();
    // The decoder output at z = μ: an edit that sets nothing returns it.
    let none = Array2::zeros(values.dim());
    let same = cm
        .edit(source.view(), values.view(), none.view(), Residual::Discard)
        .unwrap();
    assert_eq!(rec, same);
    let kept = cm
        .edit(source.view(), values.view(), none.view(), Residual::Keep)
        .unwrap();
    assert!(mse(&kept, &source) < 1e-10);
    // The model recognises the cell types of cells it never saw.
    let right = (0..values.nrows())
        .filter(|&i| (2..5).all(|j| (enc.known[[i, j]] > 0.5) == (values[[i, j]] == 1.0)))
        .count();
    assert!(
        right * 10 >= values.nrows() * 9,
        "{right} of {}",
        values.nrows()
    );
}

#[test]
fn targets_outside_the_unit_interval_are_refused() {
    let fit = trained();
    let (source, mut values, mask, _) = edit_case();
    values[[0, 0]] = 1.5;
    let request = EditRequest {
        x: source.view(),
        annotations: None,
        values: values.view(),
        mask: mask.view(),
        residual: Residual::Keep,
        sampling: None,
    };
    let err = fit.model.counterfactual(&request).unwrap_err().to_string();
    assert!(err.contains("[0, 1]") && err.contains("1.5"), "{err}");
}

#[test]
fn bad_sizes_are_refused_before_training() {
    let dims = training().dims();
    let err = Cbgm::new(
        CbgmConfig {
            latent_dim: 0,
            ..config()
        },
        dims,
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("latent_dim"), "{err}");
    let none = Dims {
        input_dim: G,
        n_hard: 0,
        n_soft: 0,
    };
    let err = Cbgm::new(config(), none, 0, &candle_core::Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least one concept"), "{err}");
    let mut model = Cbgm::new(
        config(),
        Dims {
            input_dim: G + 1,
            ..dims
        },
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let err = model
        .fit(&training(), &train_config(), 0, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("features"), "{err}");
}
