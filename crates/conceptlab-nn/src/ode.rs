//! Fixed-step and adaptive ODE solvers for `dx/dt = f(t, x)` on tensors
//! (the flow-matching generator integrates its velocity field with these).
//!
//! Integration runs forward (`t1 > t0`) or backward (`t1 < t0`, negative
//! steps): inverting a flow is integrating it backward. Explicit Euler
//! backward evaluates the field at the step's upper end, as the reference's
//! inversion does, so it is not the exact inverse of its forward pass; the
//! higher-order solvers shrink that gap as h², h⁴ or to the tolerance.

use candle_core::Tensor;

use crate::NnError;
use conceptlab_core::CoreError;

/// How to integrate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Solver {
    /// Explicit Euler, one evaluation per step (the reference, with 1000 steps).
    Euler,
    /// Explicit midpoint, two evaluations per step.
    Midpoint,
    /// Classical Runge–Kutta, four evaluations per step.
    Rk4,
    /// Dormand–Prince 5(4) with step-size control (FSAL: six evaluations per
    /// accepted step). `steps` only sets the first step size.
    DormandPrince { rtol: f64, atol: f64 },
}

impl Solver {
    /// Field evaluations per fixed step (adaptive: per attempted step).
    pub fn evaluations_per_step(&self) -> usize {
        match self {
            Solver::Euler => 1,
            Solver::Midpoint => 2,
            Solver::Rk4 => 4,
            Solver::DormandPrince { .. } => 6,
        }
    }
}

/// What an integration cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OdeStats {
    pub evaluations: usize,
    pub accepted_steps: usize,
    pub rejected_steps: usize,
}

/// The right-hand side `f(t, x)`.
pub type Field<'a> = dyn FnMut(f64, &Tensor) -> Result<Tensor, NnError> + 'a;

/// Integrates from `t0` to `t1` with `steps` equal steps (fixed-step
/// solvers) or an adaptive step starting at `(t1 − t0) / steps`.
pub fn integrate(
    field: &mut Field<'_>,
    x0: &Tensor,
    t0: f64,
    t1: f64,
    solver: Solver,
    steps: usize,
) -> Result<(Tensor, OdeStats), NnError> {
    if steps == 0 {
        return Err(CoreError::InvalidInput {
            what: "ODE solver".into(),
            reason: "needs at least one step".into(),
        }
        .into());
    }
    if !(t0.is_finite() && t1.is_finite()) {
        return Err(CoreError::InvalidInput {
            what: "ODE solver".into(),
            reason: format!("times must be finite, got {t0} → {t1}"),
        }
        .into());
    }
    let mut stats = OdeStats::default();
    if t0 == t1 {
        return Ok((x0.clone(), stats));
    }
    let step: FixedStep = match solver {
        Solver::Euler => euler_step,
        Solver::Midpoint => midpoint_step,
        Solver::Rk4 => rk4_step,
        Solver::DormandPrince { rtol, atol } => {
            return dormand_prince(field, x0, t0, t1, steps, rtol, atol);
        }
    };
    let h = (t1 - t0) / steps as f64;
    let mut x = x0.clone();
    for i in 0..steps {
        x = step(field, t0 + h * i as f64, h, &x)?;
        stats.evaluations += solver.evaluations_per_step();
        stats.accepted_steps += 1;
    }
    Ok((x, stats))
}

