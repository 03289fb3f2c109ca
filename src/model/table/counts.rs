//! Scan counters inside a table: one per record and count class, added to
//! on the scan path with one relaxed atomic add (no lock, no allocation).
//!
//! The cells are allocated zeroed (`calloc`), so memory is committed only
//! for records that get scanned. A table's counts leave it two ways: the
//! stats flusher drains the live tables now and then, and a table drains
//! itself into its sink when it is dropped, so replacing a table (every
//! change of the overlay, every compaction) never loses a count.

use crate::model::client_class::CountClass;
use crate::model::domain::EntryKind;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// Cells a record has: one per client class, and one for `wechat-scan`
/// (see [`CountClass::CELLS`]).
pub const CLASSES: usize = CountClass::CELLS.len();

/// Where drained counts go.
pub trait CountSink: Send + Sync + 'static {
    /// `n` scans of the entry `kind`/`key` by clients of class `class`
    /// (`None`: a 404 on host `key`).
    fn add(&self, kind: EntryKind, key: &str, class: CountClass, n: u64);
}

/// Starts fetching a record's counters into the cache, so that the add a
/// few hundred nanoseconds later does not stall on memory: among a million
/// records, a scanned one's counters are almost never cached, and the
/// locked add waits for its line (measured: ~2.5% of a saturated core).
#[inline]
pub fn prefetch(cells: &[AtomicU32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults nor changes memory.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(cells.as_ptr().cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cells;
}

/// `n` zeroed atomic cells (one counter each).
pub(crate) fn zeroed_cells(n: usize) -> Box<[AtomicU32]> {
    // SAFETY: an all-zero AtomicU32 is a valid 0.
    unsafe { Box::<[AtomicU32]>::new_zeroed_slice(n).assume_init() }
}

/// Zeroed atomic cells, `CLASSES` per record.
pub(crate) struct Counts {
    cells: Box<[AtomicU32]>,
    pub(crate) sink: OnceLock<Arc<dyn CountSink>>,
}

impl Counts {
    pub fn zeroed(records: usize) -> Counts {
        Counts {
            cells: zeroed_cells(records * CLASSES),
            sink: OnceLock::new(),
        }
    }

    /// The cells of record `index`.
    pub fn record(&self, index: usize) -> &[AtomicU32] {
        self.cells.get(index * CLASSES..(index + 1) * CLASSES).unwrap_or(&[])
    }

    /// Takes record `index`'s counts (zeroing them) into `sink` under `key`.
    pub fn drain_record(&self, index: usize, kind: EntryKind, key: &str, sink: &dyn CountSink) {
        for (class, cell) in CountClass::CELLS.iter().zip(self.record(index)) {
            if cell.load(Ordering::Relaxed) != 0 {
                let n = cell.swap(0, Ordering::Relaxed);
                if n != 0 {
                    sink.add(kind, key, *class, u64::from(n));
                }
            }
        }
    }

    /// Takes a 404 cell's count into `sink` for `host`.
    pub fn drain_cell(cell: &AtomicU32, host: &str, sink: &dyn CountSink) {
        if cell.load(Ordering::Relaxed) != 0 {
            let n = cell.swap(0, Ordering::Relaxed);
            if n != 0 {
                sink.add(EntryKind::Host, host, CountClass::NotFound, u64::from(n));
            }
        }
    }
}
