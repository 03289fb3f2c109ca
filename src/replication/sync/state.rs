//! The follower's working state: the base table, the overlay of changes
//! since it was built, the host settings and files, and the position they
//! reflect. Applying a batch of changes yields the next [`Snapshot`].

use crate::model::domain::{Entry, EntryKey, HostSettings, VerificationFile};
use crate::model::table::{
    HostTable, MergeJob, Merged, Overlay, OverlayEntry, Snapshot, Table, TableBuilder, COMPACT_AT,
};
use crate::replication::store::{Change, Position};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything a snapshot is built from.
pub struct TableState {
    pub epoch: String,
    pub position: Position,
    base: Arc<Table>,
    overlay: Overlay,
    hosts: BTreeMap<String, HostSettings>,
    files: BTreeMap<String, VerificationFile>,
    host_table: Arc<HostTable>,
}

/// Collects a store snapshot into a [`TableState`].
pub struct StateBuilder {
    table: TableBuilder,
    hosts: BTreeMap<String, HostSettings>,
    files: BTreeMap<String, VerificationFile>,
    added: u64,
}

impl Default for StateBuilder {
    fn default() -> Self {
        StateBuilder::new()
    }
}

impl StateBuilder {
    pub fn new() -> StateBuilder {
        StateBuilder {
            table: TableBuilder::new(),
            hosts: BTreeMap::new(),
            files: BTreeMap::new(),
            added: 0,
        }
    }

    /// A builder for about `codes` codes, its code index sized up front.
    pub fn with_capacity(codes: usize) -> StateBuilder {
        StateBuilder {
            table: TableBuilder::with_capacity(codes),
            ..StateBuilder::new()
        }
    }

    /// How many entries were added.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Adds a borrowed entry: a table file's line as it is imported (a
    /// code or rule is copied into the table, never cloned first).
    pub fn add_ref(&mut self, entry: &Entry) {
        match entry {
            Entry::Host(_) | Entry::File(_) => self.add(entry.clone()),
            other => {
                self.added += 1;
                self.table.insert(other);
            }
        }
    }

    pub fn add(&mut self, entry: Entry) {
        self.added += 1;
        match entry {
            Entry::Host(h) => {
                self.hosts.insert(h.host.to_string(), h);
            }
            Entry::File(f) => {
                self.files
                    .insert(EntryKey::of(&Entry::File(f.clone())).as_str().to_string(), f);
            }
            other => self.table.insert(&other),
        }
    }

    pub fn finish(
        self,
        epoch: String,
        position: Position,
        sink: Option<Arc<dyn crate::model::table::CountSink>>,
    ) -> TableState {
        let host_table = Arc::new(HostTable::build(self.hosts.values(), self.files.values()));
        let base = self.table.build();
        if let Some(sink) = sink {
            base.attach_sink(sink);
        }
        TableState {
            epoch,
            position,
            base: Arc::new(base),
            overlay: Overlay::new(),
            hosts: self.hosts,
            files: self.files,
            host_table,
        }
    }
}

impl TableState {
    /// The snapshot scans should read now: the changes applied since the
    /// last one become the overlay's newest layer, so this costs time in
    /// proportion to them, not to the overlay (`model::table::overlay`).
    pub fn snapshot(&mut self) -> Snapshot {
        let layers = self.overlay.publish(&self.base);
        Snapshot::build(self.base.clone(), layers, self.host_table.clone(), self.position)
    }

