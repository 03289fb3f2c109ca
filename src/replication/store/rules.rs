//! The store's rules, once for both backends: what a put, a change, a
//! bulk change and an import do with what they find, what goes into the
//! change log, and how an import runs. A backend reads and writes rows with
//! its own driver and asks these functions what to do; neither spells a
//! rule of its own.

use super::{Change, ImportLine, ImportSummary, Put, StoreError, WriteMode, MAX_LOGGED_CHANGES};
use crate::model::domain::{Entry, EntryKind, FieldError, Line, Stored};
use crate::model::table_file::Item;
use std::collections::HashSet;

/// What a put does, given the stored entry with its key (if any): the
/// created time to write and whether it creates (`201`). An insert of an
/// existing key is a conflict.
pub(crate) fn put(existing: Option<&Stored<Entry>>, mode: WriteMode, now: i64) -> Result<(i64, bool), StoreError> {
    match existing {
        Some(_) if mode == WriteMode::Insert => Err(StoreError::Conflict),
        Some(stored) => Ok((stored.created_at, false)),
        None => Ok((now, true)),
    }
}

/// The answer of a put that wrote `entry`.
pub(crate) fn put_answer(entry: Entry, created_at: i64, created: bool, now: i64) -> Put {
    Put {
        stored: Stored {
            entry,
            created_at,
            updated_at: now,
        },
        created,
    }
}

/// Applies a change to a stored entry: the new entry and its kept created
/// time. A change may not rename what it changes.
pub(crate) fn modified(
    current: Stored<Entry>,
    change: impl FnOnce(Stored<Entry>) -> Result<Entry, FieldError>,
) -> Result<(Entry, i64), StoreError> {
    let (key, created_at) = (current.entry.key(), current.created_at);
    let entry = change(current).map_err(StoreError::Rejected)?;
    if entry.key() != key {
        return Err(StoreError::Failed("a change may not rename an entry".into()));
    }
    Ok((entry, created_at))
}

/// The changes of one write, as they go into the log: a write that changed
/// nothing is `NotFound`; more than [`MAX_LOGGED_CHANGES`] are one resync.
pub(crate) fn to_log(changes: Vec<Change>) -> Result<Vec<Change>, StoreError> {
    if changes.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(super::log_form(changes))
}

/// The changes a write collects for the log, never more than one past the
/// cap (past it, [`to_log`] makes them a resync anyway).
#[derive(Debug, Default)]
pub(crate) struct Changes(Vec<Change>);

impl Changes {
    pub fn push(&mut self, change: Change) {
        if self.0.len() <= MAX_LOGGED_CHANGES {
            self.0.push(change);
        }
    }

    pub fn into_inner(self) -> Vec<Change> {
        self.0
    }
}

/// How many times a batch of generated codes is drawn again for the codes
/// that collided.
const GENERATE_ROUNDS: usize = 16;

/// An import, run the same way on both backends: the lines come in
/// batches; each batch's entries are written kind by kind
/// ([`ImportPlan::batch`], then [`ImportPlan::written`] with the keys the
/// backend wrote); lines asking for a generated code are held back and
/// given codes after every explicit line, so a generated code never takes
/// a name a later line asks for ([`ImportPlan::next_generated`]).
#[derive(Debug)]
pub(crate) struct ImportPlan {
    mode: WriteMode,
    summary: ImportSummary,
    changes: Changes,
    conflicts: Vec<usize>,
    generate: Vec<(usize, Line)>,
    rounds: usize,
}

/// Which of `entries` a backend that answers with the keys it wrote
/// (PostgreSQL's `RETURNING`) wrote, as [`ImportPlan::written`] takes them.
pub(crate) fn written_flags(entries: &[Entry], keys: &HashSet<String>) -> Vec<bool> {
    entries.iter().map(|e| keys.contains(e.key().as_str())).collect()
}

/// The entries of one kind in a batch, with their line numbers.
#[derive(Debug)]
pub(crate) struct KindBatch {
    pub kind: EntryKind,
    pub lines: Vec<usize>,
    pub entries: Vec<Entry>,
}

