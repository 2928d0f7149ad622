//! Running mutated files through the reader under bounds: every case runs on
//! a worker thread that the campaign waits for with a deadline (a hang is a
//! failure), inside `catch_unwind` (a panic is a failure), and under the
//! counting allocator (an allocation past its ceiling is a failure; one it
//! refuses aborts the process, so the case about to run is always written to
//! `last-case.txt` beside the files first).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conceptlab_io::{H5ad, IoError};

use crate::alloc_guard;
use crate::mutate::{Mutation, Rng, mutate, structure_offsets};

/// A file the mutations start from.
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
    structures: Vec<usize>,
}

impl Seed {
    pub fn load(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self {
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            structures: structure_offsets(&bytes),
            bytes,
        }
    }
}

pub struct Config {
    pub cases: u64,
    pub seed: u64,
    pub seeds: Vec<Seed>,
    /// Longest a case may take before it counts as a hang.
    pub case_time: Duration,
    /// The memory limit the reader is given (`H5ad::with_memory_limit`).
    pub read_limit: u64,
}

/// What a campaign saw.
#[derive(Default)]
pub struct Report {
    pub cases: u64,
    /// Outcome of each read path (`ok`, or the error variant) and its count.
    pub outcomes: BTreeMap<String, u64>,
    pub failures: Vec<String>,
    pub largest_allocation: usize,
    /// The case that made the largest allocation.
    pub largest_case: String,
    /// The highest live total during any case.
    pub peak: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} cases in {:.1} s; largest allocation {} KiB ({}), peak {} KiB",
            self.cases,
            self.elapsed.as_secs_f64(),
            self.largest_allocation >> 10,
            self.largest_case,
            self.peak >> 10
        )?;
        let outcomes = self.outcomes.iter().fold(String::new(), |mut s, (k, n)| {
            let _ = write!(s, " {k}={n}");
            s
        });
        writeln!(f, "outcomes:{outcomes}")?;
        for failure in &self.failures {
            writeln!(f, "FAILURE {failure}")?;
        }
        Ok(())
    }
}

/// The result of one read path on one file.
type PathOutcome = Result<&'static str, String>;

struct CaseResult {
    outcomes: Vec<(&'static str, PathOutcome)>,
    largest: usize,
    peak: usize,
}

fn variant(e: &IoError) -> &'static str {
    match e {
        IoError::Open { .. } => "Open",
        IoError::NotHdf5 { .. } => "NotHdf5",
        IoError::Truncated { .. } => "Truncated",
        IoError::Corrupt { .. } => "Corrupt",
        IoError::Missing { .. } => "Missing",
        IoError::Unsupported { .. } => "Unsupported",
        IoError::Invalid { .. } => "Invalid",
        IoError::TooLarge { .. } => "TooLarge",
        IoError::Read { .. } => "Read",
        IoError::Data { .. } => "Data",
        _ => "other",
    }
}

/// Runs `read` inside `catch_unwind`: `Ok(outcome)` or `Err(panic message)`.
fn guarded<T>(read: impl FnOnce() -> conceptlab_io::Result<T>) -> PathOutcome {
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(Ok(_)) => Ok("ok"),
        Ok(Err(e)) => {
            // Every refusal must be attributed to the input.
            if e.is_bad_input() {
                Ok(variant(&e))
            } else {
                Err(format!("error not marked as bad input: {e}"))
            }
        }
        Err(payload) => Err(payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .map_or_else(|| "panic".to_owned(), |m| format!("panic: {m}"))),
    }
}

/// Every read path on one file: the whole-file read, the metadata-only
/// summary (`inspect`), and a backed read of a few rows.
fn check(path: &Path, limit: u64) -> CaseResult {
    alloc_guard::reset();
    let open = || H5ad::open(path).map(|f| f.with_memory_limit(limit));
    let outcomes = vec![
        ("read", guarded(|| open()?.read())),
        ("summary", guarded(|| open()?.summary())),
        ("rows", guarded(|| open()?.read_rows("X", &[1, 0, 1]))),
    ];
    CaseResult {
        outcomes,
        largest: alloc_guard::largest_here(),
        peak: alloc_guard::peak(),
    }
}

/// Runs the campaign; returns early (with a failure) on the first hang.
pub fn campaign(config: &Config) -> Report {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
    let last_case = dir.path().join("last-case.txt");
    let (jobs, job_rx) = mpsc::channel::<PathBuf>();
    let (result_tx, results) = mpsc::channel::<CaseResult>();
    let limit = config.read_limit;
    std::thread::spawn(move || {
        for path in job_rx {
            if result_tx.send(check(&path, limit)).is_err() {
                break;
            }
        }
    });
    let mut report = Report::default();
    for case in 0..config.cases {
        let mut rng = Rng::for_case(config.seed, case);
        let seed = &config.seeds[rng.below(config.seeds.len())];
        let (bytes, mutations) = mutate(&mut rng, &seed.bytes, &seed.structures);
        let what = describe(config.seed, case, &seed.name, &mutations);
        let path = dir.path().join(format!("case-{case}.h5ad"));
        let written =
            std::fs::write(&path, &bytes).and_then(|()| std::fs::write(&last_case, &what));
        if let Err(e) = written {
            report
                .failures
                .push(format!("{what}: cannot write the case: {e}"));
            break;
        }
        report.cases += 1;
        if jobs.send(path.clone()).is_err() {
            report
                .failures
                .push(format!("{what}: the worker thread died"));
            break;
        }
        match results.recv_timeout(config.case_time) {
            Ok(result) => {
                if result.largest > report.largest_allocation {
                    report.largest_allocation = result.largest;
                    report.largest_case = what.clone();
                }
                report.peak = report.peak.max(result.peak);
                for (read_path, outcome) in result.outcomes {
                    match outcome {
                        Ok(kind) => {
                            *report
                                .outcomes
                                .entry(format!("{read_path}:{kind}"))
                                .or_default() += 1
                        }
                        Err(message) => report
                            .failures
                            .push(format!("{what} [{read_path}]: {message}")),
                    }
                }
                if let Some(size) = alloc_guard::refused() {
                    report
                        .failures
                        .push(format!("{what}: asked for {size} bytes"));
                }
            }
            Err(_) => {
                report.failures.push(format!(
                    "{what}: still running after {:?} (hang); file kept at {}",
                    config.case_time,
                    keep(&path).display()
                ));
                break;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    report.elapsed = started.elapsed();
    report
}

fn describe(seed: u64, case: u64, file: &str, mutations: &[Mutation]) -> String {
    let changes: Vec<String> = mutations.iter().map(ToString::to_string).collect();
    format!(
        "case {case} (seed {seed}) of {file}: {}",
        changes.join("; ")
    )
}

/// Copies a hanging case out of the temporary directory, which is removed.
fn keep(path: &Path) -> PathBuf {
    let kept = std::env::temp_dir().join(path.file_name().unwrap_or_default());
    let _ = std::fs::copy(path, &kept);
    kept
}
