//! Counts on their way to the store.

use super::days::Days;
use crate::model::client_class::CountClass;
use crate::model::domain::EntryKind;
use crate::model::table::CountSink;
use crate::replication::store::CountRow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

/// The key of 404s on hosts that have neither rules nor a public URL.
pub const OTHER_HOSTS: &str = "(other hosts)";

/// Most distinct values of a rule's `count_by` parameter counted a day
/// (by this node); later ones count under [`OTHER_VALUE`].
pub const MAX_VALUES: usize = 1_000;
/// Where values past [`MAX_VALUES`] (or longer than [`MAX_VALUE_LEN`]) go.
pub const OTHER_VALUE: &str = "(other)";
/// The value of a scan whose URL did not have the parameter.
pub const NO_VALUE: &str = "(none)";
/// Longest value kept as itself, in bytes.
pub const MAX_VALUE_LEN: usize = 100;

/// The values of one rule's parameter seen on one day.
type ValuesSeen = HashSet<Box<str>>;

/// What a pending count is of: entry kind, key, class, day.
pub type CountKey = (EntryKind, Box<str>, CountClass, i32);

/// Counts on their way to the store.
pub struct ScanCounts {
    /// Counts waiting for the next flush.
    pending: Mutex<HashMap<CountKey, u64>>,
    /// The day (in `days`' time zone) that counts drained now belong to.
    day: AtomicI32,
    /// How a time becomes a day.
    days: Days,
    /// 404s on the public URLs' hosts, then on every other host.
    code_hosts: Vec<(String, AtomicU64)>,
    other_hosts: AtomicU64,
    /// The values of `count_by` parameters seen, by rule and day.
    values: Mutex<HashMap<(Box<str>, i32), ValuesSeen>>,
}

impl std::fmt::Debug for ScanCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanCounts").field("day", &self.day).finish()
    }
}

impl ScanCounts {
    /// A sink that also counts 404s on `code_hosts` (the `--public-url`
    /// hosts), by the days of `days`.
    pub fn new(code_hosts: impl IntoIterator<Item = String>, days: Days) -> ScanCounts {
        ScanCounts {
            pending: Mutex::new(HashMap::new()),
            day: AtomicI32::new(days.today()),
            days,
            code_hosts: code_hosts.into_iter().map(|h| (h, AtomicU64::new(0))).collect(),
            other_hosts: AtomicU64::new(0),
            values: Mutex::new(HashMap::new()),
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

    /// The key a 404 on `host` (a host no rule is on) is counted under.
    pub fn not_found_key<'h>(&self, host: &'h str) -> &'h str {
        if self.code_hosts.iter().any(|(h, _)| h == host) {
            host
        } else {
            OTHER_HOSTS
        }
    }

    /// The count key of a scan of rule `rule_key` on `day` whose `param`
    /// had `value` (`None`: the URL did not have it): the value itself
    /// for the first [`MAX_VALUES`] values of the rule that day, then
    /// [`OTHER_VALUE`], so no one can make rows without end.
    pub fn value_key(&self, rule_key: &str, param: &str, value: Option<&str>, day: i32) -> String {
        let value = match value {
            None => NO_VALUE,
            Some(v) if v.len() > MAX_VALUE_LEN => OTHER_VALUE,
            Some(v) => {
                let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
                let seen = values.entry((rule_key.into(), day)).or_default();
                if seen.contains(v) {
                    v
                } else if seen.len() < MAX_VALUES {
                    seen.insert(v.into());
                    v
                } else {
                    OTHER_VALUE
                }
            }
        };
        crate::replication::store::value_key(rule_key, param, value)
    }

    /// [`ScanCounts::value_key`] of the value `param` has in the query of
    /// `path_and_query` (decoded; a value that does not decode counts
    /// under [`OTHER_VALUE`]).
    pub fn value_key_of(&self, rule_key: &str, param: &str, path_and_query: &str, day: i32) -> String {
        let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
        match crate::model::percent::get(query, param) {
            None => self.value_key(rule_key, param, None, day),
            Some(Ok(value)) => self.value_key(rule_key, param, Some(&value), day),
            Some(Err(_)) => crate::replication::store::value_key(rule_key, param, OTHER_VALUE),
        }
    }

    /// Counts a scan of rule `rule_key` by the value of its `count_by`
    /// parameter in `path_and_query`, today.
    pub fn add_value(&self, rule_key: &str, param: &str, path_and_query: &str, class: CountClass) {
        let day = self.day.load(Ordering::Relaxed);
        let key = self.value_key_of(rule_key, param, path_and_query, day);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry((EntryKind::Rule, key.into(), class, day)).or_default() += 1;
    }

