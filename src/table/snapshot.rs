//! What scans read: a packed base table plus the small set of changes
//! written since it was built.
//!
//! Rebuilding a million-code [`Table`] for every admin write would cost a
//! second per write, so single writes go to an *overlay*: a small `Table`
//! of the entries written since the base was built, and the set of keys
//! those writes touched (replaced or deleted), which hides their old base
//! entries. A lookup asks the overlay first, then the base. When the
//! overlay grows past [`COMPACT_AT`] entries the writer folds it into a new
//! base. Either way the result is a new immutable [`Snapshot`] that
//! [`super::LiveTable`] swaps in; scans never see a half-applied write.

use super::{BuildError, Hit, Table, TableBuilder};
use crate::domain::{Code, EntryPoint, LaunchCode, Rule};
use crate::table_file::TableEntry;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Overlay size at which the writer compacts it into a new base.
pub const COMPACT_AT: usize = 4096;

/// Identity of an entry: a code, or a rule's normalized prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKey {
    Code(String),
    Rule(String),
}

impl EntryKey {
    pub fn of(entry: &TableEntry) -> EntryKey {
        match entry {
            TableEntry::Code(c) => EntryKey::Code(c.code.to_string()),
            TableEntry::Rule(r) => EntryKey::Rule(r.prefix.key().to_string()),
        }
    }
}

/// Writes since the base was built: `Some` = created or replaced, `None` = deleted.
pub type Overlay = BTreeMap<EntryKey, Option<TableEntry>>;

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
}

impl Snapshot {
    /// A snapshot of `base` alone.
    pub fn new(base: Table) -> Snapshot {
        Snapshot::with_overlay(Arc::new(base), &Overlay::new()).expect("an empty overlay has no duplicates")
    }

    /// `base` with `overlay` applied on top.
    pub fn with_overlay(base: Arc<Table>, overlay: &Overlay) -> Result<Snapshot, BuildError> {
        let mut builder = TableBuilder::new();
        let mut hidden_codes = KeySet::default();
        let mut hidden_rules = KeySet::default();
        let (mut code_count, mut rule_count) = (base.code_count(), base.rule_count());
        for (key, entry) in overlay {
            match key {
                EntryKey::Code(code) => {
                    code_count -= usize::from(base.code(code).is_some());
                    hidden_codes.insert(code.as_str().into());
                }
                EntryKey::Rule(prefix_key) => {
                    rule_count -= usize::from(base_has_rule(&base, prefix_key));
                    hidden_rules.insert(prefix_key.as_str().into());
                }
            }
            match entry {
                Some(TableEntry::Code(code)) => builder.insert_code(code)?,
                Some(TableEntry::Rule(rule)) => builder.insert_rule(rule)?,
                None => {}
            }
        }
        let overlay = builder.build()?;
        code_count += overlay.code_count();
        rule_count += overlay.rule_count();
        Ok(Snapshot {
            base,
            overlay,
            hidden_codes,
            hidden_rules,
            code_count,
            rule_count,
        })
    }

    /// The base table, shared with the next snapshot.
    pub fn base(&self) -> &Arc<Table> {
        &self.base
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
        let from_base = if self.hidden_rules.is_empty() {
            self.base.rule(url_key)
        } else {
            self.base
                .rule_where(url_key, |prefix_key| !self.hidden_rules.contains(prefix_key))
        };
        let from_overlay = if self.hidden_rules.is_empty() {
            None
        } else {
            self.overlay.rule(url_key)
        };
        match (from_base, from_overlay) {
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

    /// Folds the overlay into a new base: every live entry, as domain values.
    pub fn compact(&self) -> Result<Table, BuildError> {
        let mut builder = TableBuilder::with_capacity(self.code_count);
        for (code, hit) in self.base.codes() {
            if !self.hidden_codes.contains(code) {
                builder.insert_code(&launch_code(code, &hit))?;
            }
        }
        for (code, hit) in self.overlay.codes() {
            builder.insert_code(&launch_code(code, &hit))?;
        }
        for hit in self.base.rules() {
            if !hit.prefix_key.is_some_and(|k| self.hidden_rules.contains(k)) {
                builder.insert_rule(&rule(&hit))?;
            }
        }
        for hit in self.overlay.rules() {
            builder.insert_rule(&rule(&hit))?;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_file::{load, parse_line};
    use crate::url_key::normalize_absolute;

    const BASE: &str = r#"{"code":"keep","appid":"wx1234567890abcdef","path":"base/keep"}
{"code":"gone","appid":"wx1234567890abcdef","path":"base/gone"}
{"code":"swap","appid":"wx1234567890abcdef","path":"base/swap"}
{"prefix":"https://a.com/","appid":"wx1234567890abcdef","path":"base/root"}
{"prefix":"https://a.com/x/","appid":"wx1234567890abcdef","path":"base/x"}"#;

    fn write(overlay: &mut Overlay, line: &str) {
        let entry = parse_line(line).unwrap();
        overlay.insert(EntryKey::of(&entry), Some(entry));
    }

    fn path_of(hit: Option<Hit<'_>>) -> Option<String> {
        hit.map(|h| h.profile.key.path.to_string())
    }

    #[test]
    fn overlay_replaces_hides_and_adds() {
        let base = Arc::new(load(BASE.as_bytes()).unwrap());
        let mut overlay = Overlay::new();
        overlay.insert(EntryKey::Code("gone".into()), None);
        write(
            &mut overlay,
            r#"{"code":"swap","appid":"wx1234567890abcdef","path":"new/swap"}"#,
        );
        write(
            &mut overlay,
            r#"{"code":"fresh","appid":"wx1234567890abcdef","path":"new/fresh"}"#,
        );
        overlay.insert(EntryKey::Rule(normalize_absolute("https://a.com/x/").unwrap()), None);
        write(
            &mut overlay,
            r#"{"prefix":"https://a.com/x/y","appid":"wx1234567890abcdef","path":"new/xy"}"#,
        );
        let snap = Snapshot::with_overlay(base, &overlay).unwrap();

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

        let compacted = Snapshot::new(snap.compact().unwrap());
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
