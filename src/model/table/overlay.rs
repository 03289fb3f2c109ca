//! The changes since the base table was built, and the small tables scans
//! read them from.
//!
//! Every write is published on its own, so what a publish costs is paid
//! once a write, on the follower's thread, beside a one-core node's scans.
//! Building one overlay table from every change since the base made a
//! publish cost time in proportion to the whole overlay (up to
//! [`COMPACT_AT`] entries, and more while a compaction runs). Instead the
//! overlay's tables come in *layers*: a publish makes a layer of the keys
//! changed since the last one, merged with the newest layers while the new
//! one holds at least one [`MERGE_RATIO`]th of the next one's keys (the
//! way a log-structured merge tree levels its runs). A layer is rebuilt
//! only when a layer at least a sixteenth of its size joins it, so a write
//! takes part in a few dozen entries' builds instead of thousands, and
//! there are only a few layers for a scan to ask (`benches/publish.rs`).
//!
//! A layer holds every key it changed, written or deleted: a key found
//! there is answered by the layer's table (which has no entry for a
//! deleted one) and hides the older layers' and the base's entries for it.

use super::{Table, TableBuilder};
use crate::model::change::Position;
use crate::model::domain::{Entry, EntryKey};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Overlay size at which the follower compacts it into a new base.
pub const COMPACT_AT: usize = 4096;

/// A new layer is merged with the newest one while it holds at least one
/// `MERGE_RATIO`th of that one's keys: layers grow sixteenfold from the
/// newest to the oldest, three of them for a full overlay.
pub const MERGE_RATIO: usize = 16;

/// One change in the overlay: the position that made it and the entry
/// (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayEntry {
    pub position: Position,
    pub entry: Option<Entry>,
}

pub(super) type KeySet = HashSet<Box<str>, ahash::RandomState>;

/// The entries of some consecutive changes as a table, and every key they
/// changed.
#[derive(Debug, Default)]
pub(super) struct Layer {
    pub(super) table: Table,
    /// Every code changed (written or deleted): a lookup of one of them
    /// ends here.
    pub(super) codes: KeySet,
    /// Every rule changed, by normalized prefix.
    pub(super) rules: KeySet,
}

impl Layer {
    fn len(&self) -> usize {
        self.codes.len() + self.rules.len()
    }

    fn keys(&self) -> impl Iterator<Item = EntryKey> + '_ {
        let codes = self.codes.iter().map(|code| EntryKey::Code(code.to_string()));
        codes.chain(self.rules.iter().map(|rule| EntryKey::Rule(rule.to_string())))
    }
}

/// What a snapshot reads of the overlay: its layers, oldest first, and by
/// how much it changes the base's counts of live codes and rules.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub(super) layers: Vec<Arc<Layer>>,
    pub(super) codes: isize,
    pub(super) rules: isize,
}

impl Layers {
    /// How many layers a lookup may ask.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// Changes of codes and rules since the base was built: the latest by key
/// (what a compaction keeps), and the layers published so far.
#[derive(Debug, Default)]
pub struct Overlay {
    entries: BTreeMap<EntryKey, OverlayEntry>,
    published: Layers,
    /// Keys changed since the last publish (a key may repeat).
    unpublished: Vec<EntryKey>,
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// Records `change` of `key` over `base` (the base the overlay is on).
    /// Only codes and rules are scan-table entries; other keys are ignored.
    pub fn insert(&mut self, base: &Table, key: EntryKey, change: OverlayEntry) {
        let live_after = isize::from(change.entry.is_some());
        let live_before = match self.entries.get(&key) {
            Some(old) => isize::from(old.entry.is_some()),
            None => isize::from(in_base(base, &key)),
        };
        match key {
            EntryKey::Code(_) => self.published.codes += live_after - live_before,
            EntryKey::Rule(_) => self.published.rules += live_after - live_before,
            EntryKey::Host(_) | EntryKey::File(_) => return,
        }
        self.unpublished.push(key.clone());
        self.entries.insert(key, change);
    }

    /// How many keys changed since the base was built.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The layers a snapshot should read now: the keys changed since the
    /// last publish become a layer, merged with the newest layers while it
    /// is at least one [`MERGE_RATIO`]th of the next one's size. Costs time
    /// in proportion to the layer it builds, not to the overlay.
    pub fn publish(&mut self, base: &Table) -> Layers {
        if !self.unpublished.is_empty() {
            let mut keys = std::mem::take(&mut self.unpublished);
            let layers = &mut self.published.layers;
            let mut size = keys.len();
            let mut keep = layers.len();
            while keep > 0 && size * MERGE_RATIO >= layers[keep - 1].len() {
                keep -= 1;
                size += layers[keep].len();
            }
            for merged in layers.drain(keep..) {
                keys.extend(merged.keys());
            }
            keys.sort_unstable();
            keys.dedup();
            let layer = self.layer(base, &keys);
            self.published.layers.push(Arc::new(layer));
        }
        self.published.clone()
    }

