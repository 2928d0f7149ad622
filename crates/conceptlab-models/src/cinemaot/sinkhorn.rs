//! Entropic optimal transport between uniform weights: the plan
//! `P = argmin ⟨P, C⟩ − ε H(P)` with row sums `1/n` and column sums `1/m`,
//! by Sinkhorn iterations in the log domain (CINEMA-OT's regularisation is
//! tiny next to its costs, where the plain kernel `exp(−C/ε)` underflows).

/// A plan and how its iterations ended.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `n × m`, row-major.
    pub plan: Vec<f64>,
    pub iterations: usize,
    /// L1 distance of the row sums from `1/n` at the end (the columns are exact).
    pub error: f64,
}

fn logsumexp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Runs at most `max_iter` iterations (one row and one column update each),
/// stopping once the row marginals are within `tol` in L1 (checked every
/// 10 iterations and at the end, as ott-jax does). `cost` is `n × m`
/// row-major.
pub fn sinkhorn(cost: &[f64], n: usize, m: usize, eps: f64, tol: f64, max_iter: usize) -> Plan {
    let (log_a, log_b) = (-(n as f64).ln(), -(m as f64).ln());
    let mut f = vec![0.0f64; n];
    let mut g = vec![0.0f64; m];
    let row_error = |f: &[f64], g: &[f64]| -> f64 {
        (0..n)
            .map(|i| {
                let row: f64 = (0..m)
                    .map(|j| ((f[i] + g[j] - cost[i * m + j]) / eps + log_a + log_b).exp())
                    .sum();
                (row - 1.0 / n as f64).abs()
            })
            .sum()
    };
    let mut iterations = 0;
    let mut error = f64::INFINITY;
    while iterations < max_iter {
        for i in 0..n {
            let row = &cost[i * m..(i + 1) * m];
            f[i] = -eps * logsumexp(row.iter().zip(&g).map(|(c, gj)| (gj - c) / eps + log_b));
        }
        for j in 0..m {
            g[j] = -eps * logsumexp((0..n).map(|i| (f[i] - cost[i * m + j]) / eps + log_a));
        }
        iterations += 1;
        if iterations % 10 == 0 || iterations == max_iter {
            error = row_error(&f, &g);
            if error < tol {
                break;
            }
        }
    }
    if !error.is_finite() {
        error = row_error(&f, &g);
    }
    let mut plan = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            plan[i * m + j] = ((f[i] + g[j] - cost[i * m + j]) / eps + log_a + log_b).exp();
        }
    }
    Plan {
        plan,
        iterations,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marginals_hold_and_small_eps_approaches_the_assignment() {
        // Two rows, two columns on a line: the optimal plan is the diagonal.
        let cost = [0.0, 4.0, 4.0, 0.0];
        let p = sinkhorn(&cost, 2, 2, 0.05, 1e-12, 10_000);
        assert!(p.error < 1e-12);
        assert!((p.plan[0] - 0.5).abs() < 1e-12 && p.plan[1] < 1e-12);
        // Large eps: close to the independent coupling 1/4.
        let p = sinkhorn(&cost, 2, 2, 1e6, 1e-12, 10_000);
        assert!(p.plan.iter().all(|&v| (v - 0.25).abs() < 1e-5));
        for j in 0..2 {
            assert!(((0..2).map(|i| p.plan[i * 2 + j]).sum::<f64>() - 0.5).abs() < 1e-12);
        }
    }
}
