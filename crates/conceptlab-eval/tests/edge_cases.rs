//! Edge cases: identical inputs, tiny groups, bad input.

use conceptlab_eval::{
    EvalError, Points, cell_level_mse, e_distance, frechet_distance, mmd2_rbf_default,
    nearest_group_ratio,
};

fn grid(n: usize, d: usize, shift: f64) -> Vec<f64> {
    (0..n * d)
        .map(|i| ((i * 37 % 101) as f64) / 50.0 + shift)
        .collect()
}

#[test]
fn identical_populations_are_at_distance_zero() {
    let x = grid(30, 4, 0.0);
    let p = Points::new("x", &x, 4).unwrap();
    assert_eq!(mmd2_rbf_default(&p, &p).unwrap(), 0.0);
    assert!(e_distance(&p, &p).unwrap().abs() < 1e-12);
    assert!(frechet_distance(&p, &p).unwrap().abs() < 1e-9);
    let keys: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    assert_eq!(cell_level_mse(&p, &keys, &p, &keys).unwrap(), 0.0);
}

#[test]
fn shifted_populations_are_apart() {
    let (x, y) = (grid(30, 4, 0.0), grid(30, 4, 1.0));
    let (p, q) = (
        Points::new("x", &x, 4).unwrap(),
        Points::new("y", &y, 4).unwrap(),
    );
    assert!(mmd2_rbf_default(&p, &q).unwrap() > 0.1);
    assert!(e_distance(&p, &q).unwrap() > 0.5);
    // Same covariance: the Fréchet distance is the squared mean shift, 4 x 1².
    assert!((frechet_distance(&p, &q).unwrap() - 4.0).abs() < 1e-9);
}

#[test]
fn non_finite_input_is_an_error_not_a_nan() {
    let mut x = grid(10, 3, 0.0);
    x[7] = f64::NAN;
    let err = Points::new("prediction", &x, 3).unwrap_err();
    assert_eq!(
        err,
        EvalError::NonFinite {
            what: "prediction".into(),
            row: 2,
            col: 1
        }
    );
    assert!(Points::new("x", &[1.0, 2.0, 3.0], 2).is_err());
}

#[test]
fn groups_below_the_minimum_are_skipped_and_none_left_is_an_error() {
    let (t, p) = (grid(20, 2, 0.0), grid(20, 2, 0.5));
    let train = grid(15, 2, 0.0);
    let (t, p, tr) = (
        Points::new("t", &t, 2).unwrap(),
        Points::new("p", &p, 2).unwrap(),
        Points::new("train", &train, 2).unwrap(),
    );
    // "exact" equals the target but has only 5 cells; "far" must be chosen.
    let labels: Vec<String> = (0..15)
        .map(|i| if i < 5 { "exact".into() } else { "far".into() })
        .collect();
    let r = nearest_group_ratio(mmd2_rbf_default, &t, &p, &tr, &labels, 10).unwrap();
    assert_eq!(r.nearest_group, "far");
    assert!(nearest_group_ratio(mmd2_rbf_default, &t, &p, &tr, &labels, 11).is_err());
    assert!(nearest_group_ratio(mmd2_rbf_default, &t, &p, &tr, &labels[..3], 1).is_err());
}

#[test]
fn too_few_cells_and_mismatches() {
    let one = [1.0, 2.0];
    let p1 = Points::new("one", &one, 2).unwrap();
    let x = grid(5, 2, 0.0);
    let p = Points::new("x", &x, 2).unwrap();
    assert!(matches!(
        mmd2_rbf_default(&p1, &p),
        Err(EvalError::TooFewCells { .. })
    ));
    assert!(matches!(
        frechet_distance(&p1, &p),
        Err(EvalError::TooFewCells { .. })
    ));
    let y = grid(5, 3, 0.0);
    let q = Points::new("y", &y, 3).unwrap();
    assert!(matches!(
        e_distance(&p, &q),
        Err(EvalError::DimensionMismatch { .. })
    ));
    let keys: Vec<String> = (0..5).map(|i| i.to_string()).collect();
    let mut dup = keys.clone();
    dup[1] = "0".into();
    assert!(cell_level_mse(&p, &dup, &p, &keys).is_err());
    let mut missing = keys.clone();
    missing[4] = "nope".into();
    assert!(cell_level_mse(&p, &missing, &p, &keys).is_err());
}

#[test]
fn constant_genes_and_empty_de_sets() {
    use conceptlab_eval::{DeThresholds, de_recall, wilcoxon_rank_sum};
    let a = vec![1.0; 20];
    let b = vec![1.0; 30];
    let (pa, pb) = (
        Points::new("a", &a, 2).unwrap(),
        Points::new("b", &b, 2).unwrap(),
    );
    for t in wilcoxon_rank_sum(&pa, &pb, true).unwrap() {
        assert_eq!((t.z, t.p), (0.0, 1.0));
    }
    // Nothing is differentially expressed: recall is undefined, not 0.
    let r = de_recall(&pb, &pa, &pa, DeThresholds::default()).unwrap();
    assert_eq!((r.recall_up, r.recall_down), (None, None));
    assert_eq!(
        conceptlab_eval::benjamini_hochberg(&[0.01, f64::NAN, 0.04]),
        vec![0.03, 1.0, 0.06]
    );
}