    /// Keeps only the changes made after `built_at`, over `base`, a new
    /// base built from a snapshot at `built_at` (so it holds the rest).
    pub fn rebase(&mut self, base: &Table, built_at: Position) {
        self.entries.retain(|_, change| change.position > built_at);
        let (mut codes, mut rules) = (0, 0);
        for (key, change) in &self.entries {
            let delta = isize::from(change.entry.is_some()) - isize::from(in_base(base, key));
            match key {
                EntryKey::Code(_) => codes += delta,
                _ => rules += delta,
            }
        }
        self.published = Layers {
            layers: Vec::new(),
            codes,
            rules,
        };
        self.unpublished = self.entries.keys().cloned().collect();
    }

    /// A layer of the latest changes of `keys` (sorted, each once).
    fn layer(&self, base: &Table, keys: &[EntryKey]) -> Layer {
        let mut builder = TableBuilder::new();
        let mut layer = Layer::default();
        for key in keys {
            let Some(change) = self.entries.get(key) else {
                continue;
            };
            match key {
                EntryKey::Code(code) => layer.codes.insert(code.as_str().into()),
                EntryKey::Rule(prefix_key) => layer.rules.insert(prefix_key.as_str().into()),
                EntryKey::Host(_) | EntryKey::File(_) => continue,
            };
            if let Some(entry) = &change.entry {
                builder.insert(entry);
            }
        }
        layer.table = builder.build();
        if let Some(sink) = base.sink() {
            layer.table.attach_sink(sink);
        }
        layer
    }
}

/// Whether `base` holds an entry under `key`.
fn in_base(base: &Table, key: &EntryKey) -> bool {
    match key {
        EntryKey::Code(code) => base.code(code).is_some(),
        EntryKey::Rule(prefix_key) => base
            .rule(prefix_key)
            .is_some_and(|hit| hit.prefix_key == Some(prefix_key.as_str())),
        EntryKey::Host(_) | EntryKey::File(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_key(i: usize) -> EntryKey {
        EntryKey::Code(format!("c{i}"))
    }

    /// Deletions only: the layers' sizes are what is checked here.
    fn delete(overlay: &mut Overlay, key: EntryKey) {
        overlay.insert(
            &Table::default(),
            key,
            OverlayEntry {
                position: 1,
                entry: None,
            },
        );
    }

    #[test]
    fn single_writes_keep_few_layers_that_grow_from_newest_to_oldest() {
        let mut overlay = Overlay::new();
        let mut built = 0usize;
        for i in 0..COMPACT_AT {
            delete(&mut overlay, code_key(i));
            let before: Vec<*const Layer> = overlay.published.layers.iter().map(Arc::as_ptr).collect();
            let layers = overlay.publish(&Table::default());
            built += layers
                .layers
                .iter()
                .filter(|layer| !before.contains(&Arc::as_ptr(layer)))
                .map(|layer| layer.len())
                .sum::<usize>();
            let sizes: Vec<usize> = layers.layers.iter().map(|layer| layer.len()).collect();
            assert_eq!(sizes.iter().sum::<usize>(), i + 1, "every key in one layer");
            assert!(sizes.windows(2).all(|w| w[1] * MERGE_RATIO < w[0]), "{sizes:?}");
            assert!(layers.len() <= 4, "{sizes:?}");
        }
        // Rebuilding one table of every change at every publish would build
        // about COMPACT_AT² / 2 entries.
        assert!(built < COMPACT_AT * 64, "{built} entries built");
    }

    #[test]
    fn a_rebase_keeps_only_later_changes_in_one_layer() {
        let mut overlay = Overlay::new();
        for i in 0..40 {
            overlay.insert(
                &Table::default(),
                code_key(i),
                OverlayEntry {
                    position: i as Position,
                    entry: None,
                },
            );
            overlay.publish(&Table::default());
        }
        overlay.rebase(&Table::default(), 29);
        assert_eq!(overlay.len(), 10);
        let layers = overlay.publish(&Table::default());
        assert_eq!(layers.len(), 1);
        assert_eq!(layers.layers[0].len(), 10);
    }
}
