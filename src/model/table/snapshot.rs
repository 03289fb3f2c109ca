//! What scans read: a packed base table plus the changes applied since it
//! was built, and the host table, at one log position.
//!
//! Rebuilding a million-code [`Table`] for every change would cost a
//! second per write, so single changes go to an *overlay*
//! ([`super::overlay`]): a few small layers of the entries written since
//! the base was built, each with the set of keys it changed (replaced or
//! deleted), which hides the older layers' and the base's entries for
//! them. A lookup asks the layers from the newest, then the base. When the
//! overlay grows past [`COMPACT_AT`](super::COMPACT_AT) entries the
//! follower folds it into a new base. Either way the result is a new
//! immutable [`Snapshot`] that [`super::LiveTable`] swaps in; scans never
//! see a half-applied change.

use super::overlay::{Layer, Layers};
use super::{Hit, HostTable, Table, TableBuilder};
use crate::model::change::Position;
use crate::model::domain::{Code, Entry, EntryPoint, LaunchCode, Rule, Tags};
use std::sync::Arc;

/// One immutable generation of what scans read.
#[derive(Debug)]
pub struct Snapshot {
    base: Arc<Table>,
    overlay: Layers,
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
        Snapshot::build(Arc::new(base), Layers::default(), Arc::default(), 0)
    }

    /// `base` with the `overlay`'s layers on top, as of `position`: no
    /// work in proportion to either.
    pub fn build(base: Arc<Table>, overlay: Layers, hosts: Arc<HostTable>, position: Position) -> Snapshot {
        let count = |base: usize, delta: isize| base.checked_add_signed(delta).unwrap_or(0);
        Snapshot {
            code_count: count(base.code_count(), overlay.codes),
            rule_count: count(base.rule_count(), overlay.rules),
            base,
            overlay,
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

    fn layers(&self) -> &[Arc<Layer>] {
        &self.overlay.layers
    }

    /// The entry for a launch code, matched exactly.
    pub fn code(&self, code: &str) -> Option<Hit<'_>> {
        // The newest layer that changed the code has its answer (none if
        // it deleted it); with no overlay, this is the base's lookup alone.
        for layer in self.layers().iter().rev() {
            if layer.codes.contains_key(code) {
                return layer.table.code(code);
            }
        }
        self.base.code(code)
    }

    /// The rule with the longest prefix matching `url_key`, overlay and base together.
    pub fn rule(&self, url_key: &str) -> Option<Hit<'_>> {
        let layers = self.layers();
        if layers.iter().all(|layer| layer.rules.is_empty()) {
            return self.base.rule(url_key);
        }
        let mut best = self.base.rule_where(url_key, |key| !rule_hidden(layers, key));
        for (i, layer) in layers.iter().enumerate() {
            if layer.table.rule_count() == 0 {
                continue;
            }
            let newer = &layers[i + 1..];
            if let Some(hit) = layer.table.rule_where(url_key, |key| !rule_hidden(newer, key)) {
                // Two live rules matching the same URL with prefixes of the
                // same length would have the same key: a tie cannot happen.
                if best.is_none_or(|b| key_len(&hit) >= key_len(&b)) {
                    best = Some(hit);
                }
            }
        }
        best
    }

    pub fn code_count(&self) -> usize {
        self.code_count
    }

    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// How many layers the overlay has (what a lookup may ask beside the base).
    pub fn overlay_layers(&self) -> usize {
        self.overlay.len()
    }

    /// Every live rule's hit (base and overlay), without allocating.
    pub fn rule_hits(&self) -> impl Iterator<Item = Hit<'_>> + '_ {
        let layers = self.layers();
        self.base
            .rules()
            .filter(move |hit| !hit.prefix_key.is_some_and(|k| rule_hidden(layers, k)))
            .chain(layers.iter().enumerate().flat_map(move |(i, layer)| {
                let newer = &layers[i + 1..];
                layer
                    .table
                    .rules()
                    .filter(move |hit| !hit.prefix_key.is_some_and(|k| rule_hidden(newer, k)))
            }))
    }

    /// The hosts that rules are on (a host whose rules were all deleted
    /// since the base was built may still be named): as many as there are
    /// hosts, whatever the number of rules.
    pub fn rule_hosts(&self) -> std::collections::BTreeSet<&str> {
        let layers = self.layers().iter().flat_map(|layer| layer.table.rule_hosts());
        self.base.rule_hosts().chain(layers).collect()
    }

    /// Whether 404s on `host` are a rule host's (a rule is on it), not
    /// the public URLs' or the other hosts'.
    pub fn has_rules_on(&self, host: &str) -> bool {
        self.base.has_rules_on(host) || self.layers().iter().any(|layer| layer.table.has_rules_on(host))
    }

    /// Counts a 404 on `host` if a rule of this snapshot is on it; `false`
    /// otherwise.
    pub fn count_not_found(&self, host: &str) -> bool {
        self.base.count_not_found(host) || self.layers().iter().any(|layer| layer.table.count_not_found(host))
    }

    /// Takes every count of the tables this snapshot reads into `sink`.
    pub fn drain_counts(&self, sink: &dyn super::CountSink) {
        self.base.drain_counts(sink);
        for layer in self.layers() {
            layer.table.drain_counts(sink);
        }
    }

    /// Whether any code is live.
    pub fn has_codes(&self) -> bool {
        self.code_count > 0
    }

    /// Every live code and rule as entries (without tags, which the table
    /// does not keep): a new base, or a comparison in tests.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let layers = self.layers();
        let codes = self
            .base
            .codes()
            .filter(move |(code, _)| !code_hidden(layers, code))
            .chain(layers.iter().enumerate().flat_map(move |(i, layer)| {
                let newer = &layers[i + 1..];
                layer.table.codes().filter(move |(code, _)| !code_hidden(newer, code))
            }))
            .map(|(code, hit)| Entry::Code(launch_code(code, &hit)));
        codes.chain(self.rule_hits().map(|hit| Entry::Rule(rule(&hit))))
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

