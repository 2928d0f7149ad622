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
    let code = |bad_input: bool| if bad_input { BAD_INPUT } else { FAILURE };
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<IoError>() {
            return code(e.is_bad_input());
        }
        if let Some(e) = cause.downcast_ref::<conceptlab_models::ModelError>() {
            return code(e.is_bad_input());
        }
        if let Some(e) = cause.downcast_ref::<conceptlab_bench::BenchError>() {
            return code(e.is_bad_input());
        }
        if let Some(e) = cause.downcast_ref::<conceptlab_synth::SynthError>() {
            return code(e.is_bad_input());
        }
        if let Some(e) = cause.downcast_ref::<conceptlab_fs::FsError>() {
            return code(e.is_bad_input());
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
