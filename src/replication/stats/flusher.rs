//! Moving pending counts to the store: every `--stats-flush`, at each UTC
//! midnight and at stop.

use super::pending::ScanCounts;
use crate::replication::background;
use crate::replication::store::Store;
use crate::replication::sync::Replica;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Moves the counts of `replica`'s live tables to the store, and anything
/// waiting. On failure the counts stay pending for the next flush.
///
/// What touches every count runs in the idle class, off the control thread
/// (on a one-core node, the scan core): draining the table, turning the
/// pending counts into rows, the copy kept in case the store refuses them,
/// and freeing that copy. In a flush of a million counters these took the
/// control thread about 90 ms at normal priority (README, "Scans during
/// background work"). A refused flush puts the rows back on such a thread
/// too.
pub async fn flush(
    counts: &Arc<ScanCounts>,
    replica: &Replica,
    store: &Arc<dyn Store>,
) -> Result<usize, crate::replication::store::StoreError> {
    let snapshot = replica.load().clone();
    let sink = counts.clone();
    let taken = background::run("qrlaunch-drain", move || {
        snapshot.drain_counts(&*sink);
        sink.drain_own();
        let rows = sink.take_rows();
        let kept = rows.clone();
        (rows, kept)
    })
    .await;
    // The thread did not start, or the drain panicked before it took the
    // rows: they are still pending.
    let Some((rows, kept)) = taken else {
        return Err(crate::replication::store::StoreError::Failed(
            "the thread draining the counts stopped".into(),
        ));
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    match store.add_counts(rows).await {
        Ok(()) => {
            background::retire(Arc::new(kept));
            Ok(n)
        }
        Err(error) => {
            // A million rows back into the pending map is bulk work too. If
            // the thread cannot start, they go back here rather than be lost.
            let slot = Arc::new(std::sync::Mutex::new(Some(kept)));
            let (back, taken) = (counts.clone(), slot.clone());
            background::run("qrlaunch-restore", move || {
                let kept = taken.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(kept) = kept {
                    back.restore(kept);
                }
            })
            .await;
            let kept = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(kept) = kept {
                counts.restore(kept);
            }
            Err(error)
        }
    }
}

/// Flushes every `interval` and at every midnight (in the counts' time
/// zone) until `shutdown`,
/// then once more. Returns when the last flush is done.
pub async fn run_flusher(
    counts: Arc<ScanCounts>,
    replica: Arc<Replica>,
    store: Arc<dyn Store>,
    interval: Duration,
    keep_days: i32,
    shutdown: CancellationToken,
) {
    let mut pruned_on = i32::MIN;
    loop {
        let now_ms = crate::replication::store::now_ms();
        let to_midnight = counts.days().until_midnight(now_ms);
        let wait = interval.min(to_midnight);
        let stop = tokio::select! {
            () = tokio::time::sleep(wait) => false,
            () = shutdown.cancelled() => true,
        };
        let flushed = flush(&counts, &replica, &store).await;
        if let Ok(rows) = &flushed {
            replica.metrics().stats_flushed(*rows);
        }
        if let Err(error) = &flushed {
            tracing::warn!(%error, pending = counts.pending_len(), "scan counts not flushed; retrying at the next flush");
        }
        // After a flush at midnight, counts drained from now on are today's.
        let today = counts.days().today();
        counts.start_day(today);
        if today != pruned_on {
            pruned_on = today;
            if let Err(error) = store.prune_counts(today - keep_days).await {
                tracing::warn!(%error, "pruning old scan counts failed");
            }
        }
        if stop {
            match flushed {
                Ok(n) => tracing::info!(rows = n, "scan counts flushed at stop"),
                Err(_) => tracing::error!(
                    pending = counts.pending_len(),
                    "scan counts could not be flushed at stop"
                ),
            }
            return;
        }
    }
}