/// Whether one of `layers` changed the code.
fn code_hidden(layers: &[Arc<Layer>], code: &str) -> bool {
    layers.iter().any(|layer| layer.codes.contains_key(code))
}

/// Whether one of `layers` changed the rule (by normalized prefix).
fn rule_hidden(layers: &[Arc<Layer>], prefix_key: &str) -> bool {
    layers.iter().any(|layer| layer.rules.contains_key(prefix_key))
}

fn key_len(hit: &Hit<'_>) -> usize {
    hit.prefix_key.map_or(0, str::len)
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
    use crate::model::domain::EntryKey;
    use crate::model::table::{Overlay, OverlayEntry};
    use crate::model::table_file::{load, parse_line, Item};
    use crate::model::url_key::normalize_absolute;

    const BASE: &str = r#"{"code":"keep","appid":"wx1234567890abcdef","path":"base/keep"}
{"code":"gone","appid":"wx1234567890abcdef","path":"base/gone"}
{"code":"swap","appid":"wx1234567890abcdef","path":"base/swap"}
{"prefix":"https://a.com/","appid":"wx1234567890abcdef","path":"base/root"}
{"prefix":"https://a.com/x/","appid":"wx1234567890abcdef","path":"base/x"}"#;

    fn write(overlay: &mut Overlay, base: &Table, line: &str) {
        let Item::Entry(entry) = parse_line(line).unwrap() else {
            panic!("entry")
        };
        overlay.insert(
            base,
            entry.key(),
            OverlayEntry {
                position: 1,
                entry: Some(entry),
            },
        );
    }

    fn delete(overlay: &mut Overlay, base: &Table, key: EntryKey) {
        overlay.insert(
            base,
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
        // Each change published on its own: the layers merge as they go.
        let mut snap = Snapshot::new(Table::default());
        let changes: [&dyn Fn(&mut Overlay); 5] = [
            &|o| delete(o, &base, EntryKey::Code("gone".into())),
            &|o| {
                write(
                    o,
                    &base,
                    r#"{"code":"swap","appid":"wx1234567890abcdef","path":"new/swap"}"#,
                )
            },
            &|o| {
                write(
                    o,
                    &base,
                    r#"{"code":"fresh","appid":"wx1234567890abcdef","path":"new/fresh"}"#,
                )
            },
            &|o| {
                delete(
                    o,
                    &base,
                    EntryKey::Rule(normalize_absolute("https://a.com/x/").unwrap()),
                )
            },
            &|o| {
                write(
                    o,
                    &base,
                    r#"{"prefix":"https://a.com/x/y","appid":"wx1234567890abcdef","path":"new/xy"}"#,
                )
            },
        ];
        for change in changes {
            change(&mut overlay);
            snap = Snapshot::build(base.clone(), overlay.publish(&base), Arc::default(), 1);
        }

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
