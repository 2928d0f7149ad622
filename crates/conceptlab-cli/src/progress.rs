//! Training progress: an indicatif bar on a terminal, log lines otherwise.

use conceptlab_models::EpochReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` steps drawn with `template`, hidden when stderr is not a
/// terminal or logging is quiet.
pub fn bar(len: usize, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr())
        || !tracing::enabled!(tracing::Level::INFO)
    {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Reports epochs as they finish.
pub struct TrainingProgress {
    bar: ProgressBar,
}

impl TrainingProgress {
    /// A bar over at most `max_epochs` epochs, hidden when stderr is not a
    /// terminal or logging is quiet.
    pub fn new(max_epochs: usize, label: &str) -> Self {
        let bar = bar(
            max_epochs,
            "{prefix} [{bar:30}] epoch {pos}/{len} {msg} ({elapsed}, eta {eta})",
        );
        bar.set_prefix(label.to_string());
        TrainingProgress { bar }
    }

    /// Shows one finished epoch (of any model: every training loop reports
    /// the same [`EpochReport`]).
    pub fn epoch(&self, report: &EpochReport) {
        let mut message = format!("loss {:.4}", report.train_loss);
        if let Some(v) = report.validation_loss {
            message.push_str(&format!(" val {v:.4}"));
        }
        for (name, value) in &report.scores {
            message.push_str(&format!(" {name} {value:.3}"));
        }
        message.push_str(&format!(" lr {:.2e}", report.lr));
        self.bar.set_message(message);
        self.bar.inc(1);
        if self.bar.is_hidden() {
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

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
