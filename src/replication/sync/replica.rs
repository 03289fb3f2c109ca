use crate::model::table::{LiveTable, Snapshot};
use crate::replication::metrics::Metrics;
use crate::replication::store::Position;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How current this node's table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// A first snapshot has been published.
    pub bootstrapped: bool,
    /// The epoch of the database the table came from.
    pub epoch: String,
    /// The last position applied to the table.
    pub applied: Position,
    /// The store's last committed position, as last seen.
    pub store_head: Position,
    /// Since when the table has been known to be behind the store.
    pub behind_since: Option<Instant>,
}

impl SyncStatus {
    /// How long the table has been known to be behind the store.
    pub fn lag(&self) -> Duration {
        self.behind_since.map_or(Duration::ZERO, |since| since.elapsed())
    }
}

/// The node's copy of the table: what scans read, and how current it is.
pub struct Replica {
    table: LiveTable,
    /// Where the counts of every table built for this replica go.
    sink: Option<Arc<dyn crate::model::table::CountSink>>,
    /// A copy of `status.bootstrapped` that scans read without a lock.
    bootstrapped: std::sync::atomic::AtomicBool,
    status: watch::Sender<SyncStatus>,
    /// The position of the last API key change seen (or of the last
    /// snapshot), for whoever holds the keys (the admin API).
    keys: watch::Sender<Position>,
    /// The same for TLS certificates, for whoever serves them.
    certificates: watch::Sender<Position>,
    metrics: Arc<Metrics>,
}

/// The table did not apply a position in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("committed at position {position}, but this node's table had not applied it after {waited:?}")]
pub struct NotApplied {
    pub position: Position,
    pub waited: Duration,
}

impl Replica {
    pub fn new(metrics: Arc<Metrics>) -> Replica {
        let (status, _) = watch::channel(SyncStatus {
            bootstrapped: false,
            epoch: String::new(),
            applied: 0,
            store_head: 0,
            behind_since: None,
        });
        Replica {
            table: LiveTable::default(),
            sink: None,
            bootstrapped: std::sync::atomic::AtomicBool::new(false),
            status,
            keys: watch::channel(0).0,
            certificates: watch::channel(0).0,
            metrics,
        }
    }

    /// Says that API keys changed at `position` (or may have: a snapshot).
    pub fn keys_changed(&self, position: Position) {
        self.keys.send_replace(position);
    }

    /// Wakes up after every [`Replica::keys_changed`].
    pub fn watch_keys(&self) -> watch::Receiver<Position> {
        self.keys.subscribe()
    }

    /// Says that certificates were stored at `position` (or may have been:
    /// a snapshot).
    pub fn certificates_changed(&self, position: Position) {
        self.certificates.send_replace(position);
    }

    /// Wakes up after every [`Replica::certificates_changed`].
    pub fn watch_certificates(&self) -> watch::Receiver<Position> {
        self.certificates.subscribe()
    }

    /// Counts of the tables built for this replica go to `sink`.
    pub fn with_sink(mut self, sink: Arc<dyn crate::model::table::CountSink>) -> Replica {
        self.sink = Some(sink);
        self
    }

    /// Where table counts go, if anywhere.
    pub fn sink(&self) -> Option<Arc<dyn crate::model::table::CountSink>> {
        self.sink.clone()
    }

    /// A replica serving `snapshot` at once (benches, in-process tests).
    pub fn serving(snapshot: Snapshot, metrics: Arc<Metrics>) -> Replica {
        let replica = Replica::new(metrics);
        let position = snapshot.position();
        replica.publish(snapshot);
        replica.update(|s| {
            s.bootstrapped = true;
            s.applied = position;
            s.store_head = position;
        });
        replica
    }

    /// The snapshot to answer one request from.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.table.load()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Makes `snapshot` the one scans read; the old one is freed off the
    /// scan threads.
    pub fn publish(&self, snapshot: Snapshot) {
        self.metrics.table_size(snapshot.code_count(), snapshot.rule_count());
        self.metrics.table_position(snapshot.position());
        crate::replication::background::retire(self.table.publish(snapshot));
    }

    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// Wakes up after every change of the status (each applied batch).
    pub fn watch(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    /// Whether a first table has been published: scans are answered from
    /// then on, however far behind the store the table may fall.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Ready: bootstrapped, and not behind the store for longer than `max_lag`.
    pub fn is_ready(&self, max_lag: Duration) -> bool {
        let status = self.status.borrow();
        status.bootstrapped && status.lag() <= max_lag
    }

    /// Records the follower's progress.
    pub fn update(&self, change: impl FnOnce(&mut SyncStatus)) {
        self.status.send_modify(|status| {
            change(status);
            if status.store_head <= status.applied {
                status.behind_since = None;
            } else if status.behind_since.is_none() {
                status.behind_since = Some(Instant::now());
            }
        });
        let status = self.status.borrow();
        self.metrics.store_position(status.store_head);
        if status.bootstrapped {
            self.bootstrapped.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Waits until the table has applied `position` (read-your-write).
    pub async fn wait_applied(&self, position: Position, timeout: Duration) -> Result<(), NotApplied> {
        let mut status = self.status.subscribe();
        let applied = tokio::time::timeout(timeout, status.wait_for(|s| s.applied >= position)).await;
        match applied {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NotApplied {
                position,
                waited: timeout,
            }),
        }
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("status", &self.status()).finish()
    }
}
