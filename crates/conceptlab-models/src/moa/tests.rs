//! `moa` against the synthetic generator's exact mediation decomposition.

use conceptlab_core::{CellData, UnsValue};

use super::{Levels, Moa, MoaSpec, analyse};
use crate::ModelError;
use crate::checkpoint::Loaded;
use crate::fit::{FitRequest, fit_cells};
use crate::pipeline::PreprocessConfig;
use crate::registry::ModelConfig;
use crate::sccbgm::ScCbgmConfig;
use crate::train::TrainConfig;

/// Mediation data: pathway 0 and 1 carry part of the effect, pathway 2 is
/// untouched by the perturbation. Baselines of 20–60 counts make
/// log1p-normalised expression nearly linear in the log rate, so the
/// model's scale and the generator's agree (see the tolerance below).
fn mediation_data(seed: u64, n_obs: usize) -> CellData {
    let config = conceptlab_synth::SynthConfig {
        n_obs,
        n_vars: 80,
        n_concepts: 2,
        baseline_lower: 20.0,
        baseline_upper: 60.0,
        mediation: Some(conceptlab_synth::MediationConfig::default()),
        ..conceptlab_synth::SynthConfig::default()
    };
    let generated = conceptlab_synth::generate(&config, seed).unwrap();
    conceptlab_synth::to_cell_data(&generated, &[]).unwrap()
}

/// The generator's shares from uns["synth"]["mediation"]: (direct, pathways).
fn true_shares(data: &CellData) -> (f64, Vec<f64>) {
    let UnsValue::Mapping(synth) = &data.uns["synth"] else {
        panic!("uns[synth]")
    };
    let UnsValue::Mapping(m) = &synth["mediation"] else {
        panic!("uns[synth][mediation]")
    };
    let numbers = |key: &str| match &m[key] {
        UnsValue::Array(a) => a.data.to_f64(),
        other => panic!("{key}: {other:?}"),
    };
    (numbers("direct_share")[0], numbers("pathway_shares"))
}

fn fit(data: &CellData, epochs: usize, seed: u64) -> Loaded {
    fit_model(
        data,
        epochs,
        seed,
        ModelConfig::ScCbgm(ScCbgmConfig {
            hidden_dim: 32,
            latent_dim: 16,
            n_unknown: 16,
            // Ten times the default: with the default the unknown code
            // learns the (less noisy) pathway activity from expression on
            // 2,000 cells, the decoder reads it there instead of from the
            // pathway concept, and the mediated shares shrink by half.
            orthogonality_hp: 5.0,
            dropout: 0.0,
            ..ScCbgmConfig::default()
        }),
    )
}

fn fit_model(data: &CellData, epochs: usize, seed: u64, model: ModelConfig) -> Loaded {
    let request = FitRequest {
        hard: vec!["stim".into()],
        soft: (0..3).map(conceptlab_synth::pathway_name).collect(),
        layer: None,
        model,
        preprocess: PreprocessConfig {
            n_pcs: None,
            ..PreprocessConfig::default()
        },
        train: TrainConfig {
            max_epochs: epochs,
            lr: 3e-3,
            batch_size: 128,
            ..TrainConfig::default()
        },
        seed,
        device: candle_core::Device::Cpu,
    };
    let t = fit_cells(data, &request, &mut |_| {}).unwrap();
    Loaded {
        meta: t.meta,
        model: t.model,
        flow: t.flow,
    }
}

fn spec() -> MoaSpec {
    MoaSpec {
        perturb: ("stim".into(), "stim".into()),
        pathways: (0..3).map(conceptlab_synth::pathway_name).collect(),
        filter: vec![("stim".into(), "ctrl".into())],
        levels: Levels::Reference(Vec::new()),
    }
}

fn report(seed: u64, moa: &Moa, truth: &(f64, Vec<f64>)) -> String {
    let got: Vec<String> = moa
        .pathways
        .iter()
        .map(|p| format!("{:.3}", p.share))
        .collect();
    let levels: Vec<String> = moa
        .pathways
        .iter()
        .map(|p| format!("{:.2}->{:.2}", p.own_level, p.perturbed_level))
        .collect();
    format!(
        "levels {levels:?} seed {seed}: direct {:.3} (true {:.3}), pathways [{}] (true {:.3?}), interaction {:.3}",
        moa.direct_share,
        truth.0,
        got.join(", "),
        truth.1,
        moa.interaction_share
    )
}

