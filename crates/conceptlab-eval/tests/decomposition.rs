//! The cell-level MSE of paired predictions splits into the error every
//! cell shares (`mse_means`, the squared distance of the means) and the
//! variance of the per-cell errors; the flow study reports the two parts.

use conceptlab_eval::{Points, cell_level_mse, mean_metrics};

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
}
