//! Exit codes: 0 success, 2 bad input or usage (as clap uses for usage
//! errors), 1 anything else (an internal failure or the environment).

use conceptlab_io::IoError;

/// An error caused by what the user asked for or handed in.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

pub const BAD_INPUT: u8 = 2;
pub const FAILURE: u8 = 1;

pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<IoError>() {
            return if io.is_bad_input() {
                BAD_INPUT
            } else {
                FAILURE
            };
        }
        if let Some(model) = cause.downcast_ref::<conceptlab_models::ModelError>() {
            return if model.is_bad_input() {
                BAD_INPUT
            } else {
                FAILURE
            };
        }
        if let Some(bench) = cause.downcast_ref::<conceptlab_bench::BenchError>() {
            return if bench.is_bad_input() {
                BAD_INPUT
            } else {
                FAILURE
            };
        }
        if cause.downcast_ref::<UserError>().is_some() {
            return BAD_INPUT;
        }
    }
    FAILURE
}

/// Shorthand for returning a [`UserError`].
macro_rules! user_error {
    ($($arg:tt)*) => {
        anyhow::Error::new($crate::exit::UserError(format!($($arg)*)))
    };
}
pub(crate) use user_error;