impl ImportPlan {
    pub fn new(mode: WriteMode) -> ImportPlan {
        ImportPlan {
            mode,
            summary: ImportSummary::default(),
            changes: Changes::default(),
            conflicts: Vec::new(),
            generate: Vec::new(),
            rounds: 0,
        }
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Takes a batch of lines: the entries to write, by kind (in a fixed
    /// kind order); lines asking for a generated code wait.
    pub fn batch(&mut self, lines: Vec<ImportLine>) -> Vec<KindBatch> {
        let mut kinds: Vec<KindBatch> = [EntryKind::Code, EntryKind::Rule, EntryKind::Host, EntryKind::File]
            .into_iter()
            .map(|kind| KindBatch {
                kind,
                lines: Vec::new(),
                entries: Vec::new(),
            })
            .collect();
        for ImportLine { line, item } in lines {
            self.summary.lines = self.summary.lines.max(line);
            match item {
                Item::Entry(entry) => {
                    let batch = kinds.iter_mut().find(|k| k.kind == entry.kind()).expect("every kind");
                    batch.lines.push(line);
                    batch.entries.push(entry);
                }
                Item::Generate(fields) => self.generate.push((line, *fields)),
            }
        }
        kinds.retain(|k| !k.entries.is_empty());
        kinds
    }

    /// The backend wrote the entries of `batch` whose flag in `written` is
    /// set (in insert mode the keys that existed are not written:
    /// conflicts).
    pub fn written(&mut self, batch: KindBatch, written: &[bool]) {
        // A flag missing (a backend's bug) reads as not written: a conflict,
        // which fails the import rather than dropping the line silently.
        for (i, (line, entry)) in batch.lines.into_iter().zip(batch.entries).enumerate() {
            if written.get(i).copied().unwrap_or(false) {
                self.record(entry);
            } else {
                self.conflicts.push(line);
            }
        }
    }

    fn record(&mut self, entry: Entry) {
        match entry.kind() {
            EntryKind::Code => self.summary.codes += 1,
            EntryKind::Rule => self.summary.rules += 1,
            EntryKind::Host => self.summary.hosts += 1,
            EntryKind::File => self.summary.files += 1,
        }
        self.changes.push(Change::Put(entry));
    }

    /// Fails with every conflicting line once the explicit lines are
    /// written (an insert-mode import is all or nothing).
    pub fn check_conflicts(&mut self) -> Result<(), StoreError> {
        if self.conflicts.is_empty() {
            return Ok(());
        }
        let mut lines = std::mem::take(&mut self.conflicts);
        lines.sort_unstable();
        Err(StoreError::Conflicts(lines))
    }

    /// The next codes to insert for lines asking for a generated one, each
    /// freshly drawn; `None` when every such line has its code. Fails when
    /// codes kept colliding.
    pub fn next_generated(&mut self) -> Result<Option<KindBatch>, StoreError> {
        if self.generate.is_empty() {
            return Ok(None);
        }
        if self.rounds == GENERATE_ROUNDS {
            return Err(StoreError::Failed("could not find free generated codes".into()));
        }
        self.rounds += 1;
        let mut batch = KindBatch {
            kind: EntryKind::Code,
            lines: Vec::with_capacity(self.generate.len()),
            entries: Vec::with_capacity(self.generate.len()),
        };
        for (line, fields) in &mut self.generate {
            fields.code = Some(crate::model::domain::generate_code().to_string());
            let entry = fields
                .validate()
                .map_err(|e| StoreError::Failed(format!("line {line}: {e}")))?;
            batch.lines.push(*line);
            batch.entries.push(entry);
        }
        Ok(Some(batch))
    }

    /// The backend inserted the generated codes in `written`; the others
    /// collided and are drawn again.
    pub fn generated(&mut self, batch: KindBatch, written: &[bool]) {
        let mut retry = Vec::new();
        let waiting: Vec<(usize, Line)> = std::mem::take(&mut self.generate);
        for (i, ((line, entry), (_, fields))) in batch.lines.into_iter().zip(batch.entries).zip(waiting).enumerate() {
            if written.get(i).copied().unwrap_or(false) {
                self.summary.generated.push((line, entry.key().as_str().to_string()));
                self.record(entry);
            } else {
                retry.push((line, fields));
            }
        }
        self.generate = retry;
    }

    /// What the import did, and its changes for the log.
    pub fn finish(mut self) -> (ImportSummary, Vec<Change>) {
        self.summary.generated.sort_unstable();
        (self.summary, self.changes.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table_file::parse_line;

    fn keys_of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> HashSet<String> {
        entries.into_iter().map(|e| e.key().as_str().to_string()).collect()
    }

    fn line(n: usize, text: &str) -> ImportLine {
        ImportLine {
            line: n,
            item: parse_line(text).unwrap(),
        }
    }

    #[test]
    fn an_import_records_conflicts_and_generates_after_explicit_lines() {
        let mut plan = ImportPlan::new(WriteMode::Insert);
        let batches = plan.batch(vec![
            line(1, r#"{"code":"a","appid":"wx1234567890abcdef","path":"p"}"#),
            line(2, r#"{"appid":"wx1234567890abcdef","path":"p"}"#),
            line(3, r#"{"code":"b","appid":"wx1234567890abcdef","path":"p"}"#),
            line(4, r#"{"host":"h.example.com"}"#),
        ]);
        assert_eq!(
            batches.iter().map(|b| b.kind).collect::<Vec<_>>(),
            [EntryKind::Code, EntryKind::Host]
        );
        for batch in batches {
            // "b" exists already: not written in insert mode.
            let written: HashSet<String> = batch
                .entries
                .iter()
                .map(|e| e.key().as_str().to_string())
                .filter(|k| k != "b")
                .collect();
            let flags = written_flags(&batch.entries, &written);
            plan.written(batch, &flags);
        }
        assert_eq!(plan.check_conflicts(), Err(StoreError::Conflicts(vec![3])));
        let mut rounds = 0;
        while let Some(batch) = plan.next_generated().unwrap() {
            rounds += 1;
            // The first round collides.
            let written = if rounds == 1 {
                HashSet::new()
            } else {
                keys_of(&batch.entries)
            };
            let flags = written_flags(&batch.entries, &written);
            plan.generated(batch, &flags);
        }
        assert_eq!(rounds, 2);
        let (summary, changes) = plan.finish();
        assert_eq!((summary.lines, summary.codes, summary.hosts), (4, 2, 1));
        assert_eq!(summary.generated.len(), 1);
        assert_eq!(summary.generated[0].0, 2);
        assert_eq!(changes.len(), 3);
    }

    #[test]
    fn codes_that_keep_colliding_fail_the_import() {
        let mut plan = ImportPlan::new(WriteMode::Upsert);
        plan.batch(vec![line(1, r#"{"appid":"wx1234567890abcdef","path":"p"}"#)]);
        for _ in 0..GENERATE_ROUNDS {
            let batch = plan.next_generated().unwrap().expect("a line still waits for its code");
            let none = vec![false; batch.entries.len()];
            plan.generated(batch, &none);
        }
        assert!(matches!(plan.next_generated(), Err(StoreError::Failed(_))));
    }

    #[test]
    fn a_change_may_not_rename() {
        let Item::Entry(a) = parse_line(r#"{"code":"a","appid":"wx1234567890abcdef","path":"p"}"#).unwrap() else {
            panic!()
        };
        let Item::Entry(b) = parse_line(r#"{"code":"b","appid":"wx1234567890abcdef","path":"p"}"#).unwrap() else {
            panic!()
        };
        let stored = Stored {
            entry: a,
            created_at: 7,
            updated_at: 8,
        };
        assert!(matches!(
            modified(stored.clone(), |_| Ok(b)),
            Err(StoreError::Failed(_))
        ));
        let (_, created_at) = modified(stored, |s| Ok(s.entry)).unwrap();
        assert_eq!(created_at, 7);
        assert_eq!(to_log(Vec::new()), Err(StoreError::NotFound));
    }
}
