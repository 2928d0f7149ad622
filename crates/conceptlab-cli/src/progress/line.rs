//! The text of progress log lines: a training epoch, a share of a job's
//! cells, a preprocessing step. Pure functions, so their fields are tested.

use std::fmt::Write as _;
use std::time::Duration;

use conceptlab_models::EpochReport;

/// `42s`, `3m05s`, `2h07m`: short enough for a log line, exact enough
/// for an ETA.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Remaining time at the mean pace so far: `done` of `total` units took
/// `elapsed`.
fn eta(elapsed: Duration, done: usize, total: usize) -> f64 {
    if done == 0 {
        return f64::NAN;
    }
    elapsed.as_secs_f64() / done as f64 * total.saturating_sub(done) as f64
}

/// `scCBGM epoch 3/200: loss 0.4123, val 0.4410, f1 0.912, lr 4.99e-4,
/// 31250 cells/s, eta 2m05s`. The ETA runs to `max_epochs` (an upper bound:
/// early stopping may end sooner); `elapsed` is the training's time so far.
pub fn epoch(label: &str, report: &EpochReport, max_epochs: usize, elapsed: Duration) -> String {
    let done = report.epoch + 1;
    let mut line = format!(
        "{label} epoch {done}/{max_epochs}: loss {:.4}",
        report.train_loss
    );
    if let Some(v) = report.validation_loss {
        let _ = write!(line, ", val {v:.4}");
    }
    for (name, value) in &report.scores {
        let _ = write!(line, ", {name} {value:.3}");
    }
    let rate = report.cells as f64 / report.seconds.max(1e-9);
    let _ = write!(
        line,
        ", lr {:.2e}, {rate:.0} cells/s, eta {}",
        report.lr,
        duration(eta(elapsed, done, max_epochs))
    );
    line
}

/// `edit: 20000/100000 cells (20%), 5120 cells/s, eta 16s`.
pub fn work(label: &str, unit: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let share = 100.0 * done as f64 / total.max(1) as f64;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    format!(
        "{label}: {done}/{total} {unit} ({share:.0}%), {rate:.0} {unit}/s, eta {}",
        duration(eta(elapsed, done, total))
    )
}

/// `fit: PCA on 100000 cells...` when a step starts, `fit: PCA done in
/// 12.3 s` when it ends.
pub fn stage(label: &str, report: &conceptlab_models::stages::StageReport) -> String {
    match report.seconds {
        None => format!("{label}: {} on {} cells...", report.stage, report.cells),
        Some(s) => format!("{label}: {} done in {s:.1} s", report.stage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conceptlab_models::stages::StageReport;

    fn report(epoch: usize, validation: Option<f64>) -> EpochReport {
        EpochReport {
            epoch,
            lr: 5e-4,
            train_loss: 0.41234,
            validation_loss: validation,
            scores: vec![("f1", 0.9123)],
            seconds: 2.0,
            cells: 9000,
        }
    }

    /// Every field of an epoch line: epoch of max, losses, scores, lr,
    /// throughput and the time left at the pace so far.
    #[test]
    fn epoch_line_has_every_field() {
        // 5 epochs in 10 s: 195 left at 2 s each = 390 s.
        let line = epoch(
            "scCBGM",
            &report(4, Some(0.5)),
            200,
            Duration::from_secs(10),
        );
        assert_eq!(
            line,
            "scCBGM epoch 5/200: loss 0.4123, val 0.5000, f1 0.912, lr 5.00e-4, \
             4500 cells/s, eta 6m30s"
        );
        let no_val = epoch("CBM-FM", &report(199, None), 200, Duration::from_secs(400));
        assert!(!no_val.contains("val"), "{no_val}");
        assert!(no_val.ends_with("eta 0s"), "{no_val}");
    }

    #[test]
    fn work_and_stage_lines() {
        assert_eq!(
            work("edit", "cells", 20_000, 100_000, Duration::from_secs(4)),
            "edit: 20000/100000 cells (20%), 5000 cells/s, eta 16s"
        );
        let start = StageReport {
            stage: "PCA",
            cells: 10,
            seconds: None,
        };
        assert_eq!(stage("fit", &start), "fit: PCA on 10 cells...");
        let end = StageReport {
            seconds: Some(1.34),
            ..start
        };
        assert_eq!(stage("fit", &end), "fit: PCA done in 1.3 s");
    }

    #[test]
    fn durations_read_as_time() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
        assert_eq!(duration(f64::NAN), "?");
    }
}