    /// Applies the changes logged at `position` (the next one). The caller
    /// has checked the order; a `Resync` is the caller's to handle.
    pub fn apply(&mut self, position: Position, changes: impl IntoIterator<Item = Change>) {
        let mut hosts_changed = false;
        for change in changes {
            match change {
                Change::Put(Entry::Host(h)) => {
                    self.hosts.insert(h.host.to_string(), h);
                    hosts_changed = true;
                }
                Change::Put(Entry::File(f)) => {
                    let key = EntryKey::of(&Entry::File(f.clone())).as_str().to_string();
                    self.files.insert(key, f);
                    hosts_changed = true;
                }
                Change::Delete(EntryKey::Host(h)) => {
                    hosts_changed |= self.hosts.remove(&h).is_some();
                }
                Change::Delete(EntryKey::File(f)) => {
                    hosts_changed |= self.files.remove(f.as_str()).is_some();
                }
                Change::Put(entry) => {
                    self.overlay.insert(
                        &self.base,
                        entry.key(),
                        OverlayEntry {
                            position,
                            entry: Some(entry),
                        },
                    );
                }
                Change::Delete(key) => {
                    self.overlay
                        .insert(&self.base, key, OverlayEntry { position, entry: None });
                }
                Change::Resync | Change::Keys(_) | Change::Certificates(_) => {}
            }
        }
        if hosts_changed {
            self.host_table = Arc::new(HostTable::build(self.hosts.values(), self.files.values()));
        }
        self.position = position;
    }

    /// The snapshot a compaction builds a new base from, and its position;
    /// the changes so far are set aside, so that taking the new base in
    /// ([`TableState::install_base`]) costs no work in proportion to them.
    pub fn begin_compaction(&mut self) -> (Snapshot, Position) {
        let snapshot = self.snapshot();
        self.overlay.seal(self.position);
        (snapshot, self.position)
    }

    /// Whether the overlay has grown enough to fold into a new base.
    pub fn wants_compaction(&self) -> bool {
        self.overlay.len() >= COMPACT_AT
    }

    /// Installs `base`, built from the snapshot at `built_at`: overlay
    /// entries from then or before are in it and go, freed on the retire
    /// thread.
    pub fn install_base(&mut self, base: Table, built_at: Position) {
        self.base = Arc::new(base);
        let folded = self.overlay.rebase(&self.base, built_at);
        crate::replication::background::retire(Arc::new(folded));
    }

    /// The next merge of the overlay's layers for a background thread, if
    /// one is due and none runs (`model::table::overlay`).
    pub fn merge_job(&mut self) -> Option<MergeJob> {
        self.overlay.merge_job(&self.base)
    }

    /// Takes in a merge job's result (`None`: it failed); whether the next
    /// snapshot reads fewer layers and should be published.
    pub fn finish_merge(&mut self, merged: Option<Merged>) -> bool {
        self.overlay.finish_merge(merged)
    }

