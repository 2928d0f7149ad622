//! Progress of long jobs (training, preprocessing, edits) on stderr, as the
//! `progress` settings say: an indicatif bar on a terminal, `tracing` INFO
//! lines at a bounded rate otherwise (a batch job's log), or nothing.

mod line;
mod rate;

use std::time::{Duration, Instant};

use conceptlab_cli::settings::{ProgressMode, ProgressSettings};
use conceptlab_models::EpochReport;
use conceptlab_models::stages::StageReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use rate::Throttle;

/// What `auto` means here: a bar on a terminal, log lines otherwise.
fn resolve(mode: ProgressMode) -> ProgressMode {
    match mode {
        ProgressMode::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
            ProgressMode::Bar
        }
        ProgressMode::Auto => ProgressMode::Log,
        other => other,
    }
}

/// A bar over `len` steps drawn with `template`, hidden unless progress is
/// shown as a bar, stderr is a terminal and logging is not quiet.
pub fn bar(settings: &ProgressSettings, len: usize, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if resolve(settings.mode) != ProgressMode::Bar
        || !std::io::IsTerminal::is_terminal(&std::io::stderr())
        || !tracing::enabled!(tracing::Level::INFO)
    {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Where one job's updates go.
enum Sink {
    Bar(ProgressBar),
    Log(Throttle),
    Silent,
}

impl Sink {
    fn new(settings: &ProgressSettings, len: usize, template: &str) -> Self {
        match resolve(settings.mode) {
            ProgressMode::Log => Sink::Log(Throttle::new(Duration::from_secs_f64(
                settings.log_interval_s,
            ))),
            ProgressMode::None => Sink::Silent,
            _ => Sink::Bar(bar(settings, len, template)),
        }
    }

    /// Logs the held-back last update, or removes the bar.
    fn finish(&mut self) {
        match self {
            Sink::Bar(bar) => bar.finish_and_clear(),
            Sink::Log(throttle) => {
                if let Some(line) = throttle.finish() {
                    tracing::info!("{line}");
                }
            }
            Sink::Silent => {}
        }
    }
}

/// Reports a training run's epochs as they finish (of any model: every
/// training loop reports the same [`EpochReport`]).
pub struct TrainingProgress {
    label: String,
    max_epochs: usize,
    started: Instant,
    sink: Sink,
}

impl TrainingProgress {
    /// Progress over at most `max_epochs` epochs of the model `label`.
    pub fn new(settings: &ProgressSettings, max_epochs: usize, label: &str) -> Self {
        let sink = Sink::new(
            settings,
            max_epochs,
            "{prefix} [{bar:30}] epoch {pos}/{len} {msg} ({elapsed}, eta {eta})",
        );
        if let Sink::Bar(bar) = &sink {
            bar.set_prefix(label.to_string());
        }
        TrainingProgress {
            label: label.to_string(),
            max_epochs,
            started: Instant::now(),
            sink,
        }
    }

    /// Shows one finished epoch.
    pub fn epoch(&mut self, report: &EpochReport) {
        match &mut self.sink {
            Sink::Bar(bar) => {
                bar.set_message(bar_message(report));
                bar.inc(1);
                if bar.is_hidden() {
                    tracing::debug!(
                        epoch = report.epoch,
                        loss = report.train_loss,
                        validation = report.validation_loss,
                        scores = ?report.scores,
                        lr = report.lr,
                        "epoch"
                    );
                }
            }
            Sink::Log(throttle) => {
                let elapsed = self.started.elapsed();
                let (label, max) = (&self.label, self.max_epochs);
                if let Some(text) =
                    throttle.update(elapsed, || line::epoch(label, report, max, elapsed))
                {
                    tracing::info!("{text}");
                }
            }
            Sink::Silent => {}
        }
    }

    /// Logs the last epoch if it was held back, or removes the bar.
    pub fn finish(&mut self) {
        self.sink.finish();
    }
}

/// The bar's message: the losses and scores of the latest epoch.
fn bar_message(report: &EpochReport) -> String {
    let mut message = format!("loss {:.4}", report.train_loss);
    if let Some(v) = report.validation_loss {
        message.push_str(&format!(" val {v:.4}"));
    }
    for (name, value) in &report.scores {
        message.push_str(&format!(" {name} {value:.3}"));
    }
    message.push_str(&format!(" lr {:.2e}", report.lr));
    message
}

/// Reports a job over a known number of units (an edit's cells, chunk by
/// chunk).
pub struct WorkProgress {
    label: String,
    unit: &'static str,
    total: usize,
    done: usize,
    started: Instant,
    sink: Sink,
}

impl WorkProgress {
    /// Progress of `label` over `total` `unit`s.
    pub fn new(settings: &ProgressSettings, label: &str, total: usize, unit: &'static str) -> Self {
        let sink = Sink::new(
            settings,
            total,
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        );
        if let Sink::Bar(bar) = &sink {
            bar.set_prefix(label.to_string());
            bar.set_message(unit);
        }
        WorkProgress {
            label: label.to_string(),
            unit,
            total,
            done: 0,
            started: Instant::now(),
            sink,
        }
    }

    /// `n` more units are done.
    pub fn advance(&mut self, n: usize) {
        self.done = (self.done + n).min(self.total);
        match &mut self.sink {
            Sink::Bar(bar) => bar.set_position(self.done as u64),
            Sink::Log(throttle) => {
                let elapsed = self.started.elapsed();
                let (label, unit, done, total) = (&self.label, self.unit, self.done, self.total);
                if let Some(text) =
                    throttle.update(elapsed, || line::work(label, unit, done, total, elapsed))
                {
                    tracing::info!("{text}");
                }
            }
            Sink::Silent => {}
        }
    }

    /// Logs the last update if it was held back, or removes the bar.
    pub fn finish(&mut self) {
        self.sink.finish();
    }
}

/// An observer of a library's long steps (preprocessing): one INFO line
/// when each starts and ends, unless progress is off. They are few, so no
/// rate limit applies.
pub fn stages(settings: &ProgressSettings, label: &str) -> impl FnMut(&StageReport) + use<> {
    let shown = settings.mode != ProgressMode::None;
    let label = label.to_string();
    move |report| {
        if shown {
            tracing::info!("{}", line::stage(&label, report));
        }
    }
}
