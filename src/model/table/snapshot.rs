//! What scans read: a packed base table plus the small set of changes
//! applied since it was built, and the host table, at one log position.
//!
//! Rebuilding a million-code [`Table`] for every change would cost a
//! second per write, so single changes go to an *overlay*: a small `Table`
//! of the entries written since the base was built, and the set of keys
//! those writes touched (replaced or deleted), which hides their old base
//! entries. A lookup asks the overlay first, then the base. When the
//! overlay grows past [`COMPACT_AT`] entries the follower folds it into a
//! new base. Either way the result is a new immutable [`Snapshot`] that
//! [`super::LiveTable`] swaps in; scans never see a half-applied change.

use super::{Hit, HostTable, Table, TableBuilder};
use crate::model::change::Position;
use crate::model::domain::{Code, Entry, EntryKey, EntryPoint, LaunchCode, Rule, Tags};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Overlay size at which the follower compacts it into a new base.
pub const COMPACT_AT: usize = 4096;

/// One change in the overlay: the position that made it and the entry
/// (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayEntry {
    pub position: Position,
    pub entry: Option<Entry>,
}

/// Changes of codes and rules since the base was built, by key.
pub type Overlay = BTreeMap<EntryKey, OverlayEntry>;

type KeySet = HashSet<Box<str>, ahash::RandomState>;

/// One immutable generation of what scans read.
#[derive(Debug)]
pub struct Snapshot {
    base: Arc<Table>,
    overlay: Table,
    hidden_codes: KeySet,
    hidden_rules: KeySet,
    code_count: usize,
    rule_count: usize,
    hosts: Arc<HostTable>,
    position: Position,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::new(Table::default())
    }
}

impl Snapshot {
    /// A snapshot of `base` alone, at position 0, without hosts.
    pub fn new(base: Table) -> Snapshot {
        Snapshot::build(Arc::new(base), &Overlay::new(), Arc::default(), 0)
    }

    /// `base` with `overlay` applied on top, as of `position`.
    pub fn build(base: Arc<Table>, overlay: &Overlay, hosts: Arc<HostTable>, position: Position) -> Snapshot {
        let mut builder = TableBuilder::new();
        let mut hidden_codes = KeySet::default();
        let mut hidden_rules = KeySet::default();
        let (mut code_count, mut rule_count) = (base.code_count(), base.rule_count());
        for (key, change) in overlay {
            match key {
                EntryKey::Code(code) => {
                    code_count -= usize::from(base.code(code).is_some());
                    hidden_codes.insert(code.as_str().into());
                }
                EntryKey::Rule(prefix_key) => {
                    rule_count -= usize::from(base_has_rule(&base, prefix_key));
                    hidden_rules.insert(prefix_key.as_str().into());
                }
                EntryKey::Host(_) | EntryKey::File(_) => continue,
            }
            if let Some(entry) = &change.entry {
                builder.insert(entry);
            }
        }
        let overlay = builder.build();
        if let Some(sink) = base.sink() {
            overlay.attach_sink(sink);
        }
        code_count += overlay.code_count();
        rule_count += overlay.rule_count();
        Snapshot {
            base,
            overlay,
            hidden_codes,
            hidden_rules,
            code_count,
            rule_count,
            hosts,
            position,
        }
    }

    /// The base table, shared with the next snapshot.
    pub fn base(&self) -> &Arc<Table> {
        &self.base
    }

    /// The log position this snapshot reflects.
    pub fn position(&self) -> Position {
        self.position
    }

    pub fn hosts(&self) -> &HostTable {
        &self.hosts
    }

