//! A counting global allocator for the hostile-input test binaries: it
//! records the live total, its peak and, per thread, the largest single
//! request, and refuses any request that would pass [`CEILING`] (one
//! allocation, or the live total), so that a reader asking for gigabytes
//! fails the test instead of the machine.
//!
//! `GlobalAlloc` is an unsafe trait: this is the only unsafe code in the
//! crate's tests, and it forwards every call unchanged to the system
//! allocator.
#![allow(unsafe_code, dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest single allocation, and largest live total, a test may reach.
pub const CEILING: usize = 1 << 30;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The largest request refused (0: none).
static REFUSED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

pub struct Counting;

impl Counting {
    fn admit(size: usize) -> bool {
        if size > CEILING || LIVE.load(Ordering::Relaxed).saturating_add(size) > CEILING {
            REFUSED.fetch_max(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn added(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments; the
// bookkeeping only reads sizes and touches atomics and a const thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout the caller gave us.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::added(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout the caller gave us.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::added(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grow = new_size.saturating_sub(layout.size());
        if new_size > CEILING || !Self::admit(grow) {
            REFUSED.fetch_max(new_size, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            Self::added(new_size);
        }
        p
    }
}

/// Starts a measurement on this thread: the largest request seen so far and
/// the peak are forgotten.
pub fn reset() {
    LARGEST.with(|l| l.set(0));
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    REFUSED.store(0, Ordering::Relaxed);
}

/// The largest single allocation this thread made since [`reset`].
pub fn largest_here() -> usize {
    LARGEST.with(Cell::get)
}

/// The peak live total (all threads) since [`reset`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The largest request refused since [`reset`], if any.
pub fn refused() -> Option<usize> {
    Some(REFUSED.load(Ordering::Relaxed)).filter(|&r| r > 0)
}
