//! The changes since the base table was built, and the small tables scans
//! read them from.
//!
//! Every write is published on its own, so what a publish costs is paid
//! once a write, on the follower's thread, beside a one-core node's scans.
//! Building one overlay table from every change since the base made a
//! publish cost time in proportion to the whole overlay (up to
//! [`COMPACT_AT`] entries, and more while a compaction runs). Instead the
//! overlay's tables come in *layers*: a publish makes a layer of the keys
//! changed since the last one, and layers are merged while a newer one
//! holds at least one [`MERGE_RATIO`]th of the next one's keys (the way a
//! log-structured merge tree levels its runs). A layer is rebuilt only
//! when a layer at least a sixteenth of its size joins it, so a write
//! takes part in a few dozen entries' builds instead of thousands, and
//! there are only a few layers for a scan to ask (`benches/publish.rs`).
//!
//! A publish merges only while the layer it builds stays within
//! [`INLINE_MERGE`] keys (about a tenth of a millisecond of work). Larger
//! merges, up to the whole overlay, took the follower's thread for one to
//! three milliseconds at a time, beside the scans; they are a
//! [`MergeJob`] instead, which the follower runs on an idle-class thread
//! (`replication::background`) and hands back to
//! [`Overlay::finish_merge`], while scans read one or two more layers
//! meanwhile. A job only reads immutable layers: it takes every key's
//! newest change among the layers it merges, from their tables. One job
//! runs at a time, and publishes do not merge the layers it is merging.
//!
//! A layer holds every key it changed, written or deleted, with the log
//! position of that change: a key found there is answered by the layer's
//! table (which has no entry for a deleted one) and hides the older
//! layers' and the base's entries for it. A new base built by a
//! compaction leaves the layers as they are (they answer the same over
//! it); the next job merges all of them and leaves out the changes the
//! base now holds.

use super::{Table, TableBuilder};
use crate::model::change::Position;
use crate::model::domain::{Entry, EntryKey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Overlay size at which the follower compacts it into a new base.
pub const COMPACT_AT: usize = 4096;

/// A new layer is merged with the newest one while it holds at least one
/// `MERGE_RATIO`th of that one's keys: layers grow sixteenfold from the
/// newest to the oldest, three of them for a full overlay.
pub const MERGE_RATIO: usize = 16;

/// The most keys a publish builds a layer of on the follower's thread;
/// larger merges are a [`MergeJob`] for a background thread.
pub const INLINE_MERGE: usize = 256;

/// With this many layers a publish merges whatever their size (while a
/// job cannot finish, or after one failed), so lookups stay short.
const MAX_LAYERS: usize = 8;

/// One change in the overlay: the position that made it and the entry
/// (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayEntry {
    pub position: Position,
    pub entry: Option<Entry>,
}

/// Keys a layer changed, with the position of the change it holds.
pub(super) type KeyMap = HashMap<Box<str>, Position, ahash::RandomState>;

/// The entries of some consecutive changes as a table, and every key they
/// changed.
#[derive(Debug, Default)]
pub(super) struct Layer {
    pub(super) table: Table,
    /// Every code changed (written or deleted): a lookup of one of them
    /// ends here.
    pub(super) codes: KeyMap,
    /// Every rule changed, by normalized prefix.
    pub(super) rules: KeyMap,
}

impl Layer {
    fn len(&self) -> usize {
        self.codes.len() + self.rules.len()
    }
}

/// Builds a layer from changes given newest first: of a key's changes,
/// the first one given is kept.
#[derive(Default)]
struct LayerBuilder {
    table: TableBuilder,
    codes: KeyMap,
    rules: KeyMap,
}

impl LayerBuilder {
    /// The change of `key` at `position` (`entry` `None`: deleted), unless
    /// a newer change of it was given.
    fn change(&mut self, key: &EntryKey, position: Position, entry: Option<&Entry>) {
        let keys = match key {
            EntryKey::Code(_) => &mut self.codes,
            EntryKey::Rule(_) => &mut self.rules,
            EntryKey::Host(_) | EntryKey::File(_) => return,
        };
        if keys.contains_key(key.as_str()) {
            return;
        }
        keys.insert(key.as_str().into(), position);
        if let Some(entry) = entry {
            self.table.insert(entry);
        }
    }