    pub fn overlay_len(&self) -> usize {
        self.overlay.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::domain::{Code, EntryPoint, LaunchCode, Rule, Schedule, Tags};
    use crate::model::url_key::normalize_absolute;
    use std::collections::BTreeMap;

    fn entry_point(page: u32) -> EntryPoint {
        EntryPoint {
            appid: "wx1234567890abcdef".parse().unwrap(),
            path: format!("p/{page}").parse().unwrap(),
            query: "".parse().unwrap(),
            env_version: "release".parse().unwrap(),
            fallback_url: None,
        }
    }

    fn code(name: &str, page: u32) -> Entry {
        Entry::Code(LaunchCode {
            code: name.parse::<Code>().unwrap(),
            entry: entry_point(page),
            schedule: Schedule::default(),
            tags: Tags::default(),
        })
    }

    /// Rules nest: the prefix of depth `d` is `https://a.com/` and `d` times `x/`.
    fn prefix(depth: u64) -> String {
        format!("https://a.com/{}", "x/".repeat(depth as usize))
    }

    fn rule(depth: u64, page: u32) -> Entry {
        Entry::Rule(Rule {
            prefix: prefix(depth).parse().unwrap(),
            entry: entry_point(page),
            schedule: Schedule::default(),
            tags: Tags::default(),
            count_by: None,
        })
    }

    fn page_of(snapshot: &Snapshot, name: &str) -> Option<String> {
        snapshot.code(name).map(|hit| hit.profile.key.path.to_string())
    }

    /// Random puts and deletes of codes and nested rules, published at
    /// random moments (so the overlay has layers of every size) with
    /// compactions and background merges that start at random moments and
    /// land some changes later (a few of each fail), against plain maps:
    /// the snapshot must answer exactly as the maps do.
    #[test]
    fn the_overlay_agrees_with_a_plain_map() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut builder = StateBuilder::new();
        let mut codes: BTreeMap<String, u32> = BTreeMap::new();
        let mut rules: BTreeMap<u64, u32> = BTreeMap::new();
        for i in 0..50 {
            builder.add(code(&format!("k{i}"), i));
            codes.insert(format!("k{i}"), i);
        }
        for depth in [0, 2, 4] {
            builder.add(rule(depth, 1000 + depth as u32));
            rules.insert(depth, 1000 + depth as u32);
        }
        let mut state = builder.finish("e".into(), 0, None);
        let mut pending_base: Option<(Table, Position)> = None;
        let mut pending_merge: Option<(MergeJob, Position)> = None;
        let (mut merges, mut compactions, mut most_layers) = (0, 0, 0);
        let deepest = normalize_absolute(&format!("{}y", prefix(8))).unwrap();
        for position in 1..=6000 {
            let page = (next() % 1000) as u32;
            let change = if next() % 10 == 0 {
                let depth = next() % 8;
                if next() % 3 == 0 {
                    rules.remove(&depth);
                    Change::Delete(EntryKey::Rule(normalize_absolute(&prefix(depth)).unwrap()))
                } else {
                    rules.insert(depth, page);
                    Change::Put(rule(depth, page))
                }
            } else {
                let name = format!("k{}", next() % 1000);
                if next() % 3 == 0 {
                    codes.remove(&name);
                    Change::Delete(EntryKey::Code(name))
                } else {
                    codes.insert(name.clone(), page);
                    Change::Put(code(&name, page))
                }
            };
            state.apply(position, [change]);
            // Most writes are published at once, some wait for the next.
            if next() % 4 != 0 {
                most_layers = most_layers.max(state.snapshot().overlay_layers());
            }
            // A compaction starts from one snapshot and lands a few changes
            // later, as the follower's do; some never land (a failed
            // build), and some were not begun as the follower begins them.
            if next() % 331 == 0 {
                if let Some((base, at)) = pending_base.take() {
                    if next() % 4 != 0 {
                        state.install_base(base, at);
                        compactions += 1;
                    }
                }
                pending_base = Some(if next() % 5 == 0 {
                    (state.snapshot().compact(), position)
                } else {
                    let (snapshot, at) = state.begin_compaction();
                    (snapshot.compact(), at)
                });
            }
            // A merge runs while some more changes land, or fails.
            if pending_merge.as_ref().is_some_and(|(_, lands)| *lands <= position) {
                let (job, _) = pending_merge.take().expect("a merge");
                let merged = (next() % 50 != 0).then(|| job.run());
                merges += usize::from(state.finish_merge(merged));
            }
            if pending_merge.is_none() {
                if let Some(job) = state.merge_job() {
                    pending_merge = Some((job, position + (next() % 40) as Position));
                }
            }
            if position % 50 == 0 {
                let snapshot = state.snapshot();
                for i in 0..1000 {
                    let name = format!("k{i}");
                    let want = codes.get(&name).map(|p| format!("p/{p}"));
                    assert_eq!(page_of(&snapshot, &name), want, "{name} at {position}");
                }
                let want = rules.iter().next_back().map(|(_, p)| format!("p/{p}"));
                let got = snapshot.rule(&deepest).map(|hit| hit.profile.key.path.to_string());
                assert_eq!(got, want, "the longest live rule at {position}");
                assert_eq!(snapshot.code_count(), codes.len(), "codes at {position}");
                assert_eq!(snapshot.rule_count(), rules.len(), "rules at {position}");
                assert_eq!(snapshot.rule_hits().count(), rules.len(), "rule hits at {position}");
                assert_eq!(snapshot.entries().count(), codes.len() + rules.len());
                assert_eq!(snapshot.position(), position);
            }
        }
        assert!(most_layers >= 2, "the overlay had {most_layers} layers at most");
        assert!(merges >= 10, "{merges} merges landed");
        assert!(compactions >= 5, "{compactions} compactions landed");
    }
}
