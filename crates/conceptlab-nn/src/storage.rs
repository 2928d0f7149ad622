//! Reading the CPU storage handed to our custom candle ops.

use candle_core::{CpuStorage, Layout, bail};

/// The f32 values of a contiguous tensor; `op` and `what` name the op and
/// the argument in the error when the layout is strided or the dtype wrong.
pub(super) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: {what} must be contiguous")
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}
