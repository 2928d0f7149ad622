//! scGen on a small synthetic data set with exact counterfactual twins:
//! one (cell type, concept) combination is held out of training and the
//! type's other cells are edited into it.

use ndarray::{Array2, Axis};

use super::*;
use crate::model::Annotations;

const N_TYPES: usize = 4;
const HELD_OUT_TYPE: usize = 0;

struct Setup {
    data: conceptlab_synth::SynthDataset,
    /// log1p counts of every cell.
    x: Array2<f32>,
    /// Cell-type one-hot (4 columns) then concept 0 (hard).
    concepts: Array2<f32>,
    /// Cells of the held-out type with concept 0 off: the edit's sources.
    sources: Vec<usize>,
    /// Everything but the held-out (type, concept on) cells.
    training: Vec<usize>,
}

fn setup() -> Setup {
    let mut config = conceptlab_synth::SynthConfig::preset("synthetic_1").unwrap();
    config.n_obs = 1000;
    config.n_vars = 40;
    // Three concepts with strong effects: concept 0's effect is then larger
    // than what the other concepts' type-dependent prevalence adds to the
    // difference of population means (with the preset's eight weak ones no
    // population method, mean shift included, beats copying).
    config.n_concepts = 3;
    config.std_concept = 0.5;
    let data = conceptlab_synth::generate(&config, 11).unwrap();
    let n = data.n_obs();
    let x = Array2::from_shape_fn((n, data.n_vars()), |(i, g)| {
        (data.cell_counts(i)[g] as f32).ln_1p()
    });
    let concepts = Array2::from_shape_fn((n, N_TYPES + 1), |(i, j)| {
        if j < N_TYPES {
            (data.celltype[i] as usize == j) as u8 as f32
        } else {
            data.cell_concepts(i)[0] as f32
        }
    });
    let on = |i: usize| concepts[[i, N_TYPES]] > 0.5;
    let of_type = |i: usize| data.celltype[i] as usize == HELD_OUT_TYPE;
    let sources = (0..n).filter(|&i| of_type(i) && !on(i)).collect();
    let training = (0..n).filter(|&i| !(of_type(i) && on(i))).collect();
    Setup {
        data,
        x,
        concepts,
        sources,
        training,
    }
}

fn small() -> ScGenConfig {
    ScGenConfig {
        hidden_dim: 64,
        latent_dim: 10,
        ..ScGenConfig::default()
    }
}

fn training(max_epochs: usize) -> TrainConfig {
    TrainConfig {
        batch_size: 64,
        max_epochs,
        patience: 10,
        ..default_training()
    }
}

fn fit(s: &Setup, seed: u64, epochs: usize) -> ScGen {
    let c = s.concepts.select(Axis(0), &s.training);
    let data = ConceptData::new(
        s.x.select(Axis(0), &s.training),
        c.clone(),
        Array2::ones(c.dim()),
        N_TYPES + 1,
    )
    .unwrap()
    .with_groups(vec![0..N_TYPES, N_TYPES..N_TYPES + 1])
    .unwrap();
    let mut model = ScGen::new(small(), data.dims(), seed, &candle_core::Device::Cpu).unwrap();
    model.fit(&data, &training(epochs), &mut |_| {}).unwrap();
    model
}

/// The sources with concept 0 set to 1, with or without their residual.
fn edit(model: &ScGen, s: &Setup, cells: &[usize], residual: Residual) -> Array2<f32> {
    let x = s.x.select(Axis(0), cells);
    let own = s.concepts.select(Axis(0), cells);
    let observed = Array2::ones(own.dim());
    let mut values = own.clone();
    values.column_mut(N_TYPES).fill(1.0);
    let mut mask = Array2::zeros(own.dim());
    mask.column_mut(N_TYPES).fill(1.0);
    let request = EditRequest {
        x: x.view(),
        annotations: Some(Annotations {
            values: own.view(),
            observed: observed.view(),
        }),
        values: values.view(),
        mask: mask.view(),
        residual,
        sampling: None,
    };
    model.counterfactual(&request).unwrap().x
}

/// log1p of the sources' exact twins with concept 0 on.
fn twins(s: &Setup) -> Array2<f32> {
    let c = s.data.n_concepts();
    let mut concepts = Vec::with_capacity(s.sources.len() * c);
    for &i in &s.sources {
        let mut v = s.data.cell_concepts(i).to_vec();
        v[0] = 1;
        concepts.extend(v);
    }
    let counts = conceptlab_synth::counterfactual(&s.data, &s.sources, &concepts).unwrap();
    Array2::from_shape_fn((s.sources.len(), s.data.n_vars()), |(i, g)| {
        (counts[i * s.data.n_vars() + g] as f32).ln_1p()
    })
}

