use conceptlab_core::data::Categorical;
use conceptlab_core::random::{standard_normal, stream_rng};
use conceptlab_core::{CellData, Column, DenseArray, Frame, Matrix, NumVec};
use conceptlab_models::TrainConfig;

use super::*;

/// Small counts with three cell types of distinct profiles and a
/// within-type gradient, so the state module has something to read.
fn small_counts(n: usize, g: usize, seed: u64) -> CellData {
    let mut rng = stream_rng(seed, 9);
    let types = ["A", "B", "C"];
    let profile: Vec<Vec<f64>> = (0..3)
        .map(|_| {
            (0..g)
                .map(|_| (1.0 + standard_normal(&mut rng)).exp())
                .collect()
        })
        .collect();
    let mut x = Vec::with_capacity(n * g);
    let mut codes = Vec::with_capacity(n);
    for i in 0..n {
        let t = i % 3;
        codes.push(t as i32);
        let scale = (0.3 * standard_normal(&mut rng)).exp();
        for rate in &profile[t] {
            let mean = rate * scale;
            // A Poisson-ish count from a rounded gamma-free normal approximation.
            let v = (mean + mean.sqrt() * standard_normal(&mut rng))
                .round()
                .max(0.0);
            x.push(v as f32);
        }
    }
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let mut obs = Frame::with_index(names.clone());
    let labels: Vec<String> = types.iter().map(|s| s.to_string()).collect();
    obs.insert(
        "cell_type",
        Column::Categorical(
            Categorical::new(codes, conceptlab_core::data::Values::Strings(labels), false).unwrap(),
        ),
    )
    .unwrap();
    let m = Matrix::Dense(DenseArray::new(vec![n, g], NumVec::F32(x)).unwrap());
    let mut data = CellData::new(m, names, (0..g).map(|j| format!("g{j}")).collect()).unwrap();
    data.obs = obs;
    data
}

fn suite(seed: u64) -> PbmcSuite {
    PbmcSuite::new(
        &small_counts(240, 80, 3),
        "cell_type",
        &InjectionConfig::default(),
        seed,
    )
    .unwrap()
}

#[test]
fn twins_are_exact_and_the_effect_varies_by_cell_and_type() {
    let s = suite(1);
    let inj = &s.injection;
    let observed = inj.observed();
    for i in 0..s.cell_type.len() {
        // An unstimulated cell's unstimulated twin is the cell itself; a
        // stimulated cell shows its stimulated twin.
        if inj.stimulated[i] {
            assert_eq!(observed.row(i), inj.stimulated_twin.row(i));
        } else {
            assert_eq!(observed.row(i), inj.control.row(i));
        }
    }
    let n_stim = inj.stimulated.iter().filter(|&&b| b).count();
    assert!(n_stim > 80 && n_stim < 160, "{n_stim} stimulated of 240");
    // Genes outside both programs never move.
    for j in 0..80 {
        if inj.program[j] == 0.0 && inj.state_response[j] == 0.0 {
            assert_eq!(inj.control.column(j), inj.stimulated_twin.column(j));
        }
    }
    // The state part varies across cells of one type and averages about 0
    // (exactly 0 before the clip at ±2.5).
    let a = s.cells_of(0);
    let states: Vec<f64> = a.iter().map(|&i| inj.state[i]).collect();
    let mean = states.iter().sum::<f64>() / states.len() as f64;
    let spread = states.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / states.len() as f64;
    assert!(
        mean.abs() < 0.1 && spread > 0.5,
        "state mean {mean}, variance {spread}"
    );
    let cfg = InjectionConfig::default();
    let l0 = inj.log_fold_change(0, a[0], &cfg);
    let l1 = inj.log_fold_change(0, a[1], &cfg);
    assert!(l0.iter().zip(&l1).any(|(x, y)| (x - y).abs() > 1e-3));
    // The effect differs by cell type.
    let m = &inj.type_magnitude;
    assert!(
        (m[0] - m[1]).abs() > 1e-3 && (m[1] - m[2]).abs() > 1e-3,
        "{m:?}"
    );
    // Same seed, same bytes; another seed, another program.
    assert_eq!(suite(1).injection.stimulated_twin, inj.stimulated_twin);
    assert_ne!(suite(2).injection.program, inj.program);
}

#[test]
fn counts_survive_log_normalisation() {
    let counts = ndarray::arr2(&[[0u32, 1, 5, 2], [3, 0, 1, 7]]);
    let logged: Vec<f32> = counts
        .rows()
        .into_iter()
        .flat_map(|r| {
            let total: u32 = r.iter().sum();
            r.iter()
                .map(move |&c| (f64::from(c) / f64::from(total) * 1e4).ln_1p() as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    let m = Matrix::Dense(DenseArray::new(vec![2, 4], NumVec::F32(logged)).unwrap());
    assert_eq!(counts_from_log_normalized(&m).unwrap(), counts);
}

#[test]
fn bad_input_is_refused() {
    let data = small_counts(30, 20, 1);
    assert!(PbmcSuite::new(&data, "no_such_column", &InjectionConfig::default(), 1).is_err());
    let bad = InjectionConfig {
        program_fraction: 1.5,
        ..InjectionConfig::default()
    };
    assert!(PbmcSuite::new(&data, "cell_type", &bad, 1).is_err());
}

#[test]
fn the_suite_runs_end_to_end() {
    let s = suite(1);
    let mut config = RunConfig::defaults(1);
    config.preprocess.n_top_genes = Some(60);
    config.preprocess.n_pcs = Some(16);
    config.model.hidden_dim = 32;
    config.model.latent_dim = 16;
    config.model.n_unknown = 16;
    config.train = TrainConfig {
        max_epochs: 30,
        ..TrainConfig::default()
    };
    if let Some(flow) = &mut config.flow {
        flow.config.emb_dim = 32;
        flow.train.max_epochs = 5;
        flow.steps = 5;
    }
    config.variants = vec![Variant {
        name: "tiny".into(),
        model: config.model.clone(),
        train: config.train.clone(),
    }];
    let out = run(&s, 0, &config).unwrap();
    assert_eq!(out.n_edited, s.cells_of(0).len());
    let get = |m: &str| out.score(m).unwrap().mse;
    for m in [
        "copy",
        "mean-shift",
        "oracle-shift",
        "sccbgm",
        "sccbgm-tiny",
        "cbm-fm-edit",
    ] {
        assert!(get(m).is_finite(), "{m}");
    }
    // A variant with the default's settings is the same fit.
    assert_eq!(get("sccbgm-tiny"), get("sccbgm"));
    // The injected effect is real: copying is worse than the oracle shift,
    // and the oracle's remaining error is the per-cell part of the effect.
    assert!(get("oracle-shift") < get("copy"));
    assert!(out.score("oracle-shift").unwrap().shared_mse < 1e-9);
    assert!(out.diagnosis.true_change_variance > 0.0);
}