    /// The entry for a launch code, matched exactly.
    pub fn code(&self, code: &str) -> Option<Hit<'_>> {
        // Every overlay key is also hidden, so with nothing hidden there is no
        // overlay either: skip hashing the code for it (the common case).
        if !self.hidden_codes.is_empty() {
            if let Some(hit) = self.overlay.code(code) {
                return Some(hit);
            }
            if self.hidden_codes.contains(code) {
                return None;
            }
        }
        self.base.code(code)
    }

    /// The rule with the longest prefix matching `url_key`, overlay and base together.
    pub fn rule(&self, url_key: &str) -> Option<Hit<'_>> {
        if self.hidden_rules.is_empty() {
            return self.base.rule(url_key);
        }
        let from_base = self
            .base
            .rule_where(url_key, |prefix_key| !self.hidden_rules.contains(prefix_key));
        match (from_base, self.overlay.rule(url_key)) {
            (Some(b), Some(o)) => Some(if key_len(&o) >= key_len(&b) { o } else { b }),
            (b, o) => o.or(b),
        }
    }

    pub fn code_count(&self) -> usize {
        self.code_count
    }

    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Every live rule's hit (base and overlay), without allocating.
    pub fn rule_hits(&self) -> impl Iterator<Item = Hit<'_>> + '_ {
        self.base
            .rules()
            .filter(|hit| !hit.prefix_key.is_some_and(|k| self.hidden_rules.contains(k)))
            .chain(self.overlay.rules())
    }

    /// The hosts that rules are on (a host whose rules were all deleted
    /// since the base was built may still be named): as many as there are
    /// hosts, whatever the number of rules.
    pub fn rule_hosts(&self) -> std::collections::BTreeSet<&str> {
        self.base.rule_hosts().chain(self.overlay.rule_hosts()).collect()
    }

    /// Counts a 404 on `host` if a rule of this snapshot is on it; `false`
    /// otherwise.
    /// Whether 404s on `host` are a rule host's (a rule is on it), not
    /// the public URLs' or the other hosts'.
    pub fn has_rules_on(&self, host: &str) -> bool {
        self.base.has_rules_on(host) || self.overlay.has_rules_on(host)
    }

    pub fn count_not_found(&self, host: &str) -> bool {
        self.base.count_not_found(host) || self.overlay.count_not_found(host)
    }

    /// Takes every count of the tables this snapshot reads into `sink`.
    pub fn drain_counts(&self, sink: &dyn super::CountSink) {
        self.base.drain_counts(sink);
        self.overlay.drain_counts(sink);
    }

    /// Whether any code is live.
    pub fn has_codes(&self) -> bool {
        self.code_count > 0
    }

    /// Every live code and rule as entries (without tags, which the table
    /// does not keep): a new base, or a comparison in tests.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let base_codes = self
            .base
            .codes()
            .filter(|(code, _)| !self.hidden_codes.contains(*code))
            .chain(self.overlay.codes())
            .map(|(code, hit)| Entry::Code(launch_code(code, &hit)));
        let base_rules = self
            .base
            .rules()
            .filter(|hit| !hit.prefix_key.is_some_and(|k| self.hidden_rules.contains(k)))
            .chain(self.overlay.rules())
            .map(|hit| Entry::Rule(rule(&hit)));
        base_codes.chain(base_rules)
    }

    /// Folds the overlay into a new base holding every live entry.
    pub fn compact(&self) -> Table {
        let mut builder = TableBuilder::with_capacity(self.code_count);
        for entry in self.entries() {
            builder.insert(&entry);
        }
        builder.build()
    }
}

fn key_len(hit: &Hit<'_>) -> usize {
    hit.prefix_key.map_or(0, str::len)
}

fn base_has_rule(base: &Table, prefix_key: &str) -> bool {
    base.rule(prefix_key)
        .is_some_and(|hit| hit.prefix_key == Some(prefix_key))
}

fn entry_point(hit: &Hit<'_>) -> EntryPoint {
    let key = &hit.profile.key;
    EntryPoint {
        appid: key.appid.clone(),
        path: key.path.clone(),
        query: hit.query.parse().expect("stored queries were validated"),
        env_version: key.env_version,
        fallback_url: key.fallback_url.clone(),
    }
}

fn launch_code(code: &str, hit: &Hit<'_>) -> LaunchCode {
    LaunchCode {
        code: code.parse::<Code>().expect("stored codes were validated"),
        entry: entry_point(hit),
        schedule: hit.profile.key.schedule,
        tags: Tags::default(),
    }
}

