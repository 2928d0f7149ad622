//! Upper bounds on every count a user can set. Each is far above any real
//! use (the reference's largest settings are 1024 units, 4 layers, a few
//! hundred epochs) and low enough that a typo such as `--steps 10^19` is
//! refused at once instead of running for years or exhausting memory.

use std::ops::RangeInclusive;

use crate::ModelError;

/// Epochs of one training run.
pub const MAX_EPOCHS: usize = 1_000_000;
/// Cells per minibatch.
pub const MAX_BATCH: usize = 1 << 24;
/// Width of any layer (hidden units, latent and unknown dimensions).
pub const MAX_WIDTH: usize = 1 << 16;
/// Hidden layers of any network.
pub const MAX_LAYERS: usize = 64;
/// Steps of one ODE integration (each evaluates the network on every cell).
pub const MAX_ODE_STEPS: usize = 100_000;
/// Principal components or selected genes.
pub const MAX_FEATURES: usize = 1 << 24;

/// Checks that the integer setting `name` lies in `range`.
pub fn count(name: &str, value: usize, range: RangeInclusive<usize>) -> Result<(), ModelError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ModelError::Config(format!(
        "{name} must be between {} and {}, got {value}",
        range.start(),
        range.end()
    )))
}

/// Checks that the real setting `name` is finite and lies in `range`
/// (`open_end`: the end itself is excluded).
pub fn real(
    name: &str,
    value: f64,
    range: RangeInclusive<f64>,
    open_end: bool,
) -> Result<(), ModelError> {
    let inside =
        value.is_finite() && range.contains(&value) && !(open_end && value == *range.end());
    if inside {
        return Ok(());
    }
    let close = if open_end { ')' } else { ']' };
    Err(ModelError::Config(format!(
        "{name} must be in [{}, {}{close}, got {value}",
        range.start(),
        range.end()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_setting_and_the_range() {
        let err = count("max_epochs", 10_000_000_000, 1..=MAX_EPOCHS)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_epochs") && err.contains("1000000"),
            "{err}"
        );
        assert!(count("n", 1, 1..=1).is_ok());
        assert!(real("dropout", 1.0, 0.0..=1.0, true).is_err());
        assert!(real("dropout", f64::NAN, 0.0..=1.0, false).is_err());
        assert!(real("dropout", 0.5, 0.0..=1.0, true).is_ok());
    }
}