/// One fixed step of size `h` from `(t, x)`.
type FixedStep = fn(&mut Field<'_>, f64, f64, &Tensor) -> Result<Tensor, NnError>;

fn euler_step(field: &mut Field<'_>, t: f64, h: f64, x: &Tensor) -> Result<Tensor, NnError> {
    Ok((x + (field(t, x)? * h)?)?)
}

fn midpoint_step(field: &mut Field<'_>, t: f64, h: f64, x: &Tensor) -> Result<Tensor, NnError> {
    let mid = (x + (field(t, x)? * (h / 2.0))?)?;
    Ok((x + (field(t + h / 2.0, &mid)? * h)?)?)
}

fn rk4_step(field: &mut Field<'_>, t: f64, h: f64, x: &Tensor) -> Result<Tensor, NnError> {
    let k1 = field(t, x)?;
    let k2 = field(t + h / 2.0, &(x + (&k1 * (h / 2.0))?)?)?;
    let k3 = field(t + h / 2.0, &(x + (&k2 * (h / 2.0))?)?)?;
    let k4 = field(t + h, &(x + (&k3 * h)?)?)?;
    let sum = (((&k1 + (&k2 * 2.0)?)? + (&k3 * 2.0)?)? + &k4)?;
    Ok((x + (sum * (h / 6.0))?)?)
}

// Dormand–Prince 5(4) tableau.
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 7] = [
    &[],
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// 5th-order weights minus 4th-order weights: the local error estimate.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

fn combine(x: &Tensor, ks: &[Tensor], coeffs: &[f64], h: f64) -> Result<Tensor, NnError> {
    let mut out = x.clone();
    for (k, &a) in ks.iter().zip(coeffs) {
        if a != 0.0 {
            out = (&out + (k * (a * h))?)?;
        }
    }
    Ok(out)
}

fn dormand_prince(
    field: &mut Field<'_>,
    x0: &Tensor,
    t0: f64,
    t1: f64,
    steps: usize,
    rtol: f64,
    atol: f64,
) -> Result<(Tensor, OdeStats), NnError> {
    if !(rtol > 0.0 && atol > 0.0) {
        return Err(CoreError::InvalidInput {
            what: "Dormand-Prince solver".into(),
            reason: format!("tolerances must be positive, got rtol {rtol}, atol {atol}"),
        }
        .into());
    }
    let direction = (t1 - t0).signum();
    let span = (t1 - t0).abs();
    let mut stats = OdeStats::default();
    let mut t = t0;
    let mut x = x0.clone();
    let mut h = span / steps as f64;
    let mut k1 = field(t, &x)?;
    stats.evaluations += 1;
    // Far more steps than any sensible tolerance needs: fail instead of looping.
    let max_steps = 100_000;
    while (t1 - t) * direction > span * 1e-12 {
        if stats.accepted_steps + stats.rejected_steps > max_steps {
            return Err(NnError::Tensor(format!(
                "Dormand-Prince did not reach t = {t1} in {max_steps} steps (stuck at t = {t})"
            )));
        }
        h = h.min((t1 - t).abs());
        let hs = h * direction;
        let mut ks = vec![k1.clone()];
        for stage in 1..7 {
            let xs = combine(&x, &ks, A[stage], hs)?;
            ks.push(field(t + C[stage] * hs, &xs)?);
            stats.evaluations += 1;
        }
        // The 7th stage is evaluated at the 5th-order solution (FSAL).
        let x_new = combine(&x, &ks[..6], A[6], hs)?;
        let err = combine(&x.zeros_like()?, &ks, &E, hs)?;
        let scale = ((x.abs()?.maximum(&x_new.abs()?)? * rtol)? + atol)?;
        let ratio = err.div(&scale)?;
        let norm = ratio.sqr()?.mean_all()?.to_scalar::<f32>()?.sqrt() as f64;
        if !norm.is_finite() {
            return Err(NnError::Tensor(format!(
                "Dormand-Prince: non-finite error estimate at t = {t}"
            )));
        }
        if norm <= 1.0 {
            t += hs;
            x = x_new;
            k1 = ks.swap_remove(6);
            stats.accepted_steps += 1;
        } else {
            stats.rejected_steps += 1;
        }
        // Standard controller: safety 0.9, growth within [0.2, 5].
        let factor = if norm == 0.0 {
            5.0
        } else {
            (0.9 * norm.powf(-0.2)).clamp(0.2, 5.0)
        };
        h *= factor;
    }
    Ok((x, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// dx/dt = −x·(1 + t): x(t) = x0·exp(−(t + t²/2)).
    fn decay(t: f64, x: &Tensor) -> Result<Tensor, NnError> {
        Ok((x * (-(1.0 + t)))?)
    }

    fn exact(x0: &[f32], t0: f64, t1: f64) -> Vec<f64> {
        let g = |t: f64| t + t * t / 2.0;
        x0.iter()
            .map(|&v| v as f64 * (-(g(t1) - g(t0))).exp())
            .collect()
    }

    fn max_err(solver: Solver, steps: usize, t0: f64, t1: f64) -> f64 {
        let x0 = [1.0f32, -0.5, 2.0];
        let x = Tensor::from_slice(&x0, (1, 3), &Device::Cpu).unwrap();
        let (out, _) = integrate(&mut decay, &x, t0, t1, solver, steps).unwrap();
        let got = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        got.iter()
            .zip(exact(&x0, t0, t1))
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn fixed_step_solvers_converge_at_their_order() {
        for (solver, order) in [
            (Solver::Euler, 1.0),
            (Solver::Midpoint, 2.0),
            (Solver::Rk4, 4.0),
        ] {
            let coarse = max_err(solver, 10, 0.0, 1.0);
            let fine = max_err(solver, 20, 0.0, 1.0);
            let observed = (coarse / fine).log2();
            assert!(
                (observed - order).abs() < 0.35,
                "{solver:?}: order {observed}, errors {coarse} {fine}"
            );
        }
    }

    #[test]
    fn backward_integration_inverts_forward() {
        let x0 = [0.3f32, -1.2];
        let x = Tensor::from_slice(&x0, (1, 2), &Device::Cpu).unwrap();
        for (solver, steps, tol) in [
            (Solver::Euler, 1000, 2e-3),
            (Solver::Midpoint, 50, 1e-3),
            (Solver::Rk4, 20, 1e-5),
            (
                Solver::DormandPrince {
                    rtol: 1e-6,
                    atol: 1e-7,
                },
                10,
                1e-5,
            ),
        ] {
            let (fwd, _) = integrate(&mut decay, &x, 0.0, 1.0, solver, steps).unwrap();
            let (back, _) = integrate(&mut decay, &fwd, 1.0, 0.0, solver, steps).unwrap();
            let back = back.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (b, a) in back.iter().zip(x0) {
                let rel = ((b - a) / a).abs() as f64;
                assert!(rel < tol, "{solver:?} {steps} steps: {b} vs {a}");
            }
        }
    }

    #[test]
    fn adaptive_solver_meets_its_tolerance_with_few_evaluations() {
        let x = Tensor::from_slice(&[1.0f32, 2.0], (1, 2), &Device::Cpu).unwrap();
        let (out, stats) = integrate(
            &mut decay,
            &x,
            0.0,
            2.0,
            Solver::DormandPrince {
                rtol: 1e-5,
                atol: 1e-6,
            },
            4,
        )
        .unwrap();
        let got = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (g, w) in got.iter().zip(exact(&[1.0, 2.0], 0.0, 2.0)) {
            assert!(
                (*g as f64 - w).abs() < 1e-4 * w.abs().max(1e-3),
                "{g} vs {w}"
            );
        }
        assert!(stats.evaluations < 200, "{stats:?}");
        assert!(stats.accepted_steps >= 2);
    }

    #[test]
    fn zero_steps_and_empty_span() {
        let x = Tensor::from_slice(&[1.0f32], (1, 1), &Device::Cpu).unwrap();
        assert!(integrate(&mut decay, &x, 0.0, 1.0, Solver::Euler, 0).is_err());
        let (same, stats) = integrate(&mut decay, &x, 0.5, 0.5, Solver::Rk4, 3).unwrap();
        assert_eq!(same.to_vec2::<f32>().unwrap(), vec![vec![1.0]]);
        assert_eq!(stats.evaluations, 0);
    }
}