    /// Every change `layer` holds of a key no newer change was given of,
    /// leaving out those at or before `drop_through` (a base holds them).
    fn layer(&mut self, layer: &Layer, drop_through: Option<Position>) {
        let kept = |position: Position| drop_through.is_none_or(|through| position > through);
        for (code, &position) in &layer.codes {
            if !kept(position) || self.codes.contains_key(code) {
                continue;
            }
            self.codes.insert(code.clone(), position);
            if let Some(hit) = layer.table.code(code) {
                self.table.insert_code_hit(code, &hit);
            }
        }
        for (prefix_key, &position) in &layer.rules {
            if !kept(position) || self.rules.contains_key(prefix_key) {
                continue;
            }
            self.rules.insert(prefix_key.clone(), position);
            if let Some(hit) = exact_rule(&layer.table, prefix_key) {
                self.table.insert_rule_hit(&hit);
            }
        }
    }

    fn build(self, sink: Option<Arc<dyn super::CountSink>>) -> Layer {
        let table = self.table.build();
        if let Some(sink) = sink {
            table.attach_sink(sink);
        }
        Layer {
            table,
            codes: self.codes,
            rules: self.rules,
        }
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

/// A merge of consecutive layers into one, for a background thread: it
/// reads only the layers, which are immutable.
pub struct MergeJob {
    /// The layers merged, oldest first.
    run: Vec<Arc<Layer>>,
    /// Changes at or before this position are left out (the run starts at
    /// the oldest layer, and the base holds them).
    drop_through: Option<Position>,
    sink: Option<Arc<dyn super::CountSink>>,
}

impl MergeJob {
    /// How many keys the layers merged hold (a key may count twice).
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.run.iter().map(|layer| layer.len()).sum()
    }

    /// Builds the merged layer: time in proportion to the layers merged.
    pub fn run(self) -> Merged {
        let mut builder = LayerBuilder::default();
        for layer in self.run.iter().rev() {
            builder.layer(layer, self.drop_through);
        }
        Merged {
            layer: builder.build(self.sink),
            run: self.run,
        }
    }
}

/// A job's merged layer and the layers it replaces.
pub struct Merged {
    run: Vec<Arc<Layer>>,
    layer: Layer,
}

/// The latest change of each key, by key.
pub type Changes = BTreeMap<EntryKey, OverlayEntry>;

/// Changes of codes and rules since the base was built: the latest by key
/// (what a compaction keeps), and the layers published so far.
#[derive(Debug, Default)]
pub struct Overlay {
    /// The latest change of each key since the base was built, or, while
    /// a compaction runs, since it began.
    entries: Changes,
    /// While a compaction runs: the changes made before it began.
    sealed: Option<Sealed>,
    published: Layers,
    /// Keys changed since the last publish (a key may repeat).
    unpublished: Vec<EntryKey>,
    /// The position the base was built at: changes up to it are in it.
    base_at: Position,
    /// The newest of the layers a job is merging, while one runs.
    merging: Option<Arc<Layer>>,
    /// The layers hold changes the base holds too (after a rebase).
    stale: bool,
    /// A job failed: publishes merge every size themselves until the next
    /// rebase.
    inline_only: bool,
}

/// The changes a compaction's new base will hold, set aside when it began,
/// so that taking the base in costs no work in proportion to them.
#[derive(Debug)]
struct Sealed {
    /// The position the compaction's snapshot was taken at.
    at: Position,
    entries: Changes,
    /// By how much the changes since changed the counts of live codes and
    /// rules: the new base's counts plus these are the snapshot's.
    codes: isize,
    rules: isize,
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// The latest change of `key`.
    fn latest(&self, key: &EntryKey) -> Option<&OverlayEntry> {
        let sealed = || self.sealed.as_ref().and_then(|sealed| sealed.entries.get(key));
        self.entries.get(key).or_else(sealed)
    }

