//! The follower task: the one writer of this node's live table.
//!
//! 1. Bootstrap: read a snapshot of the whole store (one read transaction)
//!    with the position it was taken at, build the table, publish, ready.
//!    After a first seed, the table is built from the file's lines as they
//!    were imported instead ([`Seeded`]), when they are all the store held
//!    at the import's position.
//! 2. Catch up: read the log after the applied position, in pages of
//!    positions; each position must be the one after the last applied. A
//!    gap, another epoch (a restored or different database), a store head
//!    behind the table, a log that no longer reaches back, or a logged
//!    `Resync` (a bulk import) means a full resync from a new snapshot.
//! 3. Wait for a wake-up (this node's commit, or PostgreSQL's `NOTIFY` from
//!    any node), a poll tick (a half-open notification socket must not
//!    stall the node), or shutdown; then catch up again.
//!
//! A store that cannot be reached leaves the last table serving; the
//! follower retries with backoff (at most [`MAX_BACKOFF`] apart, sooner on a
//! notification) and catches up when the store returns.
//! Overlays past [`crate::model::table::COMPACT_AT`] entries are folded into a new
//! base on a low-priority thread while changes keep being applied; the
//! overlay's larger layer merges run on such a thread too, one at a time.

use super::replica::Replica;
use super::state::{StateBuilder, TableState};
use crate::model::keys::SurrogateKey;
use crate::model::table::{Merged, Table};
use crate::replication::store::{Change, Feed, Position, Store, StoreError, Wakeup, Wakeups};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The longest wait between two reads of a store that cannot be reached:
/// one failed connection a second costs the store nothing, and a node is
/// current again within about a second of the store's return.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The entries a first seed imported, gathered as it read them: what the
/// store holds at `head.position` when the import was its first write
/// (position 1) and generated no codes. The first bootstrap builds from
/// it rather than reading the million rows back.
pub struct Seeded {
    pub builder: StateBuilder,
    pub head: crate::replication::store::Head,
}

/// How the follower paces itself.
#[derive(Debug, Clone)]
pub struct FollowerOptions {
    /// Catch up at least this often, whatever the wake-ups say.
    pub poll: Duration,
    /// Positions read per page of the log.
    pub page: i64,
    /// A test hook (`--test-apply-delay`): wait this long between applying
    /// changes read from the log and publishing them, to play a node that
    /// is slow to make changes live.
    pub apply_delay: Duration,
    /// The mark `qrlaunch restore` left beside a restored store: the
    /// first table published purges everything too (the caches in front
    /// hold answers from before), and the mark is removed once every
    /// purge URL took that purge.
    pub restored: Option<std::path::PathBuf>,
}

impl Default for FollowerOptions {
    fn default() -> Self {
        FollowerOptions {
            poll: Duration::from_millis(250),
            page: 512,
            apply_delay: Duration::ZERO,
            restored: None,
        }
    }
}

/// Why a catch-up could not continue from the applied position.
#[derive(Debug)]
enum Stop {
    Resync(String),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Store(e)
    }
}

/// Work on a background thread; `None` if it failed.
type Job<T> = Pin<Box<dyn Future<Output = Option<T>> + Send>>;
type Compaction = Job<(Table, Position)>;

/// The follower of one store, feeding one replica.
pub struct Follower {
    store: Arc<dyn Store>,
    replica: Arc<Replica>,
    options: FollowerOptions,
    /// Notified to rebuild from a fresh snapshot (SIGHUP).
    resync: Arc<tokio::sync::Notify>,
    /// Told what each applied change made stale in the caches in front.
    purger: Option<crate::replication::purge::Purger>,
    /// The first seed's entries, taken by the first bootstrap.
    seeded: std::sync::Mutex<Option<Seeded>>,
}

impl Follower {
    pub fn new(store: Arc<dyn Store>, replica: Arc<Replica>, options: FollowerOptions) -> Follower {
        Follower {
            store,
            replica,
            options,
            resync: Arc::new(tokio::sync::Notify::new()),
            purger: None,
            seeded: std::sync::Mutex::new(None),
        }
    }

    /// Builds the first table from what the first seed imported.
    pub fn with_seeded(self, seeded: Option<Seeded>) -> Follower {
        *self.seeded.lock().unwrap_or_else(|e| e.into_inner()) = seeded;
        self
    }

    /// Purges the caches in front after every applied change.
    pub fn with_purger(mut self, purger: Option<crate::replication::purge::Purger>) -> Follower {
        self.purger = purger;
        self
    }

