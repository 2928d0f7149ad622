//! scCVAE and scCVAE-FM on a small synthetic zero-shot benchmark: one held-out
//! (cell type, concept) combination, edited cells scored against their exact
//! counterfactual twins; checkpoints, seeds and refusals.

use std::sync::OnceLock;

use conceptlab_synth::{Role, SynthConfig, benchmark_split, generate};
use ndarray::{Array2, ArrayView2};

use super::{ScCvaeConfig, ScCvaeFmConfig};
use crate::flow::FlowConfig;
use crate::model::{Annotations, EditRequest, Model, Residual};
use crate::registry::{ModelConfig, ModelSettings, fit, load};
use crate::train::{EpochReport, TrainConfig};
use crate::{ConceptData, ModelError};

/// The training cells and one held-out edit with its exact answer.
pub(crate) struct Bench {
    pub train: ConceptData,
    pub source: Array2<f32>,
    pub concepts: Array2<f32>,
    pub target: Array2<f32>,
    pub twins: Array2<f32>,
}

fn log1p(counts: &[u32], rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| (counts[i * cols + j] as f32).ln_1p())
}

/// 800 cells × 30 genes, 4 concepts with strong effects (so a few epochs
/// learn them), one held-out combination.
pub(crate) fn bench() -> &'static Bench {
    static BENCH: OnceLock<Bench> = OnceLock::new();
    BENCH.get_or_init(|| {
        let mut config = SynthConfig::preset("synthetic_1").unwrap();
        config.n_obs = 800;
        config.n_vars = 30;
        config.n_concepts = 4;
        config.std_concept = 0.5;
        config.benchmark.n_hold_out = 1;
        let data = generate(&config, 11).unwrap();
        let split = benchmark_split(&data).unwrap().remove(0);
        let (n, g, k) = (data.n_obs(), data.n_vars(), data.n_concepts());
        let x = log1p(&data.counts, n, g);
        let c = Array2::from_shape_fn((n, k), |(i, j)| f32::from(data.cell_concepts(i)[j]));
        let train: Vec<usize> = (0..n).filter(|&i| split.roles[i] == Role::Train).collect();
        let pick = |a: &Array2<f32>, rows: &[usize]| a.select(ndarray::Axis(0), rows);
        let train = ConceptData::new(
            pick(&x, &train),
            pick(&c, &train),
            Array2::ones((train.len(), k)),
            k,
        )
        .unwrap();
        let concepts = pick(&c, &split.modify);
        let mut target = concepts.clone();
        target.column_mut(split.concept).fill(1.0);
        Bench {
            train,
            source: pick(&x, &split.modify),
            concepts,
            target,
            twins: log1p(&split.twins, split.modify.len(), g),
        }
    })
}

pub(crate) fn training(epochs: usize) -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        batch_size: 64,
        max_epochs: epochs,
        patience: 10,
        ..TrainConfig::default()
    }
}

fn small_cvae() -> ScCvaeConfig {
    ScCvaeConfig {
        hidden_dim: 64,
        n_layers: 1,
        latent_dim: 16,
        beta: 1e-3,
        dropout: 0.0,
    }
}

fn small_fm(flow_epochs: usize) -> ScCvaeFmConfig {
    ScCvaeFmConfig {
        cvae: small_cvae(),
        flow: FlowConfig {
            emb_dim: 32,
            n_layers: 2,
            dropout: 0.0,
            ..FlowConfig::default()
        },
        flow_training: TrainConfig {
            lr: 2e-3,
            ..training(flow_epochs)
        },
    }
}

pub(crate) fn trained(
    config: &ModelConfig,
    data: &ConceptData,
    epochs: usize,
    seed: u64,
) -> Box<dyn Model> {
    fit(
        config,
        data,
        &training(epochs),
        seed,
        &candle_core::Device::Cpu,
        &mut |_: &EpochReport| {},
    )
    .unwrap()
    .model
}

pub(crate) fn edit(
    model: &dyn Model,
    x: ArrayView2<f32>,
    own: Option<(&Array2<f32>, &Array2<f32>)>,
    target: &Array2<f32>,
    residual: Residual,
) -> Result<Array2<f32>, ModelError> {
    let mask = Array2::ones(target.dim());
    let request = EditRequest {
        x,
        annotations: own.map(|(values, observed)| Annotations {
            values: values.view(),
            observed: observed.view(),
        }),
        values: target.view(),
        mask: mask.view(),
        residual,
        sampling: None,
    };
    Ok(model.counterfactual(&request)?.x)
}

pub(crate) fn mse(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    (a - b)
        .mapv(|v| f64::from(v) * f64::from(v))
        .mean()
        .unwrap()
}

pub(crate) fn bench_edit(model: &dyn Model, residual: Residual) -> f64 {
    let b = bench();
    let observed = Array2::ones(b.concepts.dim());
    let out = edit(
        model,
        b.source.view(),
        Some((&b.concepts, &observed)),
        &b.target,
        residual,
    )
    .unwrap();
    mse(&out, &b.twins)
}

#[test]
fn sccvae_edits_held_out_cells_closer_to_their_twins_than_copying() {
    let b = bench();
    let model = trained(&ModelConfig::ScCvae(small_cvae()), &b.train, 40, 3);
    let copy = mse(&b.source, &b.twins);
    let keep = bench_edit(&*model, Residual::Keep);
    let discard = bench_edit(&*model, Residual::Discard);
    eprintln!("sccvae: copy {copy:.5}, keep {keep:.5}, discard {discard:.5}");
    assert!(keep < 0.7 * copy, "keep {keep} vs copy {copy}");
    // Keeping the residual beats the decoder's output alone: the
    // reconstruction error is larger than the concept effect.
    assert!(keep < discard, "keep {keep} vs discard {discard}");
}

