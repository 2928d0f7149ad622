use thiserror::Error;

/// Errors of model construction, training, inference and checkpoints.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A data-container invariant failed (the data handed in).
    #[error(transparent)]
    Core(#[from] conceptlab_core::CoreError),
    /// A tensor computation failed, or was handed invalid input.
    #[error(transparent)]
    Nn(#[from] conceptlab_nn::NnError),
    /// Inputs disagree with the model or with each other.
    #[error("{0}")]
    Input(String),
    /// A configuration value is out of range.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// Training diverged (a non-finite loss).
    #[error(
        "training diverged at epoch {epoch}: the {term} loss is {value}; lower the learning rate"
    )]
    Diverged {
        epoch: usize,
        term: &'static str,
        value: f64,
    },
    /// A checkpoint could not be read or written.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: String, reason: String },
}

impl From<candle_core::Error> for ModelError {
    fn from(err: candle_core::Error) -> Self {
        ModelError::Nn(err.into())
    }
}

impl ModelError {
    /// Whether the error is the caller's (bad input or configuration) rather
    /// than a failure of the computation.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ModelError::Input(_) | ModelError::Config(_) | ModelError::Checkpoint { .. } => true,
            // Data-container invariants are violated by the data handed in;
            // a failed tensor operation is ours.
            ModelError::Core(_) => true,
            ModelError::Nn(e) => !matches!(e, conceptlab_nn::NnError::Tensor(_)),
            ModelError::Diverged { .. } => false,
        }
    }
}
