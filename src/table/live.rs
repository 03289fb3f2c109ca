use super::Table;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The table scans read now.
///
/// Reads are lock-free: [`LiveTable::load`] is an `arc-swap` load (a few
/// atomic operations, no lock, never waits for a writer). A writer builds a
/// complete new [`Table`] elsewhere and [`LiveTable::replace`]s it in; scans
/// that started on the old snapshot finish on it, and it is freed when the
/// last of them drops its guard.
pub struct LiveTable {
    current: ArcSwap<Table>,
}

impl LiveTable {
    pub fn new(table: Table) -> LiveTable {
        LiveTable {
            current: ArcSwap::from_pointee(table),
        }
    }

    /// The current snapshot, for the duration of one request.
    pub fn load(&self) -> arc_swap::Guard<Arc<Table>> {
        self.current.load()
    }

    /// Publishes `table`; returns the previous snapshot.
    pub fn replace(&self, table: Table) -> Arc<Table> {
        self.current.swap(Arc::new(table))
    }
}

impl Default for LiveTable {
    fn default() -> Self {
        LiveTable::new(Table::empty())
    }
}

impl std::fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveTable").field(&**self.load()).finish()
    }
}
