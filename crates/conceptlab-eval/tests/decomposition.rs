//! The cell-level MSE of paired predictions splits into the error every
//! cell shares (`mse_means`, the squared distance of the means) and the
//! variance of the per-cell errors; the flow study reports the two parts.

use conceptlab_eval::{Points, cell_level_mse, mean_metrics, mse_means};

#[test]
fn mse_of_means_is_the_shared_part_of_the_cell_level_mse() {
    let truth = [0.0, 1.0, 2.0, -1.0, 4.0, 0.5];
    // Every cell off by (+0.5, −1.0), plus per-cell noise that averages to
    // zero in each column.
    let noise = [0.1, -0.2, -0.3, 0.4, 0.2, -0.2];
    let shift = [0.5, -1.0];
    let prediction: Vec<f64> = (0..truth.len())
        .map(|i| truth[i] + shift[i % 2] + noise[i])
        .collect();
    let control = [1.0, 0.0, -2.0, 3.0, 0.5, 0.5];
    let (t, p, c) = (
        Points::new("truth", &truth, 2).unwrap(),
        Points::new("prediction", &prediction, 2).unwrap(),
        Points::new("control", &control, 2).unwrap(),
    );
    let shared = mean_metrics(&t, &p, &c).unwrap().mse_means;
    assert!((shared - (0.25 + 1.0) / 2.0).abs() < 1e-12, "{shared}");
    let keys: Vec<String> = (0..3).map(|i| i.to_string()).collect();
    let total = cell_level_mse(&p, &keys, &t, &keys).unwrap();
    let per_cell = noise.iter().map(|v| v * v).sum::<f64>() / noise.len() as f64;
    assert!((total - (shared + per_cell)).abs() < 1e-12, "{total}");
    assert_eq!(mean_metrics(&t, &t, &c).unwrap().mse_means, 0.0);
    // The standalone form agrees, and is defined where the correlations of
    // mean_metrics are not: a prediction equal to the control (copying the
    // source cells) has a constant delta.
    assert_eq!(mse_means(&t, &p).unwrap(), shared);
    assert!(mean_metrics(&t, &c, &c).is_err());
    let copied = mse_means(&t, &c).unwrap();
    let (mt, mc) = (t.mean(), c.mean());
    let expected = ((mt[0] - mc[0]).powi(2) + (mt[1] - mc[1]).powi(2)) / 2.0;
    assert!((copied - expected).abs() < 1e-12, "{copied} vs {expected}");
    let empty = Points::new("empty", &[], 2).unwrap();
    assert!(mse_means(&t, &empty).is_err());
}