    /// Rebuilds from a fresh snapshot whenever `resync` is notified.
    pub fn with_resync(mut self, resync: Arc<tokio::sync::Notify>) -> Follower {
        self.resync = resync;
        self
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut state: Option<TableState> = None;
        let mut feed = Subscription::default();
        let mut compaction: Option<Compaction> = None;
        let mut merge: Option<Job<Merged>> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            feed.renew(&*self.store).await;
            match self.advance(&mut state).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(Stop::Resync(reason)) => {
                    tracing::warn!(%reason, "resyncing the table from a new snapshot");
                    self.replica.metrics().resync();
                    state = None;
                    compaction = None;
                    merge = None;
                    continue;
                }
                Err(Stop::Store(error)) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot read the store; still serving the last table");
                    // A notification means the store answers again. The cap
                    // keeps a node whose notifications were lost with the
                    // store within a second of the store's return.
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        woke = feed.next() => self.woke(woke, &mut feed),
                        () = shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            if let Some(current) = state.as_mut() {
                if compaction.is_none() && current.wants_compaction() {
                    compaction = Some(compact(current));
                }
                if merge.is_none() {
                    merge = current.merge_job().map(|job| -> Job<Merged> {
                        Box::pin(crate::replication::background::run("qrlaunch-merge", move || job.run()))
                    });
                }
            }
            tokio::select! {
                woke = feed.next() => self.woke(woke, &mut feed),
                done = wait_job(&mut compaction) => {
                    compaction = None;
                    if let (Some(done), Some(current)) = (done, state.as_mut()) {
                        self.install_compaction(current, done);
                    }
                }
                merged = wait_job(&mut merge) => {
                    merge = None;
                    if let Some(current) = state.as_mut() {
                        if merged.is_none() {
                            tracing::warn!("a merge of the overlay's layers failed; publishes merge them from now on");
                        }
                        if current.finish_merge(merged) {
                            self.replica.publish(current.snapshot());
                        }
                    }
                }
                () = self.resync.notified() => {
                    tracing::info!("rebuilding the table from a new snapshot, as asked");
                    self.replica.metrics().resync();
                    state = None;
                    compaction = None;
                    merge = None;
                }
                () = tokio::time::sleep(self.options.poll) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// One step: build the table from a snapshot when there is none, else
    /// apply what the log holds after it.
    async fn advance(&self, state: &mut Option<TableState>) -> Result<(), Stop> {
        let Some(current) = state.as_mut() else {
            let mut fresh = self.bootstrap().await?;
            self.install_bootstrap(&mut fresh);
            *state = Some(fresh);
            return Ok(());
        };
        self.catch_up(current).await
    }

    /// Publishes a table built from a snapshot; after a rebuild, purges
    /// everything (what changed is unknown), only now that it answers.
    fn install_bootstrap(&self, fresh: &mut TableState) {
        let rebuilt = self.replica.is_bootstrapped();
        self.replica.publish(fresh.snapshot());
        self.replica.update(|s| {
            s.bootstrapped = true;
            s.epoch = fresh.epoch.clone();
            s.applied = fresh.position;
            s.store_head = s.store_head.max(fresh.position);
        });
        // What changed is unknown: the keys and certificates may have too.
        self.replica.keys_changed(fresh.position);
        self.replica.certificates_changed(fresh.position);
        if rebuilt {
            if let Some(purger) = &self.purger {
                purger.purge_all(fresh.position);
            }
        } else if let Some(mark) = self.options.restored.clone() {
            self.purge_restored(fresh.position, mark);
        }
    }

    /// The first table of a restored store is live: purge everything, and
    /// forget the mark once the purge was delivered (a node that stops
    /// before then purges again at its next start).
    fn purge_restored(&self, position: Position, mark: std::path::PathBuf) {
        let forget = move || {
            if let Err(error) = std::fs::remove_file(&mark) {
                tracing::warn!(%error, "cannot remove {}", mark.display());
            }
        };
        let Some(purger) = &self.purger else {
            tracing::warn!(
                "this store was restored from a backup: purge the caches in front by hand \
                 (they may hold answers from before it)"
            );
            forget();
            return;
        };
        let mut delivered = purger.purged_everything();
        let before = *delivered.borrow_and_update();
        purger.purge_all(position);
        tokio::spawn(async move {
            if delivered.wait_for(|n| *n > before).await.is_ok() {
                tracing::info!("the caches in front were purged after the restore");
                forget();
            }
        });
    }

    /// Swaps in a base table the compaction built, keeping the overlay
    /// entries written since.
    fn install_compaction(&self, current: &mut TableState, (base, built_at): (Table, Position)) {
        if let Some(sink) = self.replica.sink() {
            base.attach_sink(sink);
        }
        current.install_base(base, built_at);
        self.replica.publish(current.snapshot());
        tracing::info!(
            position = built_at,
            overlay = current.overlay_len(),
            "overlay folded into a new base table"
        );
    }

    /// What a wake-up means: catch up (at the top of the loop), count a
    /// reconnection, or fall back to polling.
    fn woke(&self, woke: Result<Wakeup, StoreError>, feed: &mut Subscription) {
        match woke {
            Ok(Wakeup::Committed(_)) => {}
            Ok(Wakeup::Reconnected) => {
                // Notifications sent meanwhile are lost: the catch-up at the
                // top of the loop reads the log instead.
                self.replica.metrics().feed_reconnect();
                tracing::info!("change notifications reconnected; catching up");
            }
            Err(error) => {
                tracing::warn!(%error, "change notifications stopped; polling until they return");
                feed.lost();
            }
        }
    }

    async fn bootstrap(&self) -> Result<TableState, StoreError> {
        let started = Instant::now();
        let seeded = self.seeded.lock().ok().and_then(|mut seeded| seeded.take());
        let (builder, head, from) = match seeded {
            Some(Seeded { builder, head }) => (builder, head, "the imported table file"),
            None => {
                let (builder, head) = self.snapshot().await?;
                (builder, head, "a store snapshot")
            }
        };
        let read_ms = started.elapsed().as_millis() as u64;
        let sink = self.replica.sink();
        let first = !self.replica.is_bootstrapped();
        let mut state = crate::replication::background::run("qrlaunch-build", move || {
            let state = builder.finish(head.epoch, head.position, sink);
            if first {
                // What the start read (a snapshot's rows, a file's lines) is
                // free now, and jemalloc's decay would keep it for seconds.
                // Returned before the first table is published, while no
                // scan can wait on the allocator's locks; after a rebuild it
                // is left to the decay.
                crate::replication::background::release_free_memory();
            }
            state
        })
        .await
        .ok_or_else(|| StoreError::Failed("the table build stopped".into()))?;
        let snapshot_counts = state.snapshot();
        tracing::info!(
            position = state.position,
            codes = snapshot_counts.code_count(),
            rules = snapshot_counts.rule_count(),
            read_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "table built from {from}"
        );
        Ok(state)
    }

    /// Every entry of the store, with the head it was read at.
    async fn snapshot(&self) -> Result<(StateBuilder, crate::replication::store::Head), StoreError> {
        // A hint only: a store that cannot count now fails the snapshot
        // next, or the index grows as the rows come.
        let codes = match self.store.code_count().await {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(_) => 0,
        };
        let builder = Arc::new(std::sync::Mutex::new(Some(StateBuilder::with_capacity(codes))));
        let sink = builder.clone();
        let head = self
            .store
            .snapshot(Box::new(move |entry| {
                if let Some(b) = sink.lock().ok().as_mut().and_then(|b| b.as_mut()) {
                    b.add_ref(entry);
                }
            }))
            .await?;
        let taken = builder.lock().ok().and_then(|mut b| b.take());
        let builder = taken.ok_or_else(|| StoreError::Failed("the snapshot builder was lost".into()))?;
        Ok((builder, head))
    }

    /// Applies every change after `state.position`, page by page.
    async fn catch_up(&self, state: &mut TableState) -> Result<(), Stop> {
        loop {
            let feed = self.store.changes_since(state.position, self.options.page).await?;
            self.replica.update(|s| s.store_head = feed.head.position);
            let last = apply_feed(state, feed, self.replica.metrics())?;
            match last {
                Progress::Current => return Ok(()),
                Progress::Applied {
                    more,
                    stale,
                    keys,
                    certificates,
                } => {
                    if !self.options.apply_delay.is_zero() {
                        // A node slow to make changes live (tests only).
                        tokio::time::sleep(self.options.apply_delay).await;
                    }
                    self.replica.publish(state.snapshot());
                    let position = state.position;
                    self.replica.update(|s| s.applied = position);
                    if keys {
                        self.replica.keys_changed(position);
                    }
                    if certificates {
                        self.replica.certificates_changed(position);
                    }
                    // Only now that scans get the new answers: a purge sent
                    // before would let a scan refill the cache from the old
                    // table.
                    if let Some(purger) = &self.purger {
                        purger.purge(position, stale);
                    }
                    if !more {
                        return Ok(());
                    }
                }
            }
        }
    }
}

enum Progress {
    /// Nothing after the applied position.
    Current,
    /// Changes were applied; `more` when the store has further ones;
    /// `stale`: the cache keys of the answers they changed.
    /// `keys`: an API key changed among them; `certificates`: a TLS
    /// certificate was stored among them.
    Applied {
        more: bool,
        stale: BTreeSet<SurrogateKey>,
        keys: bool,
        certificates: bool,
    },
}

/// Checks a page of the log against the applied position and applies it.
fn apply_feed(
    state: &mut TableState,
    feed: Feed,
    metrics: &crate::replication::metrics::Metrics,
) -> Result<Progress, Stop> {
    if feed.head.epoch != state.epoch {
        return Err(Stop::Resync(format!(
            "the store's epoch is {}, the table's {} (a restored or different database)",
            feed.head.epoch, state.epoch
        )));
    }
    if feed.head.position < state.position {
        return Err(Stop::Resync(format!(
            "the store is at position {}, behind the table's {}",
            feed.head.position, state.position
        )));
    }
    if feed.head.position == state.position {
        return Ok(Progress::Current);
    }
    if feed.oldest > state.position + 1 {
        return Err(Stop::Resync(format!(
            "the change log starts at {}, after the table's position {}",
            feed.oldest, state.position
        )));
    }
    let now_ms = crate::replication::store::now_ms();
    let mut changes = feed.changes.into_iter().peekable();
    let mut applied_any = false;
    let mut stale = BTreeSet::new();
    let mut keys = false;
    let mut certificates = false;
    while let Some(first) = changes.next() {
        let position = first.position;
        if position != state.position + 1 {
            return Err(Stop::Resync(format!(
                "position {position} follows {} in the log: a gap",
                state.position
            )));
        }
        let mut batch = vec![first];
        while let Some(next) = changes.next_if(|c| c.position == position) {
            batch.push(next);
        }
        if batch.iter().any(|c| c.change == Change::Resync) {
            return Err(Stop::Resync(format!(
                "position {position} changed too much to log entry by entry"
            )));
        }
        for c in &batch {
            metrics.sync_lag((now_ms - c.committed_at_ms).max(0) as f64 / 1000.0);
        }
        stale.extend(crate::model::keys::keys_of(batch.iter().map(|c| &c.change)));
        keys |= batch.iter().any(|c| matches!(c.change, Change::Keys(_)));
        certificates |= batch.iter().any(|c| matches!(c.change, Change::Certificates(_)));
        state.apply(position, batch.into_iter().map(|c| c.change));
        applied_any = true;
    }
    if !applied_any {
        return Err(Stop::Resync(format!(
            "the store is at {} but the log after {} is empty",
            feed.head.position, state.position
        )));
    }
    Ok(Progress::Applied {
        more: state.position < feed.head.position,
        stale,
        keys,
        certificates,
    })
}

fn compact(state: &mut TableState) -> Compaction {
    let (snapshot, at) = state.begin_compaction();
    Box::pin(
        async move { crate::replication::background::run("qrlaunch-compact", move || (snapshot.compact(), at)).await },
    )
}

async fn wait_job<T>(job: &mut Option<Job<T>>) -> Option<T> {
    match job {
        Some(running) => running.await,
        None => std::future::pending().await,
    }
}

/// Change notifications, when the store gives them; renewed at most every
/// few seconds after they stop (polling covers the gap).
#[derive(Default)]
struct Subscription {
    wakeups: Option<Box<dyn Wakeups>>,
    subscribed_at: Option<Instant>,
}

impl Subscription {
    async fn renew(&mut self, store: &dyn Store) {
        if self.wakeups.is_some()
            || self
                .subscribed_at
                .is_some_and(|t| t.elapsed() <= Duration::from_secs(5))
        {
            return;
        }
        self.subscribed_at = Some(Instant::now());
        match store.wakeups().await {
            Ok(w) => self.wakeups = Some(w),
            Err(error) => tracing::warn!(%error, "no change notifications; polling"),
        }
    }

    async fn next(&mut self) -> Result<Wakeup, StoreError> {
        match &mut self.wakeups {
            Some(w) => w.next().await,
            None => std::future::pending().await,
        }
    }

    fn lost(&mut self) {
        self.wakeups = None;
    }
}
