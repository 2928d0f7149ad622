//! How much memory a read may take, and the ledger of what it has taken.
//!
//! An `.h5ad` file declares the shape of every array in a few bytes of
//! metadata, and an unwritten (or compressed) dataset can declare terabytes in
//! a file of kilobytes. Every read is therefore charged here *before* anything
//! is allocated, from the declared sizes, and refused once the total would
//! pass the limit: by default the memory the machine has available.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Used when `/proc/meminfo` cannot be read (not Linux, or a sandbox): large
/// enough for any file a laptop could load, small enough that a terabyte
/// declaration is still refused.
const FALLBACK_MEMORY: u64 = 16 << 30;

/// Where the limit came from, for the message that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `MemAvailable` from `/proc/meminfo`.
    Available,
    /// [`FALLBACK_MEMORY`], when the machine's memory could not be read.
    Assumed,
    /// Set by the caller ([`crate::H5ad::with_memory_limit`]).
    Caller,
}

/// The memory limit of the reads on one open file and what they have charged.
///
/// Charges accumulate over one public operation (a whole-file read, a summary,
/// a backed read of some rows) and start again from zero at the next one.
/// Operations running at the same time on one file share the ledger, which
/// can only make refusals earlier, never later.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    origin: Origin,
    charged: AtomicU64,
    active: AtomicUsize,
}

/// A refused charge: what was already charged, and whether the charge alone
/// passes the limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exceeded {
    pub(crate) already: u64,
    pub(crate) alone: bool,
}

impl Budget {
    /// The memory this machine has available now (`MemAvailable`).
    pub(crate) fn machine() -> Self {
        match conceptlab_fs::memory::available_bytes() {
            Some(limit) => Self::new(limit, Origin::Available),
            None => Self::new(FALLBACK_MEMORY, Origin::Assumed),
        }
    }

    pub(crate) fn caller(limit: u64) -> Self {
        Self::new(limit, Origin::Caller)
    }

    fn new(limit: u64, origin: Origin) -> Self {
        Self {
            limit,
            origin,
            charged: AtomicU64::new(0),
            active: AtomicUsize::new(0),
        }
    }

    /// Starts an operation; the ledger is cleared when no other is running.
    pub(crate) fn scope(&self) -> Scope<'_> {
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 {
            self.charged.store(0, Ordering::SeqCst);
        }
        Scope(self)
    }

    /// Records `bytes` as about to be allocated, or refuses if the total would
    /// pass the limit (nothing is recorded then).
    pub(crate) fn charge(&self, bytes: u64) -> Result<(), Exceeded> {
        let mut already = self.charged.load(Ordering::SeqCst);
        loop {
            let total = already.saturating_add(bytes);
            if total > self.limit {
                return Err(Exceeded {
                    already,
                    alone: bytes > self.limit,
                });
            }
            match self
                .charged
                .compare_exchange(already, total, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(()),
                Err(now) => already = now,
            }
        }
    }

    /// Bytes that may still be charged.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit
            .saturating_sub(self.charged.load(Ordering::SeqCst))
    }

    /// "this machine's 22 GiB of available memory", "the 1.0 MiB memory limit
    /// set for this read".
    pub(crate) fn describe(&self) -> String {
        let limit = bytes(self.limit);
        match self.origin {
            Origin::Available => format!("this machine's {limit} of available memory"),
            Origin::Assumed => {
                format!("the {limit} of memory assumed when the available memory cannot be read")
            }
            Origin::Caller => format!("the {limit} memory limit set for this read"),
        }
    }
}

/// Ends an operation started by [`Budget::scope`].
pub(crate) struct Scope<'a>(&'a Budget);

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `24.0 TiB`.
pub(crate) use conceptlab_fs::memory::human as bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(6 << 40), "6.0 TiB");
    }

    #[test]
    fn charges_accumulate_until_the_limit_and_reset_per_operation() {
        let budget = Budget::caller(100);
        {
            let _op = budget.scope();
            assert!(budget.charge(60).is_ok());
            assert_eq!(budget.charge(50).map_err(|e| e.already).err(), Some(60));
            assert_eq!(budget.remaining(), 40);
        }
        let _op = budget.scope();
        assert!(budget.charge(100).is_ok());
        assert!(budget.charge(u64::MAX).is_err());
    }
}
