//! The stimulation program injected into real counts, and every cell's
//! exact twins under it.
//!
//! Each cell `n` (type `t`, state `s_n`) with counts `c_ng` has a log fold
//! change per gene
//!
//! ```text
//! log f_ng = m_t · w_g + γ · s_n · v_g
//! ```
//!
//! - `w_g`, the **shared program**: nonzero on a random fraction of the genes
//!   (`program_fraction`), `±|N(0, shared_log_fc²)|`, two up for one down;
//! - `m_t = exp(type_spread · z_t)`, the **cell-type magnitude** (`z_t`
//!   standard normal per type): the held-out type responds more or less
//!   strongly than the training types, by an amount no method can read off
//!   the training stimulated cells;
//! - `s_n`, the **cell's state**: the mean log-normalised expression of a
//!   random module of commonly detected genes, z-scored within the cell's
//!   type (so it averages 0 in every type) and clipped to ±2.5; `v_g`
//!   (`±|N(0, 1)|` on `state_fraction` of the genes, disjoint from the
//!   program) scaled by `γ = state_log_fc`. This part is different in every
//!   cell and averages out over a type: a predictor that moves every cell
//!   alike (the mean shift) cannot capture it, one that reads the cell can.
//!
//! The stimulated twin of a cell is `⌊(c + ε_n)·f − ε_n + u⌋` clipped at 0,
//! with `ε_n = pseudocount · L_n / 1000` (`L_n` its library size) so that
//! induced genes can rise from zero, and `u ~ U(0, 1)` stochastic rounding
//! (so the expected count is exact). The unstimulated twin of every cell is
//! its own counts: with `f = 1` the formula returns `c` bit for bit.

use conceptlab_core::random::{Rng, open_uniform, standard_normal, stream_rng, streams};
use ndarray::Array2;
use serde::Serialize;

use crate::BenchError;

/// The parameters of the injected program (defaults documented on each).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InjectionConfig {
    /// Fraction of genes in the shared program (0.15).
    pub program_fraction: f64,
    /// SD of the shared program's log fold changes (1.0).
    pub shared_log_fc: f64,
    /// SD of the log of each cell type's magnitude (0.4).
    pub type_spread: f64,
    /// Fraction of genes that respond to the cell's state (0.1).
    pub state_fraction: f64,
    /// γ: log fold change per SD of state on those genes (0.8).
    pub state_log_fc: f64,
    /// Genes in the state module (30), drawn among genes detected in at
    /// least 10% of cells.
    pub state_module: usize,
    /// Pseudocount per 1,000 library counts that lets induced genes rise
    /// from zero (0.5).
    pub pseudocount: f64,
    /// Fraction of cells observed stimulated (0.5).
    pub stimulated_fraction: f64,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            program_fraction: 0.15,
            shared_log_fc: 1.0,
            type_spread: 0.4,
            state_fraction: 0.1,
            state_log_fc: 0.8,
            state_module: 30,
            pseudocount: 0.5,
            stimulated_fraction: 0.5,
        }
    }
}

fn bad(reason: String) -> BenchError {
    BenchError::Protocol(reason)
}

impl InjectionConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), BenchError> {
        for (name, v, lo, hi) in [
            ("program_fraction", self.program_fraction, 0.0, 1.0),
            ("state_fraction", self.state_fraction, 0.0, 1.0),
            ("stimulated_fraction", self.stimulated_fraction, 0.0, 1.0),
            ("shared_log_fc", self.shared_log_fc, 0.0, 5.0),
            ("type_spread", self.type_spread, 0.0, 3.0),
            ("state_log_fc", self.state_log_fc, 0.0, 5.0),
            ("pseudocount", self.pseudocount, 0.0, 100.0),
        ] {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return Err(bad(format!("{name} must be in [{lo}, {hi}], got {v}")));
            }
        }
        if self.program_fraction + self.state_fraction > 1.0 {
            return Err(bad(
                "program_fraction + state_fraction must not exceed 1".to_string()
            ));
        }
        if self.state_module == 0 || self.state_module > 10_000 {
            return Err(bad(format!(
                "state_module must be in 1..=10000, got {}",
                self.state_module
            )));
        }
        Ok(())
    }
}

/// The drawn program and each cell's twins.
#[derive(Debug, Clone)]
pub struct Injection {
    /// Shared program `w_g`.
    pub program: Vec<f64>,
    /// State response `v_g`.
    pub state_response: Vec<f64>,
    /// `m_t` per cell type.
    pub type_magnitude: Vec<f64>,
    /// `s_n` per cell.
    pub state: Vec<f64>,
    /// Whether each cell is observed stimulated.
    pub stimulated: Vec<bool>,
    /// Every cell's unstimulated twin (its own counts), cells × genes.
    pub control: Array2<u32>,
    /// Every cell's stimulated twin, cells × genes.
    pub stimulated_twin: Array2<u32>,
}

/// `k` distinct indices of `pool` drawn without replacement (partial Fisher–Yates).
fn choose(pool: &mut [usize], k: usize, rng: &mut Rng) -> Vec<usize> {
    let k = k.min(pool.len());
    for i in 0..k {
        let j = i + rand::Rng::random_range(rng, 0..pool.len() - i);
        pool.swap(i, j);
    }
    pool[..k].to_vec()
}

fn signed_half_normal(rng: &mut Rng, sd: f64, p_up: f64) -> f64 {
    let m = standard_normal(rng).abs() * sd;
    if open_uniform(rng) < p_up { m } else { -m }
}

