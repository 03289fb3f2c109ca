//! Counts on their way to the store.

use super::days::today;
use crate::model::client_class::CountClass;
use crate::model::domain::EntryKind;
use crate::model::table::CountSink;
use crate::replication::store::CountRow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

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
    pub(super) fn drain_own(&self) {
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
    pub(super) fn take_rows(&self) -> Vec<CountRow> {
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
    pub(super) fn restore(&self, rows: Vec<CountRow>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            *pending
                .entry((row.kind, row.key.into(), row.class, row.day))
                .or_default() += row.count as u64;
        }
    }

    /// Counts waiting for the store.
    /// From now on, counts drained belong to `day`.
    pub(super) fn start_day(&self, day: i32) {
        self.day.store(day, Ordering::Relaxed);
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::client_class::ClientClass;

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