#[test]
fn sccvae_fm_edits_held_out_cells_closer_to_their_twins_than_copying() {
    let b = bench();
    let model = trained(&ModelConfig::ScCvaeFm(small_fm(40)), &b.train, 40, 3);
    let copy = mse(&b.source, &b.twins);
    let err = bench_edit(&*model, Residual::Keep);
    eprintln!("sccvae-fm: copy {copy:.5}, edit {err:.5}");
    assert!(err < 0.8 * copy, "edit {err} vs copy {copy}");
}

/// The first 120 training cells.
pub(crate) fn tiny() -> ConceptData {
    let rows: Vec<usize> = (0..120).collect();
    bench().train.select(&rows)
}

#[test]
fn checkpoints_round_trip_to_identical_edits_and_seeds_fix_every_byte() {
    let data = tiny();
    let b = bench();
    let observed = Array2::ones(b.concepts.dim());
    for config in [
        ModelConfig::ScCvae(small_cvae()),
        ModelConfig::ScCvaeFm(small_fm(2)),
    ] {
        let model = trained(&config, &data, 2, 5);
        let bytes = model.to_safetensors().unwrap();
        let back = load(&config, model.dims(), 5, &bytes, &candle_core::Device::Cpu).unwrap();
        assert_eq!(back.to_safetensors().unwrap(), bytes, "{config:?}");
        assert_eq!(back.config(), config);
        let own = Some((&b.concepts, &observed));
        let a = edit(&*model, b.source.view(), own, &b.target, Residual::Keep).unwrap();
        let c = edit(&*back, b.source.view(), own, &b.target, Residual::Keep).unwrap();
        assert_eq!(a, c, "{config:?}");
        // Same seed, same bytes; another seed, other weights.
        let again = trained(&config, &data, 2, 5);
        assert_eq!(again.to_safetensors().unwrap(), bytes, "{config:?}");
        let other = trained(&config, &data, 2, 6);
        assert_ne!(other.to_safetensors().unwrap(), bytes, "{config:?}");
        // A file for other sizes is refused.
        let mut dims = model.dims();
        dims.input_dim += 1;
        assert!(load(&config, dims, 5, &bytes, &candle_core::Device::Cpu).is_err());
    }
}

#[test]
fn unchanged_concepts_return_the_cell_when_the_residual_is_kept() {
    let data = tiny();
    let model = trained(&ModelConfig::ScCvae(small_cvae()), &data, 1, 2);
    let observed = Array2::ones(data.concepts.dim());
    let out = edit(
        &*model,
        data.x.view(),
        Some((&data.concepts, &observed)),
        &data.concepts,
        Residual::Keep,
    )
    .unwrap();
    assert!(mse(&out, &data.x) < 1e-10);
}

#[test]
fn bad_configs_and_missing_annotations_are_refused() {
    let bad = [
        ScCvaeConfig {
            hidden_dim: 0,
            ..ScCvaeConfig::default()
        },
        ScCvaeConfig {
            latent_dim: usize::MAX,
            ..ScCvaeConfig::default()
        },
        ScCvaeConfig {
            dropout: 1.0,
            ..ScCvaeConfig::default()
        },
        ScCvaeConfig {
            beta: f64::NAN,
            ..ScCvaeConfig::default()
        },
    ];
    let data = tiny();
    for config in bad {
        assert!(config.validate().is_err(), "{config:?}");
        let settings = ModelSettings {
            sccvae: config.clone(),
            ..ModelSettings::default()
        };
        assert!(settings.validate().is_err());
        let err = fit(
            &ModelConfig::ScCvae(config),
            &data,
            &training(1),
            0,
            &candle_core::Device::Cpu,
            &mut |_: &EpochReport| {},
        )
        .unwrap_err();
        assert!(err.is_bad_input(), "{err}");
    }
    let mut fm = small_fm(1);
    fm.flow.emb_dim = 0;
    assert!(fm.validate().is_err());
    fm = small_fm(1);
    fm.flow_training.batch_size = 0;
    assert!(fm.validate().is_err());
    assert!(ModelSettings::default().validate().is_ok());

    // Training cells must be fully annotated.
    let mut observed = data.observed.clone();
    observed[[7, 2]] = 0.0;
    let partial = ConceptData::new(data.x.clone(), data.concepts.clone(), observed, 4).unwrap();
    let err = fit(
        &ModelConfig::ScCvae(small_cvae()),
        &partial,
        &training(1),
        0,
        &candle_core::Device::Cpu,
        &mut |_: &EpochReport| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("training cell 7") && err.contains("column 2"),
        "{err}"
    );

    // Edits need every edited cell's annotations.
    for config in [
        ModelConfig::ScCvae(small_cvae()),
        ModelConfig::ScCvaeFm(small_fm(1)),
    ] {
        let model = trained(&config, &data, 1, 0);
        let err = edit(&*model, data.x.view(), None, &data.concepts, Residual::Keep)
            .unwrap_err()
            .to_string();
        assert!(err.contains("annotations"), "{err}");
        let mut observed = Array2::ones(data.concepts.dim());
        observed[[3, 1]] = 0.0;
        let err = edit(
            &*model,
            data.x.view(),
            Some((&data.concepts, &observed)),
            &data.concepts,
            Residual::Keep,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("edited cell 3") && err.contains("column 1"),
            "{err}"
        );
    }
}
