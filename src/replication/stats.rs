//! Scan counts: how many times each entry was scanned, per UTC day and
//! client class, and how many 404s each host answered.
//!
//! The scan path adds to counters inside the tables (see
//! [`crate::model::table::CountSink`]): one relaxed atomic add, no lock, no
//! allocation. [`ScanCounts`] is where counts wait for the store: the
//! flusher drains the live tables into it every `--stats-flush` (and at
//! each UTC midnight, so a day's counts stay that day's), a table that is
//! replaced drains itself into it, and the flusher then *adds* what waits to
//! the store in one transaction. Nodes sharing a store add their own counts,
//! so totals sum across a fleet. A clean stop flushes everything; a SIGKILL
//! loses at most one flush interval.

use crate::model::client_class::CountClass;
use crate::model::domain::EntryKind;
use crate::model::table::CountSink;
use crate::replication::store::{CountRow, Store};
use crate::replication::sync::Replica;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The key of 404s on hosts that have neither rules nor a public URL.
pub const OTHER_HOSTS: &str = "(other hosts)";

/// What a pending count is of: entry kind, key, class, day.
type CountKey = (EntryKind, Box<str>, CountClass, i32);

/// Counts on their way to the store.
pub struct ScanCounts {
    /// Counts waiting for the next flush.
    pending: Mutex<HashMap<CountKey, u64>>,
    /// Days since the epoch, UTC, that counts drained now belong to.
    day: AtomicI32,
    /// 404s on the public URLs' hosts, then on every other host.
    code_hosts: Vec<(String, AtomicU64)>,
    other_hosts: AtomicU64,
}

impl std::fmt::Debug for ScanCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanCounts").field("day", &self.day).finish()
    }
}

/// Days since 1970-01-01 of a UNIX time, UTC.
pub fn day_of(unix_seconds: i64) -> i32 {
    unix_seconds.div_euclid(86_400) as i32
}

/// Today, UTC.
pub fn today() -> i32 {
    day_of(crate::replication::store::now_ms() / 1000)
}

/// `2026-11-24` for a day number.
pub fn date_string(day: i32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(day) * 86_400)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| day.to_string())
}

/// The day number of `2026-11-24`.
pub fn parse_date(text: &str) -> Option<i32> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, format).ok()?;
    Some(day_of(date.midnight().assume_utc().unix_timestamp()))
}

impl ScanCounts {
    /// A sink that also counts 404s on `code_hosts` (the `--public-url` hosts).
    pub fn new(code_hosts: impl IntoIterator<Item = String>) -> ScanCounts {
        ScanCounts {
            pending: Mutex::new(HashMap::new()),
            day: AtomicI32::new(today()),
            code_hosts: code_hosts.into_iter().map(|h| (h, AtomicU64::new(0))).collect(),
            other_hosts: AtomicU64::new(0),
        }
    }

    /// Counts a 404 on a host that no table knows: its public-URL counter,
    /// or the one for every other host. Lock-free.
    pub fn count_not_found_elsewhere(&self, host: &str) {
        match self.code_hosts.iter().find(|(h, _)| h == host) {
            Some((_, n)) => n.fetch_add(1, Ordering::Relaxed),
            None => self.other_hosts.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Moves the 404 counters kept here into the pending counts.
    fn drain_own(&self) {
        let day = self.day.load(Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let hosts = self.code_hosts.iter().map(|(h, n)| (h.as_str(), n));
        for (host, n) in hosts.chain(std::iter::once((OTHER_HOSTS, &self.other_hosts))) {
            let n = n.swap(0, Ordering::Relaxed);
            if n != 0 {
                *pending
                    .entry((EntryKind::Host, host.into(), CountClass::NotFound, day))
                    .or_default() += n;
            }
        }
    }

    /// Takes every pending count as rows for the store.
    fn take_rows(&self) -> Vec<CountRow> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        pending
            .into_iter()
            .map(|((kind, key, class, day), n)| CountRow {
                kind,
                key: key.into(),
                day,
                class,
                count: i64::try_from(n).unwrap_or(i64::MAX),
            })
            .collect()
    }

    /// Puts rows back (the store refused them; the next flush retries).
    fn restore(&self, rows: Vec<CountRow>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            *pending
                .entry((row.kind, row.key.into(), row.class, row.day))
                .or_default() += row.count as u64;
        }
    }

    /// Counts waiting for the store.
    pub fn pending_len(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.len())
    }
}

impl CountSink for ScanCounts {
    fn add(&self, kind: EntryKind, key: &str, class: CountClass, n: u64) {
        let day = self.day.load(Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry((kind, key.into(), class, day)).or_default() += n;
    }
}

/// Moves the counts of `replica`'s live tables to the store, and anything
/// waiting. On failure the counts stay pending for the next flush.
pub async fn flush(
    counts: &Arc<ScanCounts>,
    replica: &Replica,
    store: &Arc<dyn Store>,
) -> Result<usize, crate::replication::store::StoreError> {
    let snapshot = replica.load().clone();
    let sink = counts.clone();
    crate::replication::background::run("qrlaunch-drain", move || {
        snapshot.drain_counts(&*sink);
        sink.drain_own();
    })
    .await;
    let rows = counts.take_rows();
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    if let Err(error) = store.add_counts(rows.clone()).await {
        counts.restore(rows);
        return Err(error);
    }
    Ok(n)
}

/// Flushes every `interval` and at every UTC midnight until `shutdown`,
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
        let to_midnight = Duration::from_millis((86_400_000 - now_ms.rem_euclid(86_400_000)) as u64);
        let wait = interval.min(to_midnight);
        let stop = tokio::select! {
            () = tokio::time::sleep(wait) => false,
            () = shutdown.cancelled() => true,
        };
        let flushed = flush(&counts, &replica, &store).await;
        if let Err(error) = &flushed {
            tracing::warn!(%error, pending = counts.pending_len(), "scan counts not flushed; retrying at the next flush");
        }
        // After a flush at midnight, counts drained from now on are today's.
        counts.day.store(today(), Ordering::Relaxed);
        let today = today();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::client_class::ClientClass;

    #[test]
    fn days_and_dates() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        let day = parse_date("2026-11-24").unwrap();
        assert_eq!(date_string(day), "2026-11-24");
        assert_eq!(day_of(1_795_488_000), day, "2026-11-24T00:00:00Z");
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn pending_counts_add_up_and_survive_a_refused_flush() {
        let counts = ScanCounts::new(["go.example.com".to_string()]);
        let (ios, android) = (
            CountClass::Client(ClientClass::Ios),
            CountClass::Client(ClientClass::Android),
        );
        counts.add(EntryKind::Code, "a", ios, 2);
        counts.add(EntryKind::Code, "a", ios, 3);
        counts.add(EntryKind::Code, "a", android, 1);
        counts.count_not_found_elsewhere("go.example.com");
        counts.count_not_found_elsewhere("x.example.com");
        counts.drain_own();
        let mut rows = counts.take_rows();
        rows.sort_by(|a, b| (&a.key, a.class.as_str()).cmp(&(&b.key, b.class.as_str())));
        let summary: Vec<(&str, &str, i64)> = rows
            .iter()
            .map(|r| (r.key.as_str(), r.class.as_str(), r.count))
            .collect();
        assert_eq!(
            summary,
            [
                ("(other hosts)", "not_found", 1),
                ("a", "android", 1),
                ("a", "ios", 5),
                ("go.example.com", "not_found", 1)
            ]
        );
        counts.restore(rows);
        assert_eq!(counts.pending_len(), 4);
    }
}
