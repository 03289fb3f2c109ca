//! Every change the admin API makes goes through the [`Writer`]: commit in
//! the store, then wait until this node's table has applied the commit's
//! position, then answer. A `2xx` therefore means durable *and* visible to
//! scans on this node (read your write); on every other node the follower
//! applies the same change from the log.
//!
//! The work runs as a task of its own that the request awaits but does not
//! own: a client that disconnects mid-request cannot stop a commit half
//! way, nor leave a committed change out of the table (the follower applies
//! it whatever happens to the request).

use crate::model::domain::{Entry, EntryKey, EntryKind, Stored, Tag};
use crate::replication::metrics::{Metrics, WriteFailure};
use crate::replication::store::{
    Committed, ImportSource, ImportSummary, ModifyEachFn, ModifyFn, Put, Store, StoreError, WriteMode,
};
use crate::replication::sync::{NotApplied, Replica};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a write was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    NotApplied(#[from] NotApplied),
    #[error("the write task stopped: {0}")]
    Task(String),
}

/// How long an import waits for this node's table to apply it.
pub const IMPORT_APPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// The store and the table it feeds, for writers.
#[derive(Clone)]
pub struct Writer {
    store: Arc<dyn Store>,
    replica: Arc<Replica>,
    metrics: Arc<Metrics>,
    /// How long a write waits for this node's table to apply it.
    apply_timeout: Duration,
}

impl Writer {
    pub fn new(store: Arc<dyn Store>, replica: Arc<Replica>, metrics: Arc<Metrics>) -> Writer {
        Writer {
            store,
            replica,
            metrics,
            apply_timeout: Duration::from_secs(10),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    pub async fn put(&self, entry: Entry, mode: WriteMode) -> Result<Committed<Put>, WriteError> {
        self.run(move |store| async move { store.put(entry, mode).await }).await
    }

    pub async fn modify(&self, key: EntryKey, change: ModifyFn) -> Result<Committed<Stored<Entry>>, WriteError> {
        self.run(move |store| async move { store.modify(key, change).await })
            .await
    }

    pub async fn modify_tagged(
        &self,
        kinds: Vec<EntryKind>,
        tag: Tag,
        change: ModifyEachFn,
    ) -> Result<Committed<usize>, WriteError> {
        self.run(move |store| async move { store.modify_tagged(kinds, tag, change).await })
            .await
    }

    pub async fn delete(&self, key: EntryKey) -> Result<Committed<()>, WriteError> {
        self.run(move |store| async move { store.delete(key).await }).await
    }

    /// An import big enough to be a `resync` is applied by rebuilding the
    /// table from a snapshot, which for ten million codes takes longer than
    /// a single write may wait; its client is already waiting on a long
    /// operation, so it waits up to [`IMPORT_APPLY_TIMEOUT`].
    pub async fn import(&self, mode: WriteMode, lines: ImportSource) -> Result<Committed<ImportSummary>, WriteError> {
        self.run_waiting(IMPORT_APPLY_TIMEOUT, move |store| async move {
            store.import(mode, lines).await
        })
        .await
    }

    /// Commits with `write` and waits for the table, in a task of its own.
    async fn run<T, F, Fut>(&self, write: F) -> Result<Committed<T>, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Committed<T>, StoreError>> + Send + 'static,
    {
        self.run_waiting(self.apply_timeout, write).await
    }

    /// [`Writer::run`] waiting up to `timeout` for the table.
    async fn run_waiting<T, F, Fut>(&self, timeout: Duration, write: F) -> Result<Committed<T>, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Committed<T>, StoreError>> + Send + 'static,
    {
        let store = self.store.clone();
        let replica = self.replica.clone();
        // The task of its own keeps the write's author (a task-local does
        // not cross `spawn` by itself): the store records it in the audit log.
        let actor = crate::replication::audit::actor();
        let task = tokio::spawn(crate::replication::audit::scope(actor, async move {
            let committed = write(store).await?;
            replica.wait_applied(committed.position, timeout).await?;
            Ok::<_, WriteError>(committed)
        }));
        let result = task.await.unwrap_or_else(|e| Err(WriteError::Task(e.to_string())));
        if let Err(error) = &result {
            let cause = match error {
                WriteError::Store(StoreError::Unavailable(_)) => Some(WriteFailure::Unavailable),
                WriteError::Store(StoreError::Failed(_) | StoreError::Corrupt(_)) | WriteError::Task(_) => {
                    Some(WriteFailure::StoreFailed)
                }
                WriteError::NotApplied(_) => Some(WriteFailure::NotApplied),
                WriteError::Store(_) => None,
            };
            if let Some(cause) = cause {
                self.metrics.write_failure(cause);
                tracing::error!(%error, "write not acknowledged");
            }
        }
        result
    }
}
