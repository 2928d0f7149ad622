//! Statistical and structural properties of the generator: what the process
//! promises, checked on generated data (not snapshots of our own output).

// Index loops mirror the per-cell, per-gene definitions being checked.
#![allow(clippy::needless_range_loop)]

use conceptlab_synth::{Role, SynthConfig, benchmark_split, counterfactual, generate};

fn config(n_obs: usize, n_vars: usize) -> SynthConfig {
    SynthConfig {
        n_obs,
        n_vars,
        ..SynthConfig::default()
    }
}

#[test]
fn flipping_a_concept_leaves_its_neutral_genes_unchanged() {
    let data = generate(&config(400, 300), 21).unwrap();
    let (f, c) = (data.n_vars(), data.n_concepts());
    let cells: Vec<usize> = (0..data.n_obs()).collect();
    for k in 0..c {
        let flipped: Vec<u8> = cells
            .iter()
            .flat_map(|&n| {
                let mut v = data.cell_concepts(n).to_vec();
                v[k] = 1 - v[k];
                v
            })
            .collect();
        let cf = counterfactual(&data, &cells, &flipped).unwrap();
        let coef = &data.params.concept_coef[k * f..(k + 1) * f];
        let mut changed_affected = 0;
        for &n in &cells {
            for g in 0..f {
                let (before, after) = (data.cell_counts(n)[g], cf[n * f + g]);
                if coef[g] == 0.0 {
                    assert_eq!(before, after, "concept {k} gene {g} is neutral but changed");
                } else {
                    changed_affected += usize::from(before != after);
                    // Monotone coupling: the count moves with the sign of the effect.
                    let on = data.cell_concepts(n)[k] == 0; // flipped on
                    let up = (coef[g] > 0.0) == on;
                    assert!(if up { after >= before } else { after <= before });
                }
            }
        }
        if coef.iter().any(|&x| x.abs() > 0.05) {
            assert!(
                changed_affected > 0,
                "concept {k} has effects but no count moved"
            );
        }
    }
}

#[test]
fn a_concept_without_effects_changes_nothing() {
    let cfg = SynthConfig {
        std_concept: 0.0,
        ..config(200, 100)
    };
    let data = generate(&cfg, 3).unwrap();
    let cells: Vec<usize> = (0..200).collect();
    let all_on = vec![1u8; 200 * data.n_concepts()];
    assert_eq!(counterfactual(&data, &cells, &all_on).unwrap(), data.counts);
}

#[test]
fn concept_prevalence_matches_configured_probabilities() {
    let data = generate(&config(20_000, 10), 8).unwrap();
    let (c, u) = (data.n_concepts(), data.config.n_celltypes);
    for t in 0..u {
        let cells: Vec<usize> = (0..data.n_obs())
            .filter(|&n| data.celltype[n] as usize == t)
            .collect();
        if cells.len() < 200 {
            continue;
        }
        for k in 0..c {
            let p_conf = data.params.p_concept_in_celltype[t * c + k];
            let logit = ((p_conf + 1e-8) / (1.0 - p_conf + 1e-8))
                .ln()
                .clamp(-8.0, 8.0);
            let p = 1.0 / (1.0 + (-logit).exp());
            let on = cells
                .iter()
                .filter(|&&n| data.cell_concepts(n)[k] == 1)
                .count() as f64;
            let m = cells.len() as f64;
            let sd = (p * (1.0 - p) / m).sqrt();
            let observed = on / m;
            assert!(
                (observed - p).abs() <= 5.0 * sd + 1.0 / m,
                "cell type {t} concept {k}: observed {observed:.4}, configured {p:.4} (n = {m})"
            );
        }
    }
}