/// Fits scCBGM on mediation data of each seed and checks `moa`'s shares
/// against the generator's within `tolerance` (absolute, every share), the
/// untouched pathway's within `untouched`.
fn check_recovery(seeds: &[u64], n_obs: usize, epochs: usize, tolerance: f64, untouched: f64) {
    let started = std::time::Instant::now();
    for &seed in seeds {
        let data = mediation_data(seed, n_obs);
        let truth = true_shares(&data);
        let model = fit(&data, epochs, seed);
        let moa = analyse(&model, &data, &spec()).unwrap();
        let line = report(seed, &moa, &truth);
        eprintln!("{line} ({:.1?})", started.elapsed());
        assert!((moa.direct_share - truth.0).abs() < tolerance, "{line}");
        for (p, t) in moa.pathways.iter().zip(&truth.1) {
            assert!((p.share - t).abs() < tolerance, "{line}");
        }
        assert!(moa.pathways[2].share.abs() < untouched, "{line}");
        assert!(moa.interaction_share.abs() < untouched, "{line}");
        let sum = moa.direct_share
            + moa.interaction_share
            + moa.pathways.iter().map(|p| p.share).sum::<f64>();
        assert!((sum - 1.0).abs() < 1e-6, "{line}");
    }
}

/// Recovers the generator's shares over seeds (about 20 s in debug on 2
/// cores).
///
/// Seen, seeds 1–3 here and 4–9 in the ignored test below: every share
/// within 0.058 of the truth, the untouched pathway's within 0.008, the
/// error leaning one way (direct over, mediated under by 0.02–0.05), which
/// is what the two known biases predict. (1) The pathway annotations are
/// noisy, reliability 0.5²/(0.5² + 0.1²) = 0.96, so about 4 % of each
/// mediated part is credited to the perturbation itself. (2) The unknown
/// code still holds some of the true (noise-free) activity, which the
/// decoder reads instead of the concept. Scale is not a source: the model
/// sees log1p-normalised counts, not the log rate the truth is stated in,
/// but with 20–60 counts per gene the slope of E[log1p x] in log λ is
/// 0.97–0.99 on every gene, so all parts shrink alike. Tolerance 0.08
/// absolute on each share: above the worst seen error with room for other
/// platforms' float differences, below the gap between a mediating pathway's
/// share and none (0.1–0.5 on most seeds), so crediting a pathway's effect
/// to the perturbation or to another pathway fails. The untouched pathway
/// moves 0.01 of its range between control and stimulated cells and must
/// get a share below 0.03, as must the interaction (the generator is
/// additive in the pathways).
#[test]
fn recovers_known_shares_and_an_untouched_pathway_gets_none() {
    check_recovery(&[1, 2, 3], 600, 150, 0.08, 0.03);
}

/// More seeds and cells (about 90 s in debug on 2 cores):
/// `cargo test -p conceptlab-models --lib moa::tests::recovery_over_more_seeds -- --ignored --nocapture`
#[test]
#[ignore]
fn recovery_over_more_seeds() {
    check_recovery(&[4, 5, 6, 7, 8, 9], 2000, 300, 0.08, 0.03);
}

#[test]
fn bad_requests_are_input_errors() {
    let data = mediation_data(3, 120);
    let model = fit(&data, 1, 3);
    let bad = |s: MoaSpec| match analyse(&model, &data, &s) {
        Err(e @ ModelError::Input(_)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    let mut s = spec();
    s.pathways.clear();
    assert!(bad(s).contains("at least one"));
    let mut s = spec();
    s.pathways[0] = "stim".into();
    assert!(bad(s).contains("twice"));
    let mut s = spec();
    s.pathways[0] = "nope".into();
    assert!(bad(s).contains("not a concept"));
    let mut s = spec();
    s.perturb = ("pathway_0".into(), "1".into());
    assert!(bad(s).contains("hard concept"));
    let mut s = spec();
    s.perturb.1 = "maybe".into();
    assert!(bad(s).contains("stim=maybe"));
    let mut s = spec();
    s.levels = Levels::Given(vec!["0.5".into()]);
    assert!(bad(s).contains("levels given"));
    let mut s = spec();
    s.filter = vec![("stim".into(), "nope".into())];
    bad(s);
    // A marginal model cannot separate direct from mediated effects.
    let shift = fit_model(&data, 1, 3, ModelConfig::MeanShift);
    match analyse(&shift, &data, &spec()) {
        Err(ModelError::Input(e)) => assert!(e.contains("concept-bottleneck"), "{e}"),
        other => panic!("{other:?}"),
    }
}
