//! Chatterjee's rank correlation ξ(x, y): how far `y` is a function of `x`
//! (0 for independence, 1 for a noiseless function), the association
//! CINEMA-OT uses to tell treatment-driven components from confounders.

/// ξₙ with the tie-aware formula (scipy's `chatterjeexi` with
/// `y_continuous=False`): order the cells by `x` (ties kept in input order,
/// which matches any tie-breaking for continuous `x`), `r_i` = #{j: y_j ≤
/// y_(i)}, `l_i` = #{j: y_j ≥ y_(i)}, ξ = 1 − n Σ|r_{i+1} − r_i| /
/// (2 Σ l_i (n − l_i)). A constant `y` has no association (0).
pub fn chatterjee_xi(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut sorted_y: Vec<f64> = y[..n].to_vec();
    sorted_y.sort_by(f64::total_cmp);
    // r = #{y_j ≤ v}, l = #{y_j ≥ v} by binary search in the sorted ys.
    let r = |v: f64| sorted_y.partition_point(|&s| s <= v) as f64;
    let l = |v: f64| (n - sorted_y.partition_point(|&s| s < v)) as f64;
    let ranks: Vec<f64> = order.iter().map(|&i| r(y[i])).collect();
    let numerator: f64 = ranks.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    let denominator: f64 = y[..n].iter().map(|&v| l(v) * (n as f64 - l(v))).sum();
    if denominator == 0.0 {
        return 0.0;
    }
    1.0 - n as f64 * numerator / (2.0 * denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_scores_high_and_noise_low() {
        let x: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let step: Vec<f64> = x.iter().map(|&v| f64::from(u8::from(v >= 100.0))).collect();
        // One switch: ξ = 1 − 200·100 / (2·100·100·100) = 0.99.
        assert!(chatterjee_xi(&x, &step) > 0.97);
        let alternating: Vec<f64> = (0..200).map(|i| f64::from(i % 2)).collect();
        assert!(chatterjee_xi(&x, &alternating) < -0.9);
        assert_eq!(chatterjee_xi(&x, &vec![1.0; 200]), 0.0);
    }
}
