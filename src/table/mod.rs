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
mod hosts;
mod live;
mod profile;
mod rules;
mod snapshot;

pub use builder::TableBuilder;
pub use hosts::{HostEntry, HostTable};
pub use live::LiveTable;
pub use profile::{Profile, ProfileKey};
pub use snapshot::{Overlay, OverlayEntry, Snapshot, COMPACT_AT};

use crate::domain::Availability;
use codes::CodeIndex;
use rules::RuleIndex;

/// One immutable generation of the table.
pub struct Table {
    profiles: Vec<Profile>,
    codes: CodeIndex,
    rules: RuleIndex,
}

/// What a lookup found: borrowed from the table, no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'t> {
    /// The entry point's query as the operator wrote it (not encoded).
    pub query: &'t str,
    pub profile: &'t Profile,
    /// For a rule, its prefix as written; `None` for a code.
    pub prefix: Option<&'t str>,
    /// For a rule, its normalized prefix (what "longest" is measured on).
    pub prefix_key: Option<&'t str>,
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
        Table {
            profiles: Vec::new(),
            codes: CodeIndex::with_capacity(0, 0),
            rules: RuleIndex::empty(),
        }
    }
}

impl Table {
    pub fn empty() -> Table {
        Table::default()
    }

    /// The entry for a launch code, matched exactly (case-sensitive).
    pub fn code(&self, code: &str) -> Option<Hit<'_>> {
        let (query, record) = self.codes.get(code)?;
        Some(Hit {
            query,
            profile: &self.profiles[record.profile as usize],
            prefix: None,
            prefix_key: None,
        })
    }

    /// The rule with the longest prefix matching `url_key`, a URL normalized
    /// by [`crate::url_key`].
    pub fn rule(&self, url_key: &str) -> Option<Hit<'_>> {
        self.rule_where(url_key, |_| true)
    }

    /// Like [`Table::rule`], skipping rules whose normalized prefix `usable` rejects.
    pub fn rule_where(&self, url_key: &str, usable: impl Fn(&str) -> bool) -> Option<Hit<'_>> {
        let m = self.rules.longest_match_where(url_key, usable)?;
        Some(Hit {
            query: m.query,
            profile: &self.profiles[m.profile as usize],
            prefix: Some(m.original_prefix),
            prefix_key: Some(m.key),
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
                    prefix: None,
                    prefix_key: None,
                },
            )
        })
    }

    /// Every rule's hit, sorted by normalized prefix.
    pub fn rules(&self) -> impl Iterator<Item = Hit<'_>> + '_ {
        self.rules.iter().map(|(key, prefix, query, profile)| Hit {
            query,
            profile: &self.profiles[profile as usize],
            prefix: Some(prefix),
            prefix_key: Some(key),
        })
    }
}