    /// Records `change` of `key` over `base` (the base the overlay is on).
    /// Only codes and rules are scan-table entries; other keys are ignored.
    pub fn insert(&mut self, base: &Table, key: EntryKey, change: OverlayEntry) {
        let live_after = isize::from(change.entry.is_some());
        let live_before = match self.latest(&key) {
            Some(old) => isize::from(old.entry.is_some()),
            None => isize::from(in_base(base, &key)),
        };
        let delta = live_after - live_before;
        let (live, since_seal) = match key {
            EntryKey::Code(_) => (&mut self.published.codes, self.sealed.as_mut().map(|s| &mut s.codes)),
            EntryKey::Rule(_) => (&mut self.published.rules, self.sealed.as_mut().map(|s| &mut s.rules)),
            EntryKey::Host(_) | EntryKey::File(_) => return,
        };
        *live += delta;
        if let Some(since_seal) = since_seal {
            *since_seal += delta;
        }
        self.unpublished.push(key.clone());
        self.entries.insert(key, change);
    }

    /// How many keys changed since the base was built (while a compaction
    /// runs, a key changed both before and after it began counts twice).
    pub fn len(&self) -> usize {
        self.entries.len() + self.sealed.as_ref().map_or(0, |sealed| sealed.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The layers a snapshot should read now: the keys changed since the
    /// last publish become a layer, merged with the newest layers while it
    /// is at least one [`MERGE_RATIO`]th of the next one's size and the
    /// result stays within [`INLINE_MERGE`] keys. Costs time in proportion
    /// to the layer it builds, not to the overlay.
    pub fn publish(&mut self, base: &Table) -> Layers {
        if !self.unpublished.is_empty() {
            let mut keys = std::mem::take(&mut self.unpublished);
            keys.sort_unstable();
            keys.dedup();
            let layers = &self.published.layers;
            let floor = self.merge_floor();
            let any_size = self.inline_only || layers.len() >= MAX_LAYERS;
            let mut size = keys.len();
            let mut keep = layers.len();
            while keep > floor
                && size * MERGE_RATIO >= layers[keep - 1].len()
                && (any_size || size + layers[keep - 1].len() <= INLINE_MERGE)
            {
                keep -= 1;
                size += layers[keep].len();
            }
            let mut builder = LayerBuilder::default();
            for key in &keys {
                if let Some(change) = self.latest(key) {
                    builder.change(key, change.position, change.entry.as_ref());
                }
            }
            for merged in layers[keep..].iter().rev() {
                builder.layer(merged, None);
            }
            let layer = builder.build(base.sink());
            self.published.layers.truncate(keep);
            self.published.layers.push(Arc::new(layer));
        }
        self.published.clone()
    }

    /// The layers below this index are a job's to merge.
    fn merge_floor(&self) -> usize {
        let Some(newest) = &self.merging else {
            return 0;
        };
        let layers = &self.published.layers;
        layers
            .iter()
            .position(|layer| Arc::ptr_eq(layer, newest))
            .map_or(0, |at| at + 1)
    }

    /// The next merge for a background thread, if one is due and none
    /// runs: all layers after a rebase (leaving out what the base holds),
    /// else the newest layers while each is at least one
    /// [`MERGE_RATIO`]th of the next one's size.
    pub fn merge_job(&mut self, base: &Table) -> Option<MergeJob> {
        if self.merging.is_some() || self.inline_only {
            return None;
        }
        let layers = &self.published.layers;
        let start = if self.stale && !layers.is_empty() {
            0
        } else {
            let newest = layers.len().checked_sub(1)?;
            let mut size = layers[newest].len();
            let mut keep = newest;
            while keep > 0 && size * MERGE_RATIO >= layers[keep - 1].len() {
                keep -= 1;
                size += layers[keep].len();
            }
            if keep == newest {
                return None;
            }
            keep
        };
        let run = layers[start..].to_vec();
        if start == 0 {
            self.stale = false;
        }
        self.merging = run.last().cloned();
        Some(MergeJob {
            run,
            drop_through: (start == 0).then_some(self.base_at),
            sink: base.sink(),
        })
    }

    /// Takes in the job's merged layer (`None`: the job failed, and
    /// publishes merge every size from now on) in place of the layers it
    /// merged. Whether the layers changed (a snapshot should be published).
    pub fn finish_merge(&mut self, merged: Option<Merged>) -> bool {
        self.merging = None;
        let Some(Merged { run, layer }) = merged else {
            self.inline_only = true;
            return false;
        };
        let layers = &mut self.published.layers;
        let Some(start) = layers.iter().position(|layer| Arc::ptr_eq(layer, &run[0])) else {
            return false;
        };
        let end = start + run.len();
        if end > layers.len() || !layers[start..end].iter().zip(&run).all(|(a, b)| Arc::ptr_eq(a, b)) {
            return false;
        }
        layers.splice(start..end, [Arc::new(layer)]);
        true
    }

    /// Sets the changes so far aside for a compaction that builds a new
    /// base from a snapshot at `at` (the latest change's position); later
    /// changes are kept apart, with how they change the counts, so that
    /// [`Overlay::rebase`] onto that base has nothing to sort out.
    pub fn seal(&mut self, at: Position) {
        let mut entries = std::mem::take(&mut self.entries);
        if let Some(earlier) = self.sealed.take() {
            // A compaction that never landed: its changes are older.
            let mut older = earlier.entries;
            older.append(&mut entries);
            entries = older;
        }
        self.sealed = Some(Sealed {
            at,
            entries,
            codes: 0,
            rules: 0,
        });
    }

    /// Keeps only the changes made after `built_at` (and those not yet
    /// published), over `base`, a new base built from a snapshot at
    /// `built_at` (so it holds the rest). The layers stay, answering the
    /// same over the new base, until the next job merges them. Returns the
    /// changes let go, for the caller to free off its thread.
    ///
    /// After [`Overlay::seal`] at `built_at` this costs nothing in
    /// proportion to the changes: they are already apart. Otherwise every
    /// change is sorted out and each kept one looked up in the new base (a
    /// millisecond or more for a few thousand, which is why the follower
    /// seals).
    #[must_use = "the changes let go are the caller's to free"]
    pub fn rebase(&mut self, base: &Table, built_at: Position) -> Changes {
        self.base_at = built_at;
        self.stale = !self.published.layers.is_empty();
        self.inline_only = false;
        match self.sealed.take() {
            Some(sealed) if sealed.at == built_at => {
                let mut folded = sealed.entries;
                // Changes not yet published stay until they are.
                for key in &self.unpublished {
                    if !self.entries.contains_key(key) {
                        if let Some(change) = folded.remove(key) {
                            self.entries.insert(key.clone(), change);
                        }
                    }
                }
                self.published.codes = sealed.codes;
                self.published.rules = sealed.rules;
                folded
            }
            earlier => {
                if let Some(mut sealed) = earlier {
                    sealed.entries.append(&mut self.entries);
                    self.entries = sealed.entries;
                }
                self.rebase_unsealed(base, built_at)
            }
        }
    }

    fn rebase_unsealed(&mut self, base: &Table, built_at: Position) -> Changes {
        let unpublished: HashSet<&EntryKey> = self.unpublished.iter().collect();
        let (kept, folded): (Changes, Changes) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|(key, change)| change.position > built_at || unpublished.contains(key));
        self.entries = kept;
        let (mut codes, mut rules) = (0, 0);
        for (key, change) in &self.entries {
            let delta = isize::from(change.entry.is_some()) - isize::from(in_base(base, key));
            match key {
                EntryKey::Code(_) => codes += delta,
                _ => rules += delta,
            }
        }
        self.published.codes = codes;
        self.published.rules = rules;
        folded
    }
}

/// The rule of `table` whose normalized prefix is `prefix_key`.
fn exact_rule<'t>(table: &'t Table, prefix_key: &str) -> Option<super::Hit<'t>> {
    table.rule(prefix_key).filter(|hit| hit.prefix_key == Some(prefix_key))
}

