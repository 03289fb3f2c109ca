//! The one way the table changes: every write goes to the store first and,
//! once committed, into the live table, so a `2xx` means both durable and
//! visible to scans (read your write).
//!
//! Writers are serialized by one async mutex that also guards the overlay
//! (see [`crate::table::Snapshot`]); scans never take it. Heavy work (a full
//! rebuild after an import, folding a large overlay into a new base) runs on
//! a blocking thread while scans keep reading the previous snapshot.

use crate::http::AppState;
use crate::store::{ImportCounts, Store, StoreError, Stored, WriteMode};
use crate::table::{BuildError, EntryKey, Overlay, Snapshot, Table, TableBuilder, COMPACT_AT};
use crate::table_file::TableEntry;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building the table: {0}")]
    Build(#[from] BuildError),
    #[error("the table builder stopped unexpectedly: {0}")]
    Join(String),
}

/// The store plus the live table it feeds.
pub struct Catalog {
    store: Arc<dyn Store>,
    state: Arc<AppState>,
    /// Writes applied since the current base was built.
    overlay: Mutex<Overlay>,
}

impl Catalog {
    pub fn new(store: Arc<dyn Store>, state: Arc<AppState>) -> Catalog {
        Catalog {
            store,
            state,
            overlay: Mutex::new(Overlay::new()),
        }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.state.metrics
    }

    /// Rebuilds the whole table from the store and publishes it. Used at
    /// start, after an import and on SIGHUP.
    pub async fn reload(&self) -> Result<(usize, usize), CatalogError> {
        let mut overlay = self.overlay.lock().await;
        let table = build_from_store(self.store.clone()).await?;
        let counts = (table.code_count(), table.rule_count());
        overlay.clear();
        self.state.publish(Snapshot::new(table));
        Ok(counts)
    }

    /// The stored entry under `key`.
    pub async fn get(&self, key: &EntryKey) -> Result<Option<Stored<TableEntry>>, CatalogError> {
        Ok(match key {
            EntryKey::Code(code) => self.store.get_code(code).await?.map(|s| s.map(TableEntry::Code)),
            EntryKey::Rule(prefix_key) => self.store.get_rule(prefix_key).await?.map(|s| s.map(TableEntry::Rule)),
        })
    }

    /// Creates or replaces an entry (`Insert`: create only, else `Conflict`).
    pub async fn put(&self, entry: TableEntry, mode: WriteMode) -> Result<Stored<TableEntry>, CatalogError> {
        let mut overlay = self.overlay.lock().await;
        self.put_locked(&mut overlay, entry, mode).await
    }

    /// Reads, changes and writes one entry under the writer lock, so two
    /// concurrent changes of one entry cannot lose each other's fields.
    /// `change` gets the stored entry and returns the new one, or its error.
    pub async fn modify<E>(
        &self,
        key: &EntryKey,
        change: impl FnOnce(Option<Stored<TableEntry>>) -> Result<TableEntry, E>,
    ) -> Result<Result<Stored<TableEntry>, E>, CatalogError> {
        let mut overlay = self.overlay.lock().await;
        let current = self.get(key).await?;
        match change(current) {
            Ok(entry) => Ok(Ok(self.put_locked(&mut overlay, entry, WriteMode::Upsert).await?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn put_locked(
        &self,
        overlay: &mut Overlay,
        entry: TableEntry,
        mode: WriteMode,
    ) -> Result<Stored<TableEntry>, CatalogError> {
        let stored = match &entry {
            TableEntry::Code(code) => self.store.put_code(code, mode).await?.map(TableEntry::Code),
            TableEntry::Rule(rule) => self.store.put_rule(rule, mode).await?.map(TableEntry::Rule),
        };
        self.apply(overlay, EntryKey::of(&entry), Some(entry)).await?;
        Ok(stored)
    }

    /// Deletes a code or a rule (by normalized prefix); `false` if there was none.
    pub async fn delete(&self, key: EntryKey) -> Result<bool, CatalogError> {
        let mut overlay = self.overlay.lock().await;
        let existed = match &key {
            EntryKey::Code(code) => self.store.delete_code(code).await?,
            EntryKey::Rule(prefix_key) => self.store.delete_rule(prefix_key).await?,
        };
        if existed {
            self.apply(&mut overlay, key, None).await?;
        }
        Ok(existed)
    }

    /// Holds the writer lock across a whole import: `run` gets the store,
    /// and if it returns `Ok(Some(_))` (committed) the table is rebuilt.
    pub async fn import<F, Fut, T>(&self, run: F) -> Result<T, CatalogError>
    where
        F: FnOnce(Arc<dyn Store>) -> Fut,
        Fut: std::future::Future<Output = Result<(T, Option<ImportCounts>), CatalogError>>,
    {
        let mut overlay = self.overlay.lock().await;
        let (result, committed) = run(self.store.clone()).await?;
        if committed.is_some() {
            let table = build_from_store(self.store.clone()).await?;
            overlay.clear();
            self.state.publish(Snapshot::new(table));
        }
        Ok(result)
    }

    /// Records a committed write in the overlay and publishes the result;
    /// folds the overlay into a new base when it has grown large.
    async fn apply(&self, overlay: &mut Overlay, key: EntryKey, entry: Option<TableEntry>) -> Result<(), CatalogError> {
        overlay.insert(key, entry);
        let base = self.state.table.load().base().clone();
        let snapshot = Snapshot::with_overlay(base, overlay)?;
        if overlay.len() < COMPACT_AT {
            self.state.publish(snapshot);
            return Ok(());
        }
        let started = Instant::now();
        let table = crate::background::run("qrlaunch-compact", move || snapshot.compact())
            .await
            .ok_or_else(|| CatalogError::Join("the compaction thread panicked".into()))??;
        overlay.clear();
        self.state.publish(Snapshot::new(table));
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "overlay folded into a new base table"
        );
        Ok(())
    }
}

/// Reads every entry from the store into a new table, on a low-priority
/// thread (see [`crate::background`]).
async fn build_from_store(store: Arc<dyn Store>) -> Result<Table, CatalogError> {
    crate::background::run("qrlaunch-rebuild", move || {
        let mut builder = TableBuilder::new();
        let mut failed: Option<BuildError> = None;
        let mut sink = |entry: TableEntry| {
            if failed.is_some() {
                return;
            }
            let added = match &entry {
                TableEntry::Code(code) => builder.insert_code(code),
                TableEntry::Rule(rule) => builder.insert_rule(rule),
            };
            failed = added.err();
        };
        store.load_all(&mut sink)?;
        if let Some(error) = failed {
            return Err(error.into());
        }
        Ok(builder.build()?)
    })
    .await
    .ok_or_else(|| CatalogError::Join("the rebuild thread panicked".into()))?
}
