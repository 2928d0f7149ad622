//! The benchmark's run plan: independent runs (suite × data set × held-out
//! combination × model × seed), each recorded in its own JSON, skipped when
//! a record of the same configuration already exists, and run `jobs` at a
//! time.
//!
//! The runner knows nothing about what a run computes (the caller's
//! closure does) nor where records live ([`RunStore`]; [`DirStore`] keeps
//! one file per run, written atomically).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::protocol::{Failure, TopGenes};
use crate::report::MethodScore;

/// The version of this crate, recorded in every run: a record written by
/// another version is redone.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One run of a plan: everything that determines its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The suite the run belongs to (`quick`, `synthetic`, `pbmc`).
    pub suite: String,
    /// The data set within the suite (`synthetic_1`, `pbmc68k`).
    pub dataset: String,
    /// Index of the held-out combination in the data set's split.
    pub combination: usize,
    /// The registry model (or pseudo-model, e.g. `oracle-shift`) scored.
    pub model: String,
    pub seed: u64,
    /// The rest of the configuration (data sizes, preprocessing, model and
    /// training settings), compared as a whole on resume.
    pub config: serde_json::Value,
}

impl RunSpec {
    /// A file-name-safe, unique id within a plan.
    pub fn id(&self) -> String {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
                    _ => '_',
                })
                .collect()
        };
        format!(
            "{}__{}__c{}__{}__s{}",
            safe(&self.suite),
            safe(&self.dataset),
            self.combination,
            safe(&self.model),
            self.seed
        )
    }
}

/// What a run measured, as its JSON holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub spec: RunSpec,
    /// [`VERSION`] of the crate that ran it.
    pub version: String,
    /// How tables name the held-out combination (`celltype_3 x concept_4`).
    pub held_out: String,
    /// The model's rows (a model may give several, e.g. with and without
    /// its residual).
    pub scores: Vec<MethodScore>,
    /// Further numbers of the run (`concept_auroc`, ...), by name.
    pub metrics: Vec<(String, f64)>,
    /// Mean expression of the top DE genes (synthetic suites).
    pub top_genes: Option<TopGenes>,
    /// Parts of the model that could not run on these cells, and why.
    pub failures: Vec<Failure>,
    /// Wall time of the run, and its parts (`fit`, `edit`) where measured.
    pub seconds: f64,
    pub timings: Vec<(String, f64)>,
    /// Everything else the run reported, kept for the record.
    pub details: serde_json::Value,
}

/// Where run records live.
pub trait RunStore: Sync {
    /// The stored text of run `id`, if any.
    fn load(&self, id: &str) -> Option<String>;
    /// Stores `text` as run `id`, whole or not at all.
    fn save(&self, id: &str, text: &str) -> Result<(), BenchError>;
}