fn rule(hit: &Hit<'_>) -> Rule {
    Rule {
        prefix: hit
            .prefix
            .unwrap_or_default()
            .parse()
            .expect("stored prefixes were validated"),
        entry: entry_point(hit),
        schedule: hit.profile.key.schedule,
        tags: Tags::default(),
        count_by: hit.profile.key.count_by.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table_file::{load, parse_line, Item};
    use crate::model::url_key::normalize_absolute;

    const BASE: &str = r#"{"code":"keep","appid":"wx1234567890abcdef","path":"base/keep"}
{"code":"gone","appid":"wx1234567890abcdef","path":"base/gone"}
{"code":"swap","appid":"wx1234567890abcdef","path":"base/swap"}
{"prefix":"https://a.com/","appid":"wx1234567890abcdef","path":"base/root"}
{"prefix":"https://a.com/x/","appid":"wx1234567890abcdef","path":"base/x"}"#;

    fn write(overlay: &mut Overlay, line: &str) {
        let Item::Entry(entry) = parse_line(line).unwrap() else {
            panic!("entry")
        };
        overlay.insert(
            entry.key(),
            OverlayEntry {
                position: 1,
                entry: Some(entry),
            },
        );
    }

    fn delete(overlay: &mut Overlay, key: EntryKey) {
        overlay.insert(
            key,
            OverlayEntry {
                position: 1,
                entry: None,
            },
        );
    }

    fn path_of(hit: Option<Hit<'_>>) -> Option<String> {
        hit.map(|h| h.profile.key.path.to_string())
    }

    #[test]
    fn overlay_replaces_hides_and_adds() {
        let base = Arc::new(load(BASE.as_bytes()).unwrap().table);
        let mut overlay = Overlay::new();
        delete(&mut overlay, EntryKey::Code("gone".into()));
        write(
            &mut overlay,
            r#"{"code":"swap","appid":"wx1234567890abcdef","path":"new/swap"}"#,
        );
        write(
            &mut overlay,
            r#"{"code":"fresh","appid":"wx1234567890abcdef","path":"new/fresh"}"#,
        );
        delete(
            &mut overlay,
            EntryKey::Rule(normalize_absolute("https://a.com/x/").unwrap()),
        );
        write(
            &mut overlay,
            r#"{"prefix":"https://a.com/x/y","appid":"wx1234567890abcdef","path":"new/xy"}"#,
        );
        let snap = Snapshot::build(base, &overlay, Arc::default(), 1);

        assert_eq!(path_of(snap.code("keep")).as_deref(), Some("base/keep"));
        assert_eq!(path_of(snap.code("gone")), None);
        assert_eq!(path_of(snap.code("swap")).as_deref(), Some("new/swap"));
        assert_eq!(path_of(snap.code("fresh")).as_deref(), Some("new/fresh"));
        assert_eq!((snap.code_count(), snap.rule_count()), (3, 2));

        let rule = |url: &str| path_of(snap.rule(&normalize_absolute(url).unwrap()));
        // The deleted `/x/` rule falls back to the base's `/`.
        assert_eq!(rule("https://a.com/x/z").as_deref(), Some("base/root"));
        // The overlay's longer prefix beats the base's shorter one.
        assert_eq!(rule("https://a.com/x/y?q=1").as_deref(), Some("new/xy"));
        assert_eq!(rule("https://b.com/"), None);

        let compacted = Snapshot::new(snap.compact());
        for code in ["keep", "gone", "swap", "fresh"] {
            assert_eq!(path_of(compacted.code(code)), path_of(snap.code(code)), "{code}");
        }
        assert_eq!((compacted.code_count(), compacted.rule_count()), (3, 2));
        assert_eq!(
            rule("https://a.com/x/z"),
            path_of(compacted.rule(&normalize_absolute("https://a.com/x/z").unwrap()))
        );
    }
}
