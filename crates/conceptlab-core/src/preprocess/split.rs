//! A seeded train/validation split that keeps every concept pattern in
//! both parts where it can.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;

use crate::random::stream_rng;

/// Splits cells into `(train, validation)` index lists (each ascending),
/// stratified by `strata` (e.g. each cell's concept pattern).
///
/// Exactly `round(fraction · n)` cells go to validation (at least one when
/// `fraction > 0` and `n ≥ 2`): asking for 10 % gives 10 %. Earlier versions
/// rounded each stratum on its own and sent at least one cell of every
/// stratum of two or more, so many small patterns gave 32 % (or, all
/// singletons, 0 %). The total is shared among strata in proportion to
/// their sizes by largest remainders (ties to the earlier stratum in sorted
/// order), never taking a stratum's last training cell while another
/// stratum can give one; singletons give cells only when nothing else can.
/// `fraction` is clamped to `[0, 1]`. Which cells of a stratum go is a
/// shuffle drawn from `stream_rng(seed, s)` for the stratum's rank `s` in
/// sorted order: the same split for the same inputs on every machine.
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
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let takes = apportion(&sizes, fraction);
    let mut train = Vec::with_capacity(strata.len());
    let mut val = Vec::new();
    for (rank, (mut members, take)) in groups.into_iter().zip(takes).enumerate() {
        members.shuffle(&mut stream_rng(seed, rank as u64));
        val.extend_from_slice(&members[..take]);
        train.extend_from_slice(&members[take..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Validation cells per stratum: `round(fraction · total)` in all, shared by
/// largest remainders under each stratum's capacity (all but one cell, then,
/// if that is not enough, every cell).
fn apportion(sizes: &[usize], fraction: f64) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let mut target = (fraction * total as f64).round() as usize;
    if fraction > 0.0 && total >= 2 {
        target = target.clamp(1, total - 1);
    }
    let mut takes: Vec<usize> = sizes
        .iter()
        .map(|&n| ((fraction * n as f64).floor() as usize).min(n.saturating_sub(1)))
        .collect();
    let mut assigned: usize = takes.iter().sum();
    // Largest remainder first, earlier strata first among equals.
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    let remainder = |i: usize| fraction * sizes[i] as f64 - (fraction * sizes[i] as f64).floor();
    order.sort_by(|&a, &b| remainder(b).total_cmp(&remainder(a)).then(a.cmp(&b)));
    for keep_one in [true, false] {
        while assigned < target {
            let before = assigned;
            for &i in &order {
                let cap = if keep_one {
                    sizes[i].saturating_sub(1)
                } else {
                    sizes[i]
                };
                if assigned < target && takes[i] < cap {
                    takes[i] += 1;
                    assigned += 1;
                }
            }
            if assigned == before {
                break;
            }
        }
    }
    takes
}
