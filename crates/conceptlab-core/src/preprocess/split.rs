//! A seeded train/validation split that keeps every concept pattern in
//! both parts where it can.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;

use crate::random::stream_rng;

/// Splits cells into `(train, validation)` index lists (each ascending),
/// stratified by `strata` (e.g. each cell's concept pattern). A stratum of
/// `n ≥ 2` cells sends `round(fraction · n)` of them to validation, clamped
/// to `1..=n−1` when `fraction > 0` so that every pattern with two cells
/// appears on both sides; a stratum of one cell stays in training.
/// `fraction` is clamped to `[0, 1]`. Which cells go is a shuffle of each
/// stratum drawn from `stream_rng(seed, s)` for the stratum's rank `s` in
/// sorted order — the same split for the same inputs on every machine.
pub fn stratified_split<T: Ord>(
    strata: &[T],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut groups: BTreeMap<&T, Vec<usize>> = BTreeMap::new();
    for (i, s) in strata.iter().enumerate() {
        groups.entry(s).or_default().push(i);
    }
    let mut train = Vec::with_capacity(strata.len());
    let mut val = Vec::new();
    for (rank, members) in groups.into_values().enumerate() {
        let n = members.len();
        let take = if n < 2 || fraction == 0.0 {
            0
        } else {
            ((fraction * n as f64).round() as usize).clamp(1, n - 1)
        };
        let mut shuffled = members;
        shuffled.shuffle(&mut stream_rng(seed, rank as u64));
        val.extend_from_slice(&shuffled[..take]);
        train.extend_from_slice(&shuffled[take..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}