    /// Adds many counts at once, merged with the pending ones under one
    /// lock, the smaller map into the larger. Scans of rules with a
    /// `count_by` take this lock; merging a million restored rows under it
    /// kept them waiting for as long, so the work under it is only as
    /// large as the smaller side, and the maps are built and freed outside.
    pub fn add_all(&self, mut counts: HashMap<CountKey, u64>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() < counts.len() {
            std::mem::swap(&mut *pending, &mut counts);
        }
        for (key, n) in counts.drain() {
            *pending.entry(key).or_default() += n;
        }
        drop(pending);
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

    /// How a time becomes a day here.
    pub fn days(&self) -> &Days {
        &self.days
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
    /// Their map is built before the lock is taken ([`ScanCounts::add_all`]).
    pub(super) fn restore(&self, rows: Vec<CountRow>) {
        let mut counts: HashMap<CountKey, u64> = HashMap::with_capacity(rows.len());
        for row in rows {
            *counts
                .entry((row.kind, row.key.into(), row.class, row.day))
                .or_default() += row.count as u64;
        }
        self.add_all(counts);
    }

    /// From now on, counts drained belong to `day`.
    pub(super) fn start_day(&self, day: i32) {
        self.day.store(day, Ordering::Relaxed);
        // Values of days before yesterday are not needed to bound today's.
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, d), _| *d >= day - 1);
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
        let counts = ScanCounts::new(["go.example.com".to_string()], Days::utc());
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

    #[test]
    fn many_counts_add_up_whichever_side_is_larger() {
        let counts = ScanCounts::new(Vec::<String>::new(), Days::utc());
        let ios = CountClass::Client(ClientClass::Ios);
        let key = |k: &str| (EntryKind::Code, Box::<str>::from(k), ios, 1);
        for k in ["a", "b", "c"] {
            counts.add(EntryKind::Code, k, ios, 1);
        }
        let day = counts.day.load(Ordering::Relaxed);
        let key_today = |k: &str| (EntryKind::Code, Box::<str>::from(k), ios, day);
        // Smaller than the pending counts, then larger (the maps swap).
        counts.add_all(HashMap::from([(key_today("a"), 2)]));
        counts.add_all(["a", "b", "x", "y", "z"].map(|k| (key_today(k), 10)).into());
        counts.add_all(HashMap::from([(key("a"), 7)]));
        let mut rows: Vec<(String, i32, i64)> = counts
            .take_rows()
            .into_iter()
            .map(|r| (r.key, r.day, r.count))
            .collect();
        rows.sort();
        let today = |k: &str, n| (k.to_string(), day, n);
        let mut want = vec![
            today("a", 13),
            today("b", 11),
            today("c", 1),
            today("x", 10),
            today("y", 10),
            today("z", 10),
            ("a".to_string(), 1, 7),
        ];
        want.sort();
        assert_eq!(rows, want);
    }

    #[test]
    fn values_of_a_parameter_are_bounded_per_rule_and_day() {
        let counts = ScanCounts::new(Vec::<String>::new(), Days::utc());
        let rule = "https://www.example.com/download";
        let key = |target: &str, day| counts.value_key_of(rule, "channel", target, day);
        assert_eq!(
            key("/download?channel=poster%201", 1),
            format!("{rule}\u{1f}channel\u{1f}poster 1")
        );
        assert_eq!(key("/download?x=1", 1), format!("{rule}\u{1f}channel\u{1f}(none)"));
        assert_eq!(
            key("/download?channel=%zz", 1),
            format!("{rule}\u{1f}channel\u{1f}(other)")
        );
        let long = format!("/download?channel={}", "a".repeat(MAX_VALUE_LEN + 1));
        assert!(key(&long, 1).ends_with("(other)"));
        for i in 1..MAX_VALUES {
            assert!(key(&format!("/download?channel=p{i}"), 1).ends_with(&format!("p{i}")));
        }
        // The 1,000th new value of the day is the last kept as itself.
        assert!(key("/download?channel=late", 1).ends_with("(other)"));
        assert!(
            key("/download?channel=p7", 1).ends_with("p7"),
            "known values still count"
        );
        assert!(
            key("/download?channel=late", 2).ends_with("late"),
            "a new day, a new budget"
        );
        counts.start_day(4);
        assert_eq!(counts.values.lock().unwrap().len(), 0, "old days are let go");
    }
}