#[test]
fn log_mean_ratios_recover_effect_signs_and_counts_are_poisson() {
    let data = generate(&config(6_000, 400), 13).unwrap();
    let (f, c) = (data.n_vars(), data.n_concepts());
    // Within one cell type (so type, tissue and batch are balanced between
    // the groups), compare mean counts with the concept on and off.
    let mut checked = 0;
    let mut agree = 0;
    for t in 0..data.config.n_celltypes {
        for k in 0..c {
            let (mut on, mut off) = (Vec::new(), Vec::new());
            for n in (0..data.n_obs()).filter(|&n| data.celltype[n] as usize == t) {
                if data.cell_concepts(n)[k] == 1 {
                    on.push(n)
                } else {
                    off.push(n)
                }
            }
            if on.len() < 100 || off.len() < 100 {
                continue;
            }
            for g in 0..f {
                let coef = data.params.concept_coef[k * f + g];
                if coef.abs() < 0.15 {
                    continue;
                }
                let mean = |cells: &[usize]| {
                    cells
                        .iter()
                        .map(|&n| f64::from(data.cell_counts(n)[g]))
                        .sum::<f64>()
                        / cells.len() as f64
                };
                let ratio = (mean(&on) / mean(&off)).ln();
                checked += 1;
                agree += usize::from(ratio.signum() == coef.signum());
            }
        }
    }
    assert!(checked >= 20, "too few large effects to test ({checked})");
    assert!(
        agree as f64 >= 0.95 * checked as f64,
        "{agree} of {checked} signs recovered"
    );

    // Mean-variance: cells sharing type, batch, tissue and concepts differ only
    // by a tiny library offset and noise, so counts are Poisson: variance ~ mean.
    let key = |n: usize| {
        (
            data.celltype[n],
            data.batch[n],
            data.tissue[n],
            data.cell_concepts(n).to_vec(),
        )
    };
    let mut groups: std::collections::HashMap<_, Vec<usize>> = std::collections::HashMap::new();
    for n in 0..data.n_obs() {
        groups.entry(key(n)).or_default().push(n);
    }
    let biggest = groups.values().max_by_key(|g| g.len()).unwrap();
    assert!(
        biggest.len() >= 200,
        "largest homogeneous group has {} cells",
        biggest.len()
    );
    let m = biggest.len() as f64;
    let mut ratios = Vec::new();
    for g in 0..f {
        let xs: Vec<f64> = biggest
            .iter()
            .map(|&n| f64::from(data.cell_counts(n)[g]))
            .collect();
        let mean = xs.iter().sum::<f64>() / m;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0);
        ratios.push(var / mean);
    }
    let dispersion = ratios.iter().sum::<f64>() / ratios.len() as f64;
    // Poisson: 1; the library-size SD (<= 0.03) and noise (0.01) add ~0.1% per unit mean.
    assert!(
        (dispersion - 1.0).abs() < 0.05,
        "mean variance/mean = {dispersion}"
    );
}

#[test]
fn generation_does_not_depend_on_thread_count() {
    let cfg = config(500, 200);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| generate(&cfg, 77).unwrap())
    };
    assert_eq!(run(1), run(2));
    assert_eq!(run(1), run(3));
}

#[test]
fn benchmark_split_is_zero_shot_with_exact_twins() {
    let cfg = config(3_000, 200);
    let data = generate(&cfg, 5).unwrap();
    let interventions = benchmark_split(&data).unwrap();
    assert_eq!(interventions.len(), cfg.benchmark.n_hold_out);
    let f = data.n_vars();
    let mut pairs = std::collections::HashSet::new();
    for iv in &interventions {
        assert!(
            pairs.insert((iv.celltype, iv.concept)),
            "combination drawn twice"
        );
        for n in 0..data.n_obs() {
            let is_pair = data.celltype[n] as usize == iv.celltype;
            let on = data.cell_concepts(n)[iv.concept] == 1;
            match iv.roles[n] {
                // Zero-shot: no training cell shows the held-out combination.
                Role::Train => assert!(!(is_pair && on)),
                Role::Modify => assert!(is_pair && !on),
                Role::Drop => assert!(is_pair && on),
            }
        }
        let off = (0..data.n_obs())
            .filter(|&n| {
                data.celltype[n] as usize == iv.celltype && data.cell_concepts(n)[iv.concept] == 0
            })
            .count();
        assert_eq!(iv.modify.len(), off / 2);
        assert!(iv.modify.len() >= cfg.benchmark.min_cells);
        // Twins differ from their source only on genes the concept affects.
        let coef = &data.params.concept_coef[iv.concept * f..(iv.concept + 1) * f];
        for (i, &n) in iv.modify.iter().enumerate() {
            for g in 0..f {
                if coef[g] == 0.0 {
                    assert_eq!(iv.twins[i * f + g], data.cell_counts(n)[g]);
                }
            }
        }
    }
    assert_eq!(
        benchmark_split(&data).unwrap(),
        interventions,
        "split is deterministic"
    );
}

#[test]
fn too_few_eligible_combinations_is_a_clear_error() {
    let cfg = SynthConfig {
        benchmark: conceptlab_synth::BenchmarkConfig {
            n_hold_out: 500,
            min_cells: 10,
        },
        ..config(300, 20)
    };
    let data = generate(&cfg, 1).unwrap();
    let err = benchmark_split(&data).unwrap_err().to_string();
    assert!(err.contains("500 were requested"), "{err}");
}