impl Injection {
    /// `log f_ng` of cell `n` of type `t`.
    pub fn log_fold_change(&self, t: usize, n: usize, config: &InjectionConfig) -> Vec<f64> {
        let m = self.type_magnitude[t];
        let s = self.state[n];
        self.program
            .iter()
            .zip(&self.state_response)
            .map(|(&w, &v)| m * w + config.state_log_fc * s * v)
            .collect()
    }

    /// Draws the program under `seed` and every cell's twins. `counts` are
    /// cells × genes non-negative integers; `cell_type[n] < n_types`.
    pub fn draw(
        counts: &Array2<u32>,
        cell_type: &[usize],
        n_types: usize,
        config: &InjectionConfig,
        seed: u64,
    ) -> Result<Self, BenchError> {
        config.validate()?;
        let (n, g) = counts.dim();
        if cell_type.len() != n || cell_type.iter().any(|&t| t >= n_types) {
            return Err(bad("cell types do not match the cells".to_string()));
        }
        let mut rng = stream_rng(seed, streams::PBMC_PROGRAM);
        let mut genes: Vec<usize> = (0..g).collect();
        let n_program = (config.program_fraction * g as f64).round() as usize;
        let n_state = (config.state_fraction * g as f64).round() as usize;
        let chosen = choose(&mut genes, n_program + n_state, &mut rng);
        let mut program = vec![0.0; g];
        let mut state_response = vec![0.0; g];
        for (i, &gene) in chosen.iter().enumerate() {
            if i < n_program {
                program[gene] = signed_half_normal(&mut rng, config.shared_log_fc, 2.0 / 3.0);
            } else {
                state_response[gene] = signed_half_normal(&mut rng, 1.0, 0.5);
            }
        }
        let type_magnitude: Vec<f64> = (0..n_types)
            .map(|_| (config.type_spread * standard_normal(&mut rng)).exp())
            .collect();
        // The state module: commonly detected genes, so the score is not
        // mostly sampling noise.
        let mut common: Vec<usize> = (0..g)
            .filter(|&j| counts.column(j).iter().filter(|&&c| c > 0).count() * 10 >= n)
            .collect();
        let module = choose(&mut common, config.state_module, &mut rng);
        if module.is_empty() {
            return Err(bad(
                "no gene is detected in 10% of the cells: no state module".to_string(),
            ));
        }
        let library: Vec<f64> = counts
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&c| f64::from(c)).sum())
            .collect();
        let raw_state: Vec<f64> = (0..n)
            .map(|i| {
                let lib = library[i].max(1.0);
                module
                    .iter()
                    .map(|&j| (f64::from(counts[[i, j]]) / lib * 1e4).ln_1p())
                    .sum::<f64>()
                    / module.len() as f64
            })
            .collect();
        let state = within_type_z(&raw_state, cell_type, n_types);

        let mut assign = stream_rng(seed, streams::PBMC_ASSIGNMENT);
        let stimulated: Vec<bool> = (0..n)
            .map(|_| open_uniform(&mut assign) < config.stimulated_fraction)
            .collect();

        let mut me = Injection {
            program,
            state_response,
            type_magnitude,
            state,
            stimulated,
            control: counts.clone(),
            stimulated_twin: Array2::zeros((n, g)),
        };
        // Sequential over cells and genes: one stream, the same bytes on any
        // thread count.
        let mut round = stream_rng(seed, streams::PBMC_ROUNDING);
        for i in 0..n {
            let lfc = me.log_fold_change(cell_type[i], i, config);
            let eps = config.pseudocount * library[i] / 1000.0;
            for j in 0..g {
                let u = open_uniform(&mut round);
                let c = counts[[i, j]];
                me.stimulated_twin[[i, j]] = if lfc[j] == 0.0 {
                    c
                } else {
                    let x = (f64::from(c) + eps) * lfc[j].exp() - eps;
                    (x + u).floor().clamp(0.0, f64::from(u32::MAX)) as u32
                };
            }
        }
        Ok(me)
    }

    /// The counts each cell shows in the data set (its stimulated twin if
    /// it is stimulated).
    pub fn observed(&self) -> Array2<u32> {
        let mut out = self.control.clone();
        for (i, &s) in self.stimulated.iter().enumerate() {
            if s {
                out.row_mut(i).assign(&self.stimulated_twin.row(i));
            }
        }
        out
    }
}

/// `x` z-scored within each type (a type with one cell, or no spread, gets 0),
/// clipped to ±2.5 so that a few extreme cells do not dominate the effect.
fn within_type_z(x: &[f64], cell_type: &[usize], n_types: usize) -> Vec<f64> {
    let mut sum = vec![0.0; n_types];
    let mut sq = vec![0.0; n_types];
    let mut count = vec![0usize; n_types];
    for (&v, &t) in x.iter().zip(cell_type) {
        sum[t] += v;
        sq[t] += v * v;
        count[t] += 1;
    }
    x.iter()
        .zip(cell_type)
        .map(|(&v, &t)| {
            let k = count[t] as f64;
            let mean = sum[t] / k;
            let var = (sq[t] / k - mean * mean).max(0.0);
            if count[t] < 2 || var <= 1e-12 {
                0.0
            } else {
                ((v - mean) / var.sqrt()).clamp(-2.5, 2.5)
            }
        })
        .collect()
}