/// One `<id>.json` per run in a directory, each written atomically
/// (temporary file + rename), so a stopped benchmark leaves only whole
/// records.
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// Records under `dir` (created if needed).
    pub fn new(dir: &Path) -> Result<Self, BenchError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BenchError::Store(format!("cannot create {}: {e}", dir.display())))?;
        Ok(DirStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The file of run `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

impl RunStore for DirStore {
    fn load(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.path(id)).ok()
    }

    fn save(&self, id: &str, text: &str) -> Result<(), BenchError> {
        Ok(conceptlab_fs::write_atomic(
            &self.path(id),
            text.as_bytes(),
        )?)
    }
}

/// The finished record of `spec` in `store`, if there is a whole one of
/// the same configuration and version; anything else (absent, unreadable,
/// another configuration) means the run is to be done.
pub fn finished(store: &dyn RunStore, spec: &RunSpec) -> Option<RunRecord> {
    let text = store.load(&spec.id())?;
    match serde_json::from_str::<RunRecord>(&text) {
        Ok(r) if r.spec == *spec && r.version == VERSION => Some(r),
        Ok(_) => {
            tracing::info!(
                id = spec.id(),
                "stored run has another configuration: redone"
            );
            None
        }
        Err(e) => {
            tracing::warn!(id = spec.id(), "stored run is unreadable ({e}): redone");
            None
        }
    }
}

/// What happened to one run of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// Its record was already there.
    Skipped,
    /// It ran and its record was written.
    Ran,
}

/// Runs every spec of `plan` not already finished in `store`, `jobs` at a
/// time, storing each record as soon as it is done; returns the records in
/// plan order. `run` computes one record; it must not depend on which
/// thread runs it (the caller fixes each run's threads). After a failure no
/// new run starts, the ones in flight finish and are stored, and the first
/// error is returned.
pub fn execute<F, P>(
    plan: &[RunSpec],
    jobs: usize,
    store: &dyn RunStore,
    run: F,
    progress: P,
) -> Result<Vec<RunRecord>, BenchError>
where
    F: Fn(&RunSpec) -> Result<RunRecord, BenchError> + Sync,
    P: Fn(&RunSpec, Event, &RunRecord) + Sync,
{
    let mut ids: Vec<String> = plan.iter().map(RunSpec::id).collect();
    ids.sort();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(BenchError::Protocol(format!(
            "the plan holds run {} twice",
            w[0]
        )));
    }
    let results: Vec<Mutex<Option<RunRecord>>> = plan.iter().map(|_| Mutex::new(None)).collect();
    let first_error: Mutex<Option<BenchError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let worker = || {
        loop {
            if lock(&first_error).is_some() {
                return;
            }
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(spec) = plan.get(i) else {
                return;
            };
            let outcome = match finished(store, spec) {
                Some(record) => Ok((record, Event::Skipped)),
                None => run_one(spec, &run, store).map(|r| (r, Event::Ran)),
            };
            match outcome {
                Ok((record, event)) => {
                    progress(spec, event, &record);
                    *lock(&results[i]) = Some(record);
                }
                Err(e) => {
                    let mut slot = lock(&first_error);
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                    return;
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, plan.len().max(1)) {
            scope.spawn(worker);
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect())
}

/// Runs and stores one spec, checking the record is of that spec.
fn run_one<F>(spec: &RunSpec, run: &F, store: &dyn RunStore) -> Result<RunRecord, BenchError>
where
    F: Fn(&RunSpec) -> Result<RunRecord, BenchError>,
{
    let started = Instant::now();
    let mut record = run(spec)?;
    if record.spec != *spec {
        return Err(BenchError::Protocol(format!(
            "run {} returned the record of another run",
            spec.id()
        )));
    }
    record.version = VERSION.to_string();
    if record.seconds == 0.0 {
        record.seconds = started.elapsed().as_secs_f64();
    }
    let text = serde_json::to_string_pretty(&record)
        .map_err(|e| BenchError::Store(format!("cannot encode run {}: {e}", spec.id())))?;
    store.save(&spec.id(), &text)?;
    Ok(record)
}

/// A poisoned lock's data is still whole here (every write is one
/// assignment), so a panicking run does not hide the others' results.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MemStore(Mutex<HashMap<String, String>>);

    impl RunStore for MemStore {
        fn load(&self, id: &str) -> Option<String> {
            lock(&self.0).get(id).cloned()
        }
        fn save(&self, id: &str, text: &str) -> Result<(), BenchError> {
            lock(&self.0).insert(id.to_string(), text.to_string());
            Ok(())
        }
    }

    fn spec(model: &str, seed: u64) -> RunSpec {
        RunSpec {
            suite: "quick".into(),
            dataset: "synthetic_1".into(),
            combination: 0,
            model: model.into(),
            seed,
            config: serde_json::json!({"cells": 100}),
        }
    }

    /// A record whose score is the seed, so results show which run made them.
    fn fake(spec: &RunSpec) -> Result<RunRecord, BenchError> {
        Ok(RunRecord {
            spec: spec.clone(),
            version: String::new(),
            held_out: "celltype_0 x concept_1".into(),
            scores: vec![MethodScore {
                method: spec.model.clone(),
                label: spec.model.clone(),
                mse: spec.seed as f64,
                shared_mse: 0.0,
            }],
            metrics: Vec::new(),
            top_genes: None,
            failures: Vec::new(),
            seconds: 0.0,
            timings: Vec::new(),
            details: serde_json::Value::Null,
        })
    }

    fn counting<'a>(
        calls: &'a Mutex<Vec<String>>,
    ) -> impl Fn(&RunSpec) -> Result<RunRecord, BenchError> + Sync + 'a {
        move |s| {
            lock(calls).push(s.id());
            fake(s)
        }
    }

    #[test]
    fn finished_runs_are_skipped_and_the_rest_run() {
        let store = MemStore::default();
        let plan = vec![spec("copy", 0), spec("copy", 1), spec("sccbgm", 0)];
        let calls = Mutex::new(Vec::new());
        let first = execute(&plan[..2], 1, &store, counting(&calls), |_, _, _| {}).unwrap();
        assert_eq!(first.len(), 2);
        lock(&calls).clear();
        let events = Mutex::new(Vec::new());
        let all = execute(&plan, 2, &store, counting(&calls), |s, e, _| {
            lock(&events).push((s.id(), e))
        })
        .unwrap();
        assert_eq!(*lock(&calls), vec![plan[2].id()]);
        let mut events = events.into_inner().unwrap();
        events.sort();
        assert_eq!(
            events,
            vec![
                (plan[0].id(), Event::Skipped),
                (plan[1].id(), Event::Skipped),
                (plan[2].id(), Event::Ran),
            ]
        );
        // Plan order, whatever order the workers finished in.
        let seeds: Vec<(String, u64)> = all
            .iter()
            .map(|r| (r.spec.model.clone(), r.spec.seed))
            .collect();
        assert_eq!(
            seeds,
            vec![("copy".into(), 0), ("copy".into(), 1), ("sccbgm".into(), 0)]
        );
        assert!(all.iter().all(|r| r.version == VERSION));
    }

    #[test]
    fn corrupted_partial_or_changed_records_are_redone() {
        let store = MemStore::default();
        let plan = vec![spec("copy", 0), spec("copy", 1), spec("copy", 2)];
        let calls = Mutex::new(Vec::new());
        execute(&plan, 1, &store, counting(&calls), |_, _, _| {}).unwrap();
        // Run 0: cut short; run 1: another configuration; run 2: another version.
        let whole = store.load(&plan[0].id()).unwrap();
        store
            .save(&plan[0].id(), &whole[..whole.len() / 2])
            .unwrap();
        let mut changed: RunRecord =
            serde_json::from_str(&store.load(&plan[1].id()).unwrap()).unwrap();
        changed.spec.config = serde_json::json!({"cells": 200});
        store
            .save(&plan[1].id(), &serde_json::to_string(&changed).unwrap())
            .unwrap();
        let mut old: RunRecord = serde_json::from_str(&store.load(&plan[2].id()).unwrap()).unwrap();
        old.version = "0.0.0-old".into();
        store
            .save(&plan[2].id(), &serde_json::to_string(&old).unwrap())
            .unwrap();
        lock(&calls).clear();
        let again = execute(&plan, 1, &store, counting(&calls), |_, _, _| {}).unwrap();
        assert_eq!(
            *lock(&calls),
            plan.iter().map(RunSpec::id).collect::<Vec<_>>()
        );
        assert_eq!(again.len(), 3);
        assert!(plan.iter().all(|s| finished(&store, s).is_some()));
    }

    #[test]
    fn results_do_not_depend_on_jobs_and_a_failure_stops_the_plan() {
        let plan: Vec<RunSpec> = (0..7).map(|s| spec("copy", s)).collect();
        // Everything but the wall time.
        let results = |jobs| -> Vec<(RunSpec, Vec<MethodScore>)> {
            execute(&plan, jobs, &MemStore::default(), fake, |_, _, _| {})
                .unwrap()
                .into_iter()
                .map(|r| (r.spec, r.scores))
                .collect()
        };
        assert_eq!(results(1), results(4));
        let store = MemStore::default();
        let failing = |s: &RunSpec| {
            if s.seed == 3 {
                Err(BenchError::Protocol("boom".into()))
            } else {
                fake(s)
            }
        };
        let err = execute(&plan, 1, &store, failing, |_, _, _| {}).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        // The runs before the failure are kept for the next attempt.
        assert!(finished(&store, &plan[2]).is_some());
        assert!(finished(&store, &plan[3]).is_none());
        let twice = vec![spec("copy", 0), spec("copy", 0)];
        assert!(execute(&twice, 1, &store, fake, |_, _, _| {}).is_err());
    }

    #[test]
    fn dir_store_round_trips_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(&dir.path().join("runs")).unwrap();
        let plan = vec![spec("mean-shift", 5)];
        let done = execute(&plan, 1, &store, fake, |_, _, _| {}).unwrap();
        assert!(store.path(&plan[0].id()).is_file());
        assert_eq!(finished(&store, &plan[0]).as_ref(), done.first());
        assert_eq!(plan[0].id(), "quick__synthetic_1__c0__mean-shift__s5");
    }
}
