//! The in-memory table that every scan reads: launch codes by exact match
//! and legacy URL rules by longest matching prefix.
//!
//! A [`Table`] is an immutable snapshot, built once by [`TableBuilder`] and
//! never changed. [`LiveTable`] publishes the current snapshot through
//! `arc-swap`: a scan loads it without taking any lock or waiting for any
//! writer, and a writer that replaces the whole table builds the next
//! snapshot on its own thread and swaps it in with one atomic store.
//! Why a snapshot and not dashmap: see ARCHITECTURE.md and
//! `benches/read_while_write.rs`.

mod builder;
mod codes;
mod counts;
mod hosts;
mod live;
mod overlay;
mod profile;
mod rules;
mod snapshot;

pub use builder::TableBuilder;
pub use counts::{prefetch as prefetch_counts, CountSink, CLASSES};
pub use hosts::{HostEntry, HostTable};
pub use live::LiveTable;
pub use overlay::{Layers, MergeJob, Merged, Overlay, OverlayEntry, COMPACT_AT, INLINE_MERGE};
pub use profile::{Profile, ProfileKey};
pub use snapshot::Snapshot;

use crate::model::domain::{Availability, EntryKind};
use codes::CodeIndex;
use counts::Counts;
use rules::RuleIndex;
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

/// One immutable generation of the table.
pub struct Table {
    profiles: Vec<Profile>,
    codes: CodeIndex,
    rules: RuleIndex,
    /// Scan counters: codes by id, then rules by index.
    counts: Counts,
    /// The hosts of the rules, for counting 404s per host.
    rule_hosts: HashMap<Box<str>, usize, ahash::RandomState>,
    not_found: Box<[AtomicU32]>,
}

/// What a lookup found: borrowed from the table, no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'t> {
    /// The entry point's query as the operator wrote it (not encoded).
    pub query: &'t str,
    pub profile: &'t Profile,
    /// For a code, the code as stored; `None` for a rule.
    pub code: Option<&'t str>,
    /// For a rule, its prefix as written; `None` for a code.
    pub prefix: Option<&'t str>,
    /// For a rule, its normalized prefix (what "longest" is measured on).
    pub prefix_key: Option<&'t str>,
    /// The entry's scan counters, one per client class.
    pub counts: &'t [AtomicU32],
}

impl Hit<'_> {
    pub fn availability(&self, now_unix: i64) -> Availability {
        self.profile.key.schedule.availability(now_unix)
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("codes", &self.code_count())
            .field("rules", &self.rule_count())
            .field("profiles", &self.profile_count())
            .finish()
    }
}

impl Default for Table {
    fn default() -> Table {
        Table::assemble(Vec::new(), CodeIndex::with_capacity(0, 0), RuleIndex::empty())
    }
}

impl Drop for Table {
    /// A table's counts go to its sink when it is dropped, so replacing it
    /// loses none.
    fn drop(&mut self) {
        if let Some(sink) = self.counts.sink.get().cloned() {
            self.drain_counts(&*sink);
        }
    }
}

impl Table {
    pub fn empty() -> Table {
        Table::default()
    }

    fn assemble(profiles: Vec<Profile>, codes: CodeIndex, rules: RuleIndex) -> Table {
        let mut rule_hosts: HashMap<Box<str>, usize, ahash::RandomState> = HashMap::default();
        for (key, _) in rules.keys() {
            let host = crate::model::url_key::host_of_key(key);
            let next = rule_hosts.len();
            rule_hosts.entry(host.into()).or_insert(next);
        }
        let counts = Counts::zeroed(codes.id_count() + rules.len());
        let not_found = counts::zeroed_cells(rule_hosts.len());
        Table {
            profiles,
            codes,
            rules,
            counts,
            rule_hosts,
            not_found,
        }
    }

    /// Sends this table's counts to `sink` when it is dropped (and lets the
    /// stats flusher drain it meanwhile).
    pub fn attach_sink(&self, sink: Arc<dyn CountSink>) {
        let _ = self.counts.sink.set(sink);
    }

    /// The sink this table's counts go to, if any.
    pub fn sink(&self) -> Option<Arc<dyn CountSink>> {
        self.counts.sink.get().cloned()
    }

    /// Takes every count of this table (zeroing it) into `sink`.
    pub fn drain_counts(&self, sink: &dyn CountSink) {
        for (code, id) in self.codes.ids() {
            self.counts.drain_record(id as usize, EntryKind::Code, code, sink);
        }
        let codes = self.codes.id_count();
        for (key, index) in self.rules.keys() {
            self.counts.drain_record(codes + index, EntryKind::Rule, key, sink);
        }
        for (host, &index) in &self.rule_hosts {
            if let Some(cell) = self.not_found.get(index) {
                Counts::drain_cell(cell, host, sink);
            }
        }
    }

    /// The hosts (normalized) that this table has rules on.
    pub fn rule_hosts(&self) -> impl Iterator<Item = &str> + '_ {
        self.rule_hosts.keys().map(|h| &**h)
    }

    /// Counts a 404 on `host` (normalized) if it is a host of this table's
    /// rules; `false` if it is not.
    /// Whether 404s on `host` are counted by this table (it holds rules
    /// on that host).
    pub fn has_rules_on(&self, host: &str) -> bool {
        self.rule_hosts.contains_key(host)
    }

    pub fn count_not_found(&self, host: &str) -> bool {
        match self.rule_hosts.get(host).and_then(|&i| self.not_found.get(i)) {
            Some(cell) => {
                cell.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// The entry for a launch code, matched exactly (case-sensitive).
    pub fn code(&self, code: &str) -> Option<Hit<'_>> {
        let (code, query, record) = self.codes.get(code)?;
        Some(Hit {
            query,
            profile: &self.profiles[record.profile as usize],
            code: Some(code),
            prefix: None,
            prefix_key: None,
            counts: self.counts.record(record.id as usize),
        })
    }

    /// The rule with the longest prefix matching `url_key`, a URL normalized
    /// by [`crate::model::url_key`].
    pub fn rule(&self, url_key: &str) -> Option<Hit<'_>> {
        self.rule_where(url_key, |_| true)
    }

    /// Like [`Table::rule`], skipping rules whose normalized prefix `usable` rejects.
    pub fn rule_where(&self, url_key: &str, usable: impl Fn(&str) -> bool) -> Option<Hit<'_>> {
        let m = self.rules.longest_match_where(url_key, usable)?;
        Some(Hit {
            query: m.query,
            profile: &self.profiles[m.profile as usize],
            code: None,
            prefix: Some(m.original_prefix),
            prefix_key: Some(m.key),
            counts: self.counts.record(self.codes.id_count() + m.index),
        })
    }

    pub fn code_count(&self) -> usize {
        self.codes.len()
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Distinct profiles (entry points minus code and query): a measure of
    /// how well interning works for this table.
    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// Every code with its hit, in load order.
    pub fn codes(&self) -> impl Iterator<Item = (&str, Hit<'_>)> + '_ {
        self.codes.iter().map(|(code, query, profile)| {
            (
                code,
                Hit {
                    query,
                    profile: &self.profiles[profile as usize],
                    code: Some(code),
                    prefix: None,
                    prefix_key: None,
                    counts: &[],
                },
            )
        })
    }

    /// Every rule's hit, sorted by normalized prefix.
    pub fn rules(&self) -> impl Iterator<Item = Hit<'_>> + '_ {
        self.rules.iter().map(|(key, prefix, query, profile)| Hit {
            query,
            profile: &self.profiles[profile as usize],
            code: None,
            prefix: Some(prefix),
            prefix_key: Some(key),
            counts: &[],
        })
    }
}
