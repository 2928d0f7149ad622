//! trVAE on the small synthetic zero-shot benchmark of the scCVAE tests;
//! checkpoints, seeds and refusals.

use std::collections::HashSet;

use ndarray::{Array2, Axis};

use super::{TrVaeConfig, pattern};
use crate::ConceptData;
use crate::cvae::tests::{bench, edit, mse, tiny, trained, training};
use crate::model::Residual;
use crate::registry::{ModelConfig, ModelSettings, fit, load};
use crate::train::EpochReport;

fn small() -> TrVaeConfig {
    TrVaeConfig {
        encoder_widths: vec![64, 16],
        decoder_widths: vec![16, 64],
        latent_dim: 8,
        dropout: 0.0,
        // With 30 genes the per-cell squared error is small next to the
        // default MMD weight (set for thousands of genes): at 10 or 0.1 the
        // first decoder layer collapsed to a constant (the small-bandwidth
        // kernels reward identical points), every edit a copy.
        mmd_weight: 1e-3,
        // The test features are log1p counts, non-negative: the
        // reference's ReLU output applies.
        output_relu: true,
        ..TrVaeConfig::default()
    }
}

#[test]
fn trvae_edits_held_out_cells_closer_to_their_twins_than_copying() {
    let b = bench();
    let model = trained(&ModelConfig::TrVae(small()), &b.train, 40, 3);
    // trVAE decodes only patterns seen in training: score the cells whose
    // edited pattern some training cell had.
    let seen: HashSet<Vec<u8>> = b.train.concepts.rows().into_iter().map(pattern).collect();
    let rows: Vec<usize> = (0..b.target.nrows())
        .filter(|&i| seen.contains(&pattern(b.target.row(i))))
        .collect();
    assert!(rows.len() >= 10, "{} cells", rows.len());
    let pick = |a: &Array2<f32>| a.select(Axis(0), &rows);
    let (source, concepts, target, twins) = (
        pick(&b.source),
        pick(&b.concepts),
        pick(&b.target),
        pick(&b.twins),
    );
    let observed = Array2::ones(concepts.dim());
    let run = |residual| {
        let out = edit(
            &*model,
            source.view(),
            Some((&concepts, &observed)),
            &target,
            residual,
        );
        mse(&out.unwrap(), &twins)
    };
    let copy = mse(&source, &twins);
    let (keep, discard) = (run(Residual::Keep), run(Residual::Discard));
    eprintln!(
        "trvae ({} of {} cells): copy {copy:.5}, keep {keep:.5}, discard {discard:.5}",
        rows.len(),
        b.target.nrows()
    );
    // Measured 0.86 × copy (the BN/dropout network underfits in 40 epochs).
    assert!(keep < 0.9 * copy, "keep {keep} vs copy {copy}");
}

#[test]
fn trvae_checkpoint_round_trips_and_seeds_fix_every_byte() {
    let data = tiny();
    let b = bench();
    let config = ModelConfig::TrVae(small());
    let model = trained(&config, &data, 2, 5);
    let bytes = model.to_safetensors().unwrap();
    let back = load(&config, model.dims(), 5, &bytes, &candle_core::Device::Cpu).unwrap();
    assert_eq!(back.to_safetensors().unwrap(), bytes);
    // The running statistics moved and travel with the weights.
    let tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).unwrap();
    let var = tensors["encoder.0.norm.running_var"]
        .to_vec1::<f32>()
        .unwrap();
    assert!(var.iter().any(|v| (v - 1.0).abs() > 1e-3), "{var:?}");
    let observed = Array2::ones(b.concepts.dim());
    let own = Some((&b.concepts, &observed));
    let a = edit(&*model, b.source.view(), own, &b.target, Residual::Keep);
    let c = edit(&*back, b.source.view(), own, &b.target, Residual::Keep);
    match (a, c) {
        (Ok(a), Ok(c)) => assert_eq!(a, c),
        // The tiny training set may lack the target pattern: both refuse.
        (Err(a), Err(c)) => assert_eq!(a.to_string(), c.to_string()),
        (a, c) => panic!("{:?} vs {:?}", a.is_ok(), c.is_ok()),
    }
    assert_eq!(
        trained(&config, &data, 2, 5).to_safetensors().unwrap(),
        bytes
    );
    assert_ne!(
        trained(&config, &data, 2, 6).to_safetensors().unwrap(),
        bytes
    );
}

#[test]
fn trvae_refuses_bad_configs_soft_concepts_negative_features_and_unseen_patterns() {
    let data = tiny();
    for bad in [
        TrVaeConfig {
            encoder_widths: vec![],
            ..small()
        },
        TrVaeConfig {
            decoder_widths: vec![0],
            ..small()
        },
        TrVaeConfig {
            momentum: 0.0,
            ..small()
        },
        TrVaeConfig {
            dropout: 1.0,
            ..small()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        let settings = ModelSettings {
            trvae: bad.clone(),
            ..ModelSettings::default()
        };
        assert!(settings.validate().is_err());
    }
    let run = |config: TrVaeConfig, data: &ConceptData| {
        fit(
            &ModelConfig::TrVae(config),
            data,
            &training(1),
            0,
            &candle_core::Device::Cpu,
            &mut |_: &EpochReport| {},
        )
        .map(|f| f.model)
    };
    let soft = ConceptData::new(
        data.x.clone(),
        data.concepts.clone(),
        data.observed.clone(),
        3,
    )
    .unwrap();
    let err = run(small(), &soft).unwrap_err().to_string();
    assert!(err.contains("soft"), "{err}");
    let negative = ConceptData::new(
        data.x.mapv(|v| v - 1.0),
        data.concepts.clone(),
        data.observed.clone(),
        4,
    )
    .unwrap();
    let err = run(small(), &negative).unwrap_err().to_string();
    assert!(err.contains("negative"), "{err}");
    assert!(
        run(
            TrVaeConfig {
                output_relu: false,
                ..small()
            },
            &negative
        )
        .is_ok()
    );
    // A pattern no training cell had cannot be decoded.
    let rows: Vec<usize> = (0..data.n_cells())
        .filter(|&i| data.concepts[[i, 0]] == 0.0)
        .collect();
    let without = data.select(&rows);
    let model = run(small(), &without).unwrap();
    let observed = Array2::ones(without.concepts.dim());
    let mut target = without.concepts.clone();
    target.column_mut(0).fill(1.0);
    let err = edit(
        &*model,
        without.x.view(),
        Some((&without.concepts, &observed)),
        &target,
        Residual::Keep,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no training cell had"), "{err}");
}