/// Whether `base` holds an entry under `key`.
fn in_base(base: &Table, key: &EntryKey) -> bool {
    match key {
        EntryKey::Code(code) => base.code(code).is_some(),
        EntryKey::Rule(prefix_key) => exact_rule(base, prefix_key).is_some(),
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

    fn sizes(layers: &Layers) -> Vec<usize> {
        layers.layers.iter().map(|layer| layer.len()).collect()
    }

    #[test]
    fn single_writes_keep_few_layers_that_grow_from_newest_to_oldest() {
        let mut overlay = Overlay::new();
        let (mut inline, mut background) = (0usize, 0usize);
        let mut jobs = 0;
        for i in 0..COMPACT_AT {
            delete(&mut overlay, code_key(i));
            let layers = overlay.publish(&Table::default());
            // What the publish built: its newest layer.
            let newest = layers.layers.last().map_or(0, |layer| layer.len());
            assert!(newest <= INLINE_MERGE, "a publish built {newest} keys");
            inline += newest;
            if let Some(job) = overlay.merge_job(&Table::default()) {
                jobs += 1;
                background += job.keys();
                assert!(overlay.finish_merge(Some(job.run())));
            }
            let sizes = sizes(&overlay.publish(&Table::default()));
            assert_eq!(sizes.iter().sum::<usize>(), i + 1, "every key in one layer");
            assert!(sizes.windows(2).all(|w| w[1] * MERGE_RATIO < w[0]), "{sizes:?}");
            assert!(sizes.len() <= 4, "{sizes:?}");
        }
        // Rebuilding one table of every change at every publish would build
        // about COMPACT_AT² / 2 entries.
        assert!(
            inline + background < COMPACT_AT * 64,
            "{inline} + {background} entries built"
        );
        assert!(inline < COMPACT_AT * 16, "{inline} entries built by publishes");
        assert!(jobs < COMPACT_AT / 16, "{jobs} merge jobs");
    }

    #[test]
    fn publishes_leave_the_layers_a_job_merges_alone() {
        let base = Table::default();
        let mut overlay = Overlay::new();
        let mut written = 0;
        // Jobs finish at once for a while, then one is held back.
        let job = loop {
            delete(&mut overlay, code_key(written));
            written += 1;
            overlay.publish(&base);
            if let Some(job) = overlay.merge_job(&base) {
                if written < 1000 {
                    overlay.finish_merge(Some(job.run()));
                } else {
                    break job;
                }
            }
            assert!(written < 10_000, "a job came due");
        };
        let merged: Vec<*const Layer> = job.run.iter().map(Arc::as_ptr).collect();
        for _ in 0..300 {
            delete(&mut overlay, code_key(written));
            written += 1;
            let layers = overlay.publish(&base);
            let now: Vec<*const Layer> = layers.layers.iter().map(Arc::as_ptr).collect();
            let at = now
                .iter()
                .position(|layer| *layer == merged[0])
                .expect("the job's layers stay");
            assert_eq!(
                &now[at..at + merged.len()],
                &merged[..],
                "the job's layers stay as they were"
            );
            assert!(overlay.merge_job(&base).is_none(), "one job at a time");
        }
        let before = overlay.publish(&base).len();
        assert!(overlay.finish_merge(Some(job.run())));
        let after = overlay.publish(&base);
        assert_eq!(sizes(&after).iter().sum::<usize>(), written, "no key lost or doubled");
        assert_eq!(after.len(), before - merged.len() + 1, "the job's layers became one");
    }

    #[test]
    fn a_failed_job_makes_publishes_merge_every_size() {
        let base = Table::default();
        let mut overlay = Overlay::new();
        let mut failed = false;
        for i in 0..2000 {
            delete(&mut overlay, code_key(i));
            overlay.publish(&base);
            if !failed && overlay.merge_job(&base).is_some() {
                assert!(!overlay.finish_merge(None));
                failed = true;
            }
        }
        assert!(failed);
        assert!(overlay.merge_job(&base).is_none(), "no more jobs");
        let sizes = sizes(&overlay.publish(&base));
        assert!(sizes.windows(2).all(|w| w[1] * MERGE_RATIO < w[0]), "{sizes:?}");
    }

    #[test]
    fn a_rebase_keeps_the_layers_until_a_job_leaves_out_what_the_base_holds() {
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
        let folded = overlay.rebase(&Table::default(), 29);
        assert_eq!(folded.len(), 30);
        assert_eq!(overlay.len(), 10);
        let layers = overlay.publish(&Table::default());
        assert_eq!(sizes(&layers).iter().sum::<usize>(), 40, "the layers answer as before");
        let job = overlay.merge_job(&Table::default()).expect("a job after a rebase");
        assert!(overlay.finish_merge(Some(job.run())));
        let layers = overlay.publish(&Table::default());
        assert_eq!(sizes(&layers), [10]);
        assert!(overlay.merge_job(&Table::default()).is_none());
    }
}
