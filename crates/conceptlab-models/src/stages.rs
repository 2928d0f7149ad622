//! Progress of the long steps that are not training epochs (normalising,
//! selecting genes, PCA): a library never prints, so it reports each step's
//! start and end to a caller-supplied observer, which decides whether and
//! how to show them.

use std::time::Instant;

/// One step of a long job starting or finishing.
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    /// What the step does, in words ("highly variable genes").
    pub stage: &'static str,
    /// Cells the step works on.
    pub cells: usize,
    /// `None` when the step starts; its wall time when it has finished.
    pub seconds: Option<f64>,
}

/// The observer of a job's steps.
pub type StageObserver<'a> = dyn FnMut(&StageReport) + 'a;

/// Runs `step`, reporting its start and, when it succeeds, its wall time.
pub fn observed<T, E>(
    observer: &mut StageObserver,
    stage: &'static str,
    cells: usize,
    step: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    observer(&StageReport {
        stage,
        cells,
        seconds: None,
    });
    let started = Instant::now();
    let out = step()?;
    observer(&StageReport {
        stage,
        cells,
        seconds: Some(started.elapsed().as_secs_f64()),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A start, then an end with a time; a failed step reports no end.
    #[test]
    fn reports_start_and_end() {
        let mut seen = Vec::new();
        let ok: Result<u8, ()> = observed(&mut |r| seen.push(r.clone()), "pca", 7, || Ok(3));
        assert_eq!(ok, Ok(3));
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (seen[0].stage, seen[0].cells, seen[0].seconds),
            ("pca", 7, None)
        );
        assert!(seen[1].seconds.is_some_and(|s| s >= 0.0));
        let mut failed = Vec::new();
        let err: Result<u8, &str> =
            observed(&mut |r| failed.push(r.clone()), "hvg", 1, || Err("x"));
        assert_eq!(err, Err("x"));
        assert_eq!(failed.len(), 1);
    }
}
