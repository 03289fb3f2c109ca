use super::{Snapshot, Table};
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The snapshot scans read now.
///
/// Reads are lock-free: [`LiveTable::load`] is an `arc-swap` load (a few
/// atomic operations, no lock, never waits for a writer). A writer prepares
/// a complete new [`Snapshot`] elsewhere and publishes it with one atomic
/// swap; scans that started on the old snapshot finish on it, and it is
/// freed when the last of them drops its guard.
pub struct LiveTable {
    current: ArcSwap<Snapshot>,
}

impl LiveTable {
    pub fn new(table: Table) -> LiveTable {
        LiveTable {
            current: ArcSwap::from_pointee(Snapshot::new(table)),
        }
    }

    /// The current snapshot, for the duration of one request.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Publishes `table` as the whole new state; returns the previous snapshot.
    pub fn replace(&self, table: Table) -> Arc<Snapshot> {
        self.publish(Snapshot::new(table))
    }

    /// Publishes a prepared snapshot (a base with an overlay).
    pub fn publish(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        self.current.swap(Arc::new(snapshot))
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
