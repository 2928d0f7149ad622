//! PyTorch's parameter initialisations, drawn from our seeded generator.

use rand::Rng as _;

use conceptlab_core::random::Rng;

/// `n` draws from U(lo, hi), as f32.
pub fn uniform(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n)
        .map(|_| (lo + (hi - lo) * rng.random::<f64>()) as f32)
        .collect()
}

/// `nn.Linear(fan_in → fan_out)`'s default initialisation: weight (out × in)
/// and bias both U(±1/√fan_in). (Kaiming-uniform with a = √5 reduces to this
/// bound for the weight.) Returned as (weight, bias).
pub fn linear_init(rng: &mut Rng, fan_in: usize, fan_out: usize) -> (Vec<f32>, Vec<f32>) {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let weight = uniform(rng, fan_in * fan_out, -bound, bound);
    let bias = uniform(rng, fan_out, -bound, bound);
    (weight, bias)
}

/// Xavier-uniform with `gain`: U(±gain·√(6/(fan_in+fan_out))).
pub fn xavier_uniform(rng: &mut Rng, fan_in: usize, fan_out: usize, gain: f64) -> Vec<f32> {
    let bound = gain * (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
    uniform(rng, fan_in * fan_out, -bound, bound)
}
