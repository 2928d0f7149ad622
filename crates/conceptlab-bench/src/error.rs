use thiserror::Error;

/// Errors of a benchmark run.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Model(#[from] conceptlab_models::ModelError),
    #[error(transparent)]
    Synth(#[from] conceptlab_synth::SynthError),
    #[error(transparent)]
    Eval(#[from] conceptlab_eval::EvalError),
    #[error(transparent)]
    Core(#[from] conceptlab_core::CoreError),
    /// A run record could not be written.
    #[error(transparent)]
    Fs(#[from] conceptlab_fs::FsError),
    /// A run store's own failure (a directory, an encoding).
    #[error("{0}")]
    Store(String),
    /// A plot could not be drawn or encoded.
    #[error("cannot draw {0}")]
    Plot(String),
    /// The benchmark's own preconditions (a combination that does not
    /// exist, a target never on in training, a leaked held-out cell).
    #[error("{0}")]
    Protocol(String),
}

impl BenchError {
    /// Whether the caller asked for something that cannot be run.
    pub fn is_bad_input(&self) -> bool {
        match self {
            BenchError::Model(e) => e.is_bad_input(),
            BenchError::Synth(_) | BenchError::Protocol(_) => true,
            BenchError::Fs(e) => e.is_bad_input(),
            BenchError::Eval(_)
            | BenchError::Core(_)
            | BenchError::Store(_)
            | BenchError::Plot(_) => false,
        }
    }
}