fn mse(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    (a - b).mapv(|v| (v as f64).powi(2)).mean().unwrap()
}

#[test]
fn edits_of_held_out_cells_beat_copying_and_survive_a_checkpoint() {
    let s = setup();
    assert!(s.sources.len() >= 20, "{} sources", s.sources.len());
    let model = fit(&s, 3, 100);
    let truth = twins(&s);
    let copy = mse(&s.x.select(Axis(0), &s.sources), &truth);
    let keep = edit(&model, &s, &s.sources, Residual::Keep);
    let discard = edit(&model, &s, &s.sources, Residual::Discard);
    let (keep_mse, discard_mse) = (mse(&keep, &truth), mse(&discard, &truth));
    eprintln!(
        "scgen held-out MSE to twins: copy {copy:.5}, keep residual {keep_mse:.5}, decoder output {discard_mse:.5}"
    );
    // Measured: copy 0.0997, keep 0.0502, decoder output 0.2216 (oracle
    // shift 0.0272, mean-shift 0.0364). The decoder's output loses its
    // cells' detail and does worse than copying; see docs/baselines.md.
    assert!(keep_mse < 0.7 * copy, "keep {keep_mse} vs copy {copy}");
    assert!(discard_mse > keep_mse);

    // Save → load gives the same edits, bit for bit.
    let bytes = model.to_safetensors().unwrap();
    let back = ScGen::from_safetensors(small(), model.dims(), 3, &bytes, &candle_core::Device::Cpu)
        .unwrap();
    assert_eq!(edit(&back, &s, &s.sources, Residual::Keep), keep);
    assert_eq!(back.to_safetensors().unwrap(), bytes);
    // A cell's edit does not depend on the cells edited with it.
    let alone = edit(&model, &s, &s.sources[..1], Residual::Keep);
    assert_eq!(alone.row(0), keep.row(0));
    // A truncated or foreign file is refused.
    assert!(
        ScGen::from_safetensors(
            small(),
            model.dims(),
            3,
            &bytes[..bytes.len() / 2],
            &candle_core::Device::Cpu
        )
        .is_err()
    );
    let other = Dims {
        input_dim: 7,
        ..model.dims()
    };
    assert!(ScGen::from_safetensors(small(), other, 3, &bytes, &candle_core::Device::Cpu).is_err());
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let s = setup();
    let mut short = s;
    short.training.truncate(200);
    let a = fit(&short, 5, 3).to_safetensors().unwrap();
    let b = fit(&short, 5, 3).to_safetensors().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, fit(&short, 6, 3).to_safetensors().unwrap());
}

#[test]
fn unmatched_or_unannotated_cells_are_refused() {
    let s = setup();
    let mut short = s;
    short.training.truncate(200);
    let model = fit(&short, 1, 2);
    let cells = &short.sources[..2];
    let x = short.x.select(Axis(0), cells);
    let mut own = short.concepts.select(Axis(0), cells);
    let observed = Array2::ones(own.dim());
    let values = own.clone();
    let mask = Array2::ones(own.dim());
    // Claim the cells are in the held-out combination: no training cell is.
    own.column_mut(N_TYPES).fill(1.0);
    let request = EditRequest {
        x: x.view(),
        annotations: Some(Annotations {
            values: own.view(),
            observed: observed.view(),
        }),
        values: values.view(),
        mask: mask.view(),
        residual: Residual::Keep,
        sampling: None,
    };
    let err = model.counterfactual(&request).unwrap_err().to_string();
    assert!(
        err.contains("cell 0") && err.contains("no training cell has the current values"),
        "{err}"
    );
    let err = model
        .counterfactual(&EditRequest {
            annotations: None,
            ..request
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("annotations"), "{err}");
    // An unfitted model has nothing to edit with or save.
    let fresh = ScGen::new(small(), model.dims(), 1, &candle_core::Device::Cpu).unwrap();
    assert!(fresh.counterfactual(&request).is_err());
    assert!(fresh.to_safetensors().is_err());
    // Bad configurations never build.
    let bad = ScGenConfig {
        dropout: 1.5,
        ..small()
    };
    assert!(ScGen::new(bad, model.dims(), 1, &candle_core::Device::Cpu).is_err());
}
