//! Training progress: an indicatif bar on a terminal, log lines otherwise.

use conceptlab_models::EpochRecord;
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

    /// Shows one finished epoch.
    pub fn epoch(&self, record: &EpochRecord) {
        let val = record
            .validation
            .map_or(String::new(), |v| format!(" val {:.4}", v.total));
        let f1 = record
            .validation_concept_f1
            .unwrap_or(record.train_concept_f1);
        self.bar.set_message(format!(
            "loss {:.4}{val} concept F1 {f1:.3} lr {:.2e}",
            record.train.total, record.lr
        ));
        self.bar.inc(1);
        if self.bar.is_hidden() {
            tracing::debug!(
                epoch = record.epoch,
                loss = record.train.total,
                validation = record.validation.map(|v| v.total),
                concept_f1 = f1,
                lr = record.lr,
                "epoch"
            );
        }
    }

    /// Shows one finished epoch of a flow's training.
    pub fn flow_epoch(&self, epoch: usize, loss: f64, validation: Option<f64>) {
        let val = validation.map_or(String::new(), |v| format!(" val {v:.4}"));
        self.bar.set_message(format!("loss {loss:.4}{val}"));
        self.bar.inc(1);
        if self.bar.is_hidden() {
            tracing::debug!(epoch, loss, validation, "flow epoch");
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
