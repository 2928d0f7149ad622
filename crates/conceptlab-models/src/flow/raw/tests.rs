//! raw-fm on a held-out synthetic combination, its file round trip,
//! determinism and refusals.

use super::*;
use crate::flow::testkit::{Held, synthetic};
use crate::flow::{FlowMode, Sampling};
use crate::model::Annotations;
use ndarray::Array2;

fn config() -> RawFmConfig {
    RawFmConfig {
        network: FlowConfig {
            emb_dim: 32,
            n_layers: 2,
            dropout: 0.0,
            ..FlowConfig::default()
        },
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

fn fitted(held: &Held, seed: u64) -> RawFm {
    RawFm::fit(
        config(),
        &held.train,
        &train(),
        seed,
        &candle_core::Device::Cpu,
        &mut |_| {},
    )
    .unwrap()
    .0
}

#[test]
fn edits_beat_copying_round_trip_and_are_seeded() {
    let held = synthetic();
    let model = fitted(&held, 5);
    let edited = model.counterfactual(&held.request()).unwrap();
    assert_eq!(edited.carry, Residual::Keep);
    let (err, copy) = (held.error(&edited.x), held.copy_error());
    eprintln!("raw-fm held out: edit {err:.5}, copying {copy:.5}");
    assert!(err < copy, "raw-fm {err:.5} vs copying {copy:.5}");

    // Unchanged concepts give the cell back (an inversion, not a decode).
    let none = Array2::zeros(held.mask.dim());
    let same = EditRequest {
        mask: none.view(),
        ..held.request()
    };
    let back = model.counterfactual(&same).unwrap().x;
    assert!(crate::flow::testkit::mse(&back, &held.source) < 1e-6);

    // Save → load gives identical edits; the same seed the same bytes.
    let bytes = model.to_safetensors().unwrap();
    let loaded =
        RawFm::from_safetensors(config(), model.dims(), &bytes, &candle_core::Device::Cpu).unwrap();
    assert_eq!(loaded.counterfactual(&held.request()).unwrap().x, edited.x);
    assert_eq!(fitted(&held, 5).to_safetensors().unwrap(), bytes);
    assert_ne!(fitted(&held, 6).to_safetensors().unwrap(), bytes);

    // Decode mode makes new cells, seeded.
    let decode = Sampling {
        mode: FlowMode::Decode,
        seed: 2,
        ..Sampling::default()
    };
    let request = EditRequest {
        sampling: Some(decode),
        ..held.request()
    };
    let a = model.counterfactual(&request).unwrap();
    assert_eq!(a.carry, Residual::Discard);
    assert_eq!(model.counterfactual(&request).unwrap().x, a.x);
}

#[test]
fn missing_annotations_are_conditioned_or_refused() {
    let held = synthetic();
    let mut train = held.train.clone();
    // Column 5 is missing for some training cells, column 6 never.
    for i in (0..train.n_cells()).step_by(3) {
        train.observed[[i, 5]] = 0.0;
    }
    let small = TrainConfig {
        max_epochs: 2,
        ..self::train()
    };
    let (model, _) = RawFm::fit(
        config(),
        &train,
        &small,
        1,
        &candle_core::Device::Cpu,
        &mut |_| {},
    )
    .unwrap();
    let mut observed = held.observed.clone();
    observed.column_mut(5).fill(0.0);
    let request = EditRequest {
        annotations: Some(Annotations {
            values: held.own.view(),
            observed: observed.view(),
        }),
        ..held.request()
    };
    assert!(model.counterfactual(&request).is_ok());
    observed.column_mut(6).fill(0.0);
    let request = EditRequest {
        annotations: Some(Annotations {
            values: held.own.view(),
            observed: observed.view(),
        }),
        ..held.request()
    };
    let err = model.counterfactual(&request).unwrap_err();
    assert!(
        err.is_bad_input() && err.to_string().contains("column 6"),
        "{err}"
    );
    // No annotations at all: refused, saying what is missing.
    let err = model
        .counterfactual(&EditRequest {
            annotations: None,
            ..held.request()
        })
        .unwrap_err();
    assert!(err.to_string().contains("annotations"), "{err}");
    // The missing mask is part of the condition: the same values with a
    // different mask are a different condition.
    let c1 = raw_condition(held.own.view(), held.observed.view()).unwrap();
    let c2 = raw_condition(held.own.view(), observed.view()).unwrap();
    assert_eq!(c1.ncols(), 2 * held.own.ncols());
    assert_ne!(c1, c2);
}

#[test]
fn bad_configurations_are_refused() {
    let dims = Dims {
        input_dim: 4,
        n_hard: 2,
        n_soft: 0,
    };
    for network in [
        FlowConfig {
            emb_dim: 0,
            ..FlowConfig::default()
        },
        FlowConfig {
            emb_dim: 7,
            ..FlowConfig::default()
        },
        FlowConfig {
            dropout: 1.0,
            ..FlowConfig::default()
        },
    ] {
        let err =
            RawFm::new(RawFmConfig { network }, dims, 0, &candle_core::Device::Cpu).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
    }
    let none = Dims { n_hard: 0, ..dims };
    assert!(RawFm::new(RawFmConfig::default(), none, 0, &candle_core::Device::Cpu).is_err());
}

#[test]
fn both_names_are_one_kind_in_the_registry() {
    use crate::registry::{KINDS, lookup};
    assert_eq!(lookup("raw-fm").unwrap().kind, ModelKind::RawFm);
    assert_eq!(lookup("vanilla-fm").unwrap().kind, ModelKind::RawFm);
    assert_eq!(
        KINDS.iter().filter(|k| k.kind == ModelKind::RawFm).count(),
        2
    );
    assert_eq!(ModelKind::RawFm.name(), "raw-fm");
    assert!(ModelKind::RawFm.is_flow() && !ModelKind::RawFm.is_bottleneck());
    let config: ModelConfig = serde_json::from_str(r#"{"kind": "vanilla-fm"}"#).unwrap();
    assert_eq!(config, ModelConfig::RawFm(RawFmConfig::default()));
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains(r#""kind":"raw-fm""#), "{json}");
}
