//! When work is split over threads. Splitting a small job costs more in
//! wake-ups and cache traffic than a second core gives back, so a job is
//! split only when each piece is large: our own row-wise ops take at least
//! [`MIN_ELEMENTS_PER_TASK`] elements per rayon task, and candle's matrix
//! products (gemm) run on one thread below [`DEFAULT_MIN_PARALLEL_PRODUCT`]
//! multiply-adds per block. Neither changes a result: rows and output blocks
//! are computed the same way whichever thread computes them, so weights are
//! bit-identical on any thread count.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Fewest elements one rayon task of a row-wise op handles by default (a
/// few tens of microseconds of work).
pub const MIN_ELEMENTS_PER_TASK: usize = 1 << 15;

static ELEMENTS_PER_TASK: AtomicUsize = AtomicUsize::new(MIN_ELEMENTS_PER_TASK);

/// Sets the fewest elements per rayon task of the row-wise ops (1: split
/// down to single rows, as before thresholds existed; benchmarks compare).
pub fn set_min_elements_per_task(elements: usize) {
    ELEMENTS_PER_TASK.store(elements.max(1), Ordering::Relaxed);
}

/// Rows of width `width` per rayon task (at least one).
pub fn rows_per_task(width: usize) -> usize {
    (ELEMENTS_PER_TASK.load(Ordering::Relaxed) / width.max(1)).max(1)
}

/// Multiply-adds of one gemm block below which it runs on one thread:
/// gemm's own default (48·48·256) splits even a 128-cell batch's products.
pub const DEFAULT_MIN_PARALLEL_PRODUCT: usize = 48 * 48 * 256;

/// Sets gemm's threading threshold (multiply-adds per block) for the whole
/// process; [`configure`] applies the default.
pub fn set_min_parallel_product(multiply_adds: usize) {
    gemm::set_threading_threshold(multiply_adds);
}

/// The threshold in force.
pub fn min_parallel_product() -> usize {
    gemm::get_threading_threshold()
}

/// Applies this crate's thresholds (call once at start-up, as the CLI does).
pub fn configure() {
    set_min_parallel_product(DEFAULT_MIN_PARALLEL_PRODUCT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_never_empty_nor_tiny() {
        assert_eq!(rows_per_task(1024), 32);
        assert_eq!(rows_per_task(1 << 20), 1);
        assert_eq!(rows_per_task(0), MIN_ELEMENTS_PER_TASK);
    }
}
