//! ConceptFlow on a held-out synthetic combination: edit mode against
//! the reference's generation (and copying), the file round trip,
//! determinism and refusals.

use super::*;
use crate::flow::testkit::{mse, synthetic};

fn config() -> ConceptFlowConfig {
    ConceptFlowConfig {
        hidden_dim: 32,
        latent_dim: 16,
        n_unknown: 8,
        n_layers: 2,
        cb_layers: 1,
        dropout: 0.0,
        ..ConceptFlowConfig::default()
    }
}

fn train() -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        max_epochs: 60,
        batch_size: 64,
        ..TrainConfig::default()
    }
}

fn fitted(data: &ConceptData, seed: u64) -> ConceptFlow {
    ConceptFlow::fit(
        config(),
        data,
        &train(),
        seed,
        &candle_core::Device::Cpu,
        &mut |_| {},
    )
    .unwrap()
    .0
}

#[test]
fn edit_mode_beats_generation() {
    let held = synthetic();
    let model = fitted(&held.train, 5);
    let edit = model.counterfactual(&held.request()).unwrap();
    assert_eq!(edit.carry, Residual::Keep);
    let decode = model
        .counterfactual(&EditRequest {
            sampling: Some(Sampling {
                mode: FlowMode::Decode,
                seed: 1,
                ..Sampling::default()
            }),
            ..held.request()
        })
        .unwrap();
    assert_eq!(decode.carry, Residual::Discard);
    let (e, d, copy) = (
        held.error(&edit.x),
        held.error(&decode.x),
        held.copy_error(),
    );
    eprintln!("ConceptFlow held out: edit {e:.5}, generation {d:.5}, copying {copy:.5}");
    // The measurement behind the default: generation from the prior loses
    // the cell (its identity only survives through u), 7x worse than the
    // inversion edit here. Neither beats copying on this small set (edit
    // 0.0995 vs copying 0.0719 at 60 epochs): the flow conditions on the
    // *predicted* concepts, which the end-to-end training leaves soft and
    // cell-type-laden for the unseen combination (docs/baselines.md).
    assert!(e < d, "edit {e:.5} vs generation {d:.5}");
    assert!(e < 2.0 * copy, "edit {e:.5} vs copying {copy:.5}");

    // Save → load: identical edits; the same seed the same bytes.
    let bytes = model.to_safetensors().unwrap();
    let loaded =
        ConceptFlow::from_safetensors(config(), model.dims(), &bytes, &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(loaded.counterfactual(&held.request()).unwrap().x, edit.x);
    let small = TrainConfig {
        max_epochs: 2,
        ..train()
    };
    let again = |seed| {
        ConceptFlow::fit(
            config(),
            &held.train,
            &small,
            seed,
            &candle_core::Device::Cpu,
            &mut |_| {},
        )
        .unwrap()
        .0
        .to_safetensors()
        .unwrap()
    };
    assert_eq!(again(3), again(3));
    assert_ne!(again(3), again(4));
}

#[test]
fn encode_decode_and_seeded_generation() {
    let held = synthetic();
    let small = TrainConfig {
        max_epochs: 2,
        ..train()
    };
    let (model, history) = ConceptFlow::fit(
        config(),
        &held.train,
        &small,
        1,
        &candle_core::Device::Cpu,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(history.epochs.len(), 2);
    assert!(history.to_csv().lines().count() == 3);
    let enc = model.encode(held.source.view()).unwrap();
    assert_eq!(enc.known.dim(), held.own.dim());
    assert!(enc.unknown.iter().all(|&v| v >= 0.0));
    let hard = enc.known.iter().all(|&v| (0.0..=1.0).contains(&v));
    assert!(hard, "hard concepts are probabilities");
    // decode is deterministic (the prior mean).
    let a = model.decode(enc.known.view(), enc.unknown.view()).unwrap();
    assert_eq!(
        a,
        model.decode(enc.known.view(), enc.unknown.view()).unwrap()
    );
    // Generation is seeded.
    let run = |seed| {
        model
            .counterfactual(&EditRequest {
                sampling: Some(Sampling {
                    mode: FlowMode::Decode,
                    seed,
                    ..Sampling::default()
                }),
                ..held.request()
            })
            .unwrap()
            .x
    };
    assert_eq!(run(2), run(2));
    assert!(mse(&run(2), &run(3)) > 0.0);
    // Unchanged concepts give the cell back in edit mode.
    let none = Array2::zeros(held.mask.dim());
    let back = model
        .counterfactual(&EditRequest {
            mask: none.view(),
            ..held.request()
        })
        .unwrap()
        .x;
    assert!(mse(&back, &held.source) < 1e-6);
}

#[test]
fn bad_configurations_and_requests_are_refused() {
    let dims = Dims {
        input_dim: 4,
        n_hard: 2,
        n_soft: 1,
    };
    for bad in [
        ConceptFlowConfig {
            hidden_dim: 7,
            ..config()
        },
        ConceptFlowConfig {
            n_layers: 0,
            ..config()
        },
        ConceptFlowConfig {
            kl_hp: -1.0,
            ..config()
        },
        ConceptFlowConfig {
            orthogonality_hp: f64::NAN,
            ..config()
        },
        ConceptFlowConfig {
            dropout: 1.0,
            ..config()
        },
    ] {
        let err = ConceptFlow::new(bad, dims, 0, &candle_core::Device::Cpu).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
    }
    assert_eq!(ConceptFlowConfig::default().orthogonality_hp, 0.2);
    let model = ConceptFlow::new(config(), dims, 0, &candle_core::Device::Cpu).unwrap();
    let x = Array2::zeros((3, 4));
    let short = Array2::zeros((3, 2));
    let request = EditRequest {
        x: x.view(),
        annotations: None,
        values: short.view(),
        mask: short.view(),
        residual: Residual::Keep,
        sampling: None,
    };
    assert!(model.counterfactual(&request).unwrap_err().is_bad_input());
    let wrong = Dims {
        input_dim: 5,
        ..dims
    };
    let bytes = model.to_safetensors().unwrap();
    assert!(
        ConceptFlow::from_safetensors(config(), wrong, &bytes, &candle_core::Device::Cpu).is_err()
    );
}
