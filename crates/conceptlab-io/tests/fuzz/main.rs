//! A fuzz harness for the `.h5ad` reader on stable Rust.
//!
//! Mutated copies of small Python-written files (tests/fixtures/corpus,
//! written by scripts/python/io_fuzz_corpus.py, plus the golden fixture) are
//! read by the whole-file reader, the metadata-only summary and a backed row
//! read. A case fails when any of them panics, runs past its deadline,
//! allocates past the counting allocator's ceiling (1 GiB at once or live),
//! or returns an error not attributed to the input.
//!
//! `cargo test -p conceptlab-io --test fuzz` runs a bounded campaign; the
//! long one is `cargo run -p xtask -- fuzz --cases N --seed S`, which runs
//! the ignored test below with `FUZZ_CASES` / `FUZZ_SEED` set.

#[path = "../alloc_guard/mod.rs"]
mod alloc_guard;
mod mutate;
mod run;

use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: alloc_guard::Counting = alloc_guard::Counting;

/// Enough cases to cover every seed file many times; a few seconds in a
/// debug build.
const BOUNDED_CASES: u64 = 400;
const BOUNDED_SEED: u64 = 20_260_101;

fn seeds(long: bool) -> Vec<run::Seed> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures/corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "h5ad"))
        .collect();
    paths.push(root.join("tests/fixtures/python_written.h5ad"));
    if long {
        // 1.7 MB: slower to mutate and read, so only in long runs.
        paths.push(root.join("../../data/pbmc68k_reduced.h5ad"));
    }
    paths.sort();
    paths.iter().map(|p| run::Seed::load(p)).collect()
}

fn config(cases: u64, seed: u64, long: bool) -> run::Config {
    run::Config {
        cases,
        seed,
        seeds: seeds(long),
        case_time: Duration::from_secs(20),
        read_limit: 256 << 20,
    }
}

#[test]
fn bounded_campaign_finds_no_panic_hang_or_huge_allocation() {
    let report = run::campaign(&config(BOUNDED_CASES, BOUNDED_SEED, false));
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.cases, BOUNDED_CASES);
    assert!(report.peak <= alloc_guard::CEILING, "{report}");
    // The campaign must reach past the first checks: some mutated files still
    // read, and many are refused in several different ways.
    let refusals = report
        .outcomes
        .keys()
        .filter(|k| !k.ends_with(":ok"))
        .count();
    assert!(report.outcomes.contains_key("read:ok"), "{report}");
    assert!(refusals >= 4, "{report}");
}

#[test]
#[ignore = "long campaign: cargo run -p xtask -- fuzz --cases N --seed S"]
fn long_campaign() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let report = run::campaign(&config(
        var("FUZZ_CASES", 10_000),
        var("FUZZ_SEED", BOUNDED_SEED),
        true,
    ));
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
}
