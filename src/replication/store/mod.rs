//! The durable store: the source of truth for every entry, and the
//! commit-ordered change log that every node's table follows.
//!
//! Two backends sit behind one async [`Store`] trait, each with the driver
//! made for it: [`sqlite`] (rusqlite, the embedded default for one node)
//! and [`postgres`] (sqlx, one database shared by a fleet). Neither
//! library's types cross the trait: errors are [`StoreError`] values that
//! say what the caller should answer (`409`, `503`, `500`, …).
//!
//! Every write is one transaction that first takes the next **position**
//! from a single counter row (`UPDATE meta SET position = position + 1
//! RETURNING position`) and records what it changed in `changes` under that
//! position. Taking the counter row's lock serialises writers, so positions
//! are handed out in commit order with no gaps: a reader that has seen
//! position `n` has seen every position before it. (A `bigserial` would
//! not do: a transaction holding 10 can commit after 11 is visible.) See
//! ARCHITECTURE.md, "One road for every change".

pub mod backup;
pub mod migrate;
pub mod postgres;
mod rows;
pub(crate) mod rules;
pub mod sqlite;

pub use crate::model::change::{Change, Position};
use crate::model::domain::{Entry, EntryKey, EntryKind, FieldError, Line, Stored, Tag};
use async_trait::async_trait;

/// Writes that change more entries than this are logged as one
/// [`Change::Resync`] instead of entry by entry: followers reload the whole
/// table, which is cheaper than applying a million single changes.
pub const MAX_LOGGED_CHANGES: usize = 4096;

/// The database's identity and how far its change log has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Random, made when the database was created: a restored or different
    /// database has another one, and followers resync.
    pub epoch: String,
    pub position: Position,
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    pub position: Position,
    /// Wall-clock time of the commit on the writing node, UNIX ms.
    pub committed_at_ms: i64,
    pub change: Change,
}

/// The log after some position, read in one transaction with the head.
#[derive(Debug, Clone)]
pub struct Feed {
    pub head: Head,
    /// The oldest position the log still holds (`head.position + 1` when
    /// it holds none): a follower behind it must resync.
    pub oldest: Position,
    /// Every change with a position in the asked range, in order.
    pub changes: Vec<LoggedChange>,
}

/// A committed write and its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    pub value: T,
    pub position: Position,
}

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub stored: Stored<Entry>,
    /// `true` when the key did not exist before (`201`), decided inside the
    /// transaction.
    pub created: bool,
}

/// How a write treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or replace.
    Upsert,
    /// Create only; an existing key is a conflict.
    Insert,
}

impl WriteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Upsert => "upsert",
            WriteMode::Insert => "insert",
        }
    }
}

/// A change of one stored entry, run inside the write transaction: gets the
/// entry and returns its new value, or the reason it cannot be changed.
pub type ModifyFn = Box<dyn FnOnce(Stored<Entry>) -> Result<Entry, FieldError> + Send>;

/// A change of many entries, run inside one transaction.
pub type ModifyEachFn = Box<dyn Fn(Stored<Entry>) -> Result<Entry, FieldError> + Send + Sync>;

/// One line of an import, already validated.
#[derive(Debug, Clone)]
pub struct ImportLine {
    pub line: usize,
    pub item: crate::model::table_file::Item,
}

/// The lines of an import, read on a blocking thread (a spooled body or a
/// table file). An `Err` ends the import and rolls it back.
pub type ImportSource = Box<dyn Iterator<Item = Result<ImportLine, StoreError>> + Send>;

/// Reads `lines` ahead of the import on a low-priority thread of its own,
/// a batch at a time, so the lines are parsed while the import's thread
/// writes the ones before (on one thread the two took turns, and parsing
/// was a third of a first seed's work). At most a few batches wait; the
/// thread stops at the end, after the first `Err`, or as soon as the
/// import drops the lines (it failed).
pub fn read_ahead(lines: ImportSource) -> ImportSource {
    const BATCH: usize = 1024;
    const AHEAD: usize = 4;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<ImportLine, StoreError>>>(AHEAD);
    let producer = move || {
        crate::replication::background::lower_priority();
        let mut lines = lines;
        let feed = |lines: &mut ImportSource| loop {
            let mut batch = Vec::with_capacity(BATCH);
            let mut failed = false;
            for line in lines.by_ref().take(BATCH) {
                failed = line.is_err();
                batch.push(line);
                if failed {
                    break;
                }
            }
            if batch.is_empty() || tx.send(batch).is_err() || failed {
                return;
            }
        };
        // A panic must end the import with an error: the channel's end
        // alone would read as the end of the lines, and commit half.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| feed(&mut lines))).is_err() {
            let panicked = StoreError::Failed("reading the import's lines failed (a panic)".into());
            let _ = tx.send(vec![Err(panicked)]);
        }
        // The source (and whatever it shares) goes before the import sees
        // the end.
        drop(lines);
        drop(tx);
    };
    match std::thread::Builder::new().name("qrlaunch-read".into()).spawn(producer) {
        Ok(_) => Box::new(rx.into_iter().flatten()),
        Err(e) => Box::new(std::iter::once(Err(StoreError::Failed(format!(
            "cannot start the import's reading thread: {e}"
        ))))),
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub lines: usize,
    pub codes: u64,
    pub rules: u64,
    pub hosts: u64,
    pub files: u64,
    /// `(line, code)` for every line that asked for a generated code.
    pub generated: Vec<(usize, String)>,
}

/// Which entries a listing returns.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: EntryKind,
    /// Keys after this one, in key order.
    pub after: Option<String>,
    pub limit: u32,
    /// Only entries with this tag.
    pub tag: Option<Tag>,
}

/// A tag (a campaign) and how many entries carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    pub tag: String,
    pub codes: u64,
    pub rules: u64,
}

impl TagCount {
    /// Folds `(tag, kind, count)` rows in tag order into one line a tag.
    pub(crate) fn fold(rows: impl IntoIterator<Item = (String, String, i64)>) -> Vec<TagCount> {
        let mut out: Vec<TagCount> = Vec::new();
        for (tag, kind, n) in rows {
            if out.last().is_none_or(|t| t.tag != tag) {
                out.push(TagCount {
                    tag,
                    codes: 0,
                    rules: 0,
                });
            }
            let last = out.last_mut().expect("pushed above");
            let n = n.max(0) as u64;
            if kind == EntryKind::Code.as_str() {
                last.codes += n;
            } else if kind == EntryKind::Rule.as_str() {
                last.rules += n;
            }
        }
        out
    }
}

/// Scans of one entry (or 404s on one host) on one UTC day by one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// `Code`, `Rule`, or `Host` (404s on that host).
    pub kind: EntryKind,
    pub key: String,
    /// Days since 1970-01-01, UTC.
    pub day: i32,
    pub class: crate::model::client_class::CountClass,
    pub count: i64,
}

/// Which counts to read.
#[derive(Debug, Clone)]
pub enum CountSelection {
    /// One entry (or host).
    Key(EntryKind, String),
    /// Every entry of a kind with a tag.
    Tag(EntryKind, Tag),
    /// Every entry (for hosts: every host's 404s) of a kind.
    Kind(EntryKind),
    /// A rule's counts by the values of a query parameter: the rule's
    /// normalized prefix and the parameter (see [`value_key`]).
    Values(String, String),
}

/// Separates a rule's key, the parameter and the value in the key of a
/// count by value.
pub const VALUE_SEPARATOR: char = '\u{1f}';

/// The count key of scans of rule `rule_key` whose parameter `param` had
/// `value`.
pub fn value_key(rule_key: &str, param: &str, value: &str) -> String {
    let mut key = String::with_capacity(rule_key.len() + param.len() + value.len() + 2);
    key.push_str(rule_key);
    key.push(VALUE_SEPARATOR);
    key.push_str(param);
    key.push(VALUE_SEPARATOR);
    key.push_str(value);
    key
}

impl CountSelection {
    /// The statement and its key parameter (`$2`).
    pub(crate) fn statement(&self) -> (&'static str, EntryKind, String) {
        match self {
            CountSelection::Key(kind, key) => (rows::COUNTS_BY_KEY, *kind, key.clone()),
            CountSelection::Tag(kind, tag) => (rows::COUNTS_BY_TAG, *kind, tag.to_string()),
            CountSelection::Kind(kind) => (rows::COUNTS_BY_KIND, *kind, String::new()),
            CountSelection::Values(rule, param) => (
                rows::COUNTS_BY_VALUE,
                EntryKind::Rule,
                format!("{rule}{VALUE_SEPARATOR}{param}"),
            ),
        }
    }
}

/// Why a store operation failed, in the terms a caller answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no such entry")]
    NotFound,
    #[error("the key exists already")]
    Conflict,
    /// The change itself is invalid (from a [`ModifyFn`]).
    #[error(transparent)]
    Rejected(FieldError),
    /// An insert-mode import met keys that exist: these lines.
    #[error("{} line(s) name keys that exist already", .0.len())]
    Conflicts(Vec<usize>),
    /// The database cannot be reached now; try again later (`503`).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The database refused or failed the operation: disk full, I/O error,
    /// files removed (`500`). Nothing was committed.
    #[error("the store failed: {0}")]
    Failed(String),
    /// A stored row does not validate: the database was edited by hand.
    #[error("a stored row is invalid ({0}); was the database edited by hand?")]
    Corrupt(String),
}

/// Wake-ups for a follower: something may have been committed.
#[async_trait]
pub trait Wakeups: Send {
    /// Waits for the next wake-up. `Reconnected` means notifications may
    /// have been missed: catch up. `Err` means no more will come (poll).
    async fn next(&mut self) -> Result<Wakeup, StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// A commit at this position or later happened.
    Committed(Position),
    /// The notification channel was re-established.
    Reconnected,
}

/// What a node needs from a database: eight contracts, one per job, which
/// both backends implement and `tests/it/store_contract.rs` holds to, one
/// suite run against SQLite and PostgreSQL alike.
pub trait Store: StartUp + ChangeLog + Entries + Bulk + Counts + Keys + Audit + Certificates {}

impl<T: StartUp + ChangeLog + Entries + Bulk + Counts + Keys + Audit + Certificates> Store for T {}

/// A TLS certificate a node obtained (ACME), shared by every node of a
/// fleet so that each serves it. The key is kept as PEM, as certbot keeps
/// it on disk: whoever can read the store can read it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The DNS name it was ordered for (its only name).
    pub name: String,
    /// The leaf first, then the intermediates (PEM).
    pub chain_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The leaf's validity, UNIX seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// From when it is renewed, UNIX seconds: two thirds into its lifetime.
    pub renew_after: i64,
    /// The ACME directory URL that issued it (another directory's is
    /// replaced: staging certificates do not outlive a move to production).
    pub issuer: String,
    /// UNIX ms.
    pub updated_at: i64,
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCertificate")
            .field("name", &self.name)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("renew_after", &self.renew_after)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Certificates and the ACME account that orders them: shared by every
/// node of a fleet. A stored certificate is logged (as a
/// [`Change::Certificates`]) so that every node reads them again; the
/// account is read only by the node ordering.
#[async_trait]
pub trait Certificates: Send + Sync + 'static {
    async fn certificates(&self) -> Result<Vec<StoredCertificate>, StoreError>;
    /// Creates or replaces the certificate of `cert.name`.
    async fn put_certificate(&self, cert: StoredCertificate) -> Result<Committed<()>, StoreError>;
    /// Removes the certificate of `name` (`NotFound` when there is none).
    async fn delete_certificate(&self, name: String) -> Result<Committed<()>, StoreError>;
    /// The account's credentials (JSON) at the ACME server `directory`.
    async fn acme_account(&self, directory: String) -> Result<Option<String>, StoreError>;
    /// Keeps the account's credentials unless one is stored already for
    /// `directory` (another node was first); returns the stored one.
    async fn keep_acme_account(&self, directory: String, credentials: String) -> Result<String, StoreError>;
    /// Takes (or renews) the right to order certificates for the fleet
    /// until `until_ms`, if no other holder has it at `now_ms`; whether it
    /// is `holder`'s now. Not logged: only ordering nodes read it.
    async fn take_acme_lease(&self, holder: String, now_ms: i64, until_ms: i64) -> Result<bool, StoreError>;
}

/// The audit log: every write above records its lines in its own
/// transaction (the author from [`crate::replication::audit::actor`]);
/// this reads and prunes them.
#[async_trait]
pub trait Audit: Send + Sync + 'static {
    /// Lines newest first, as `query` filters them.
    async fn audit(
        &self,
        query: crate::replication::audit::Query,
    ) -> Result<Vec<crate::replication::audit::Row>, StoreError>;
    /// Drops lines older than `before_ms`.
    async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// An API key as stored: the secret only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub name: String,
    pub role: crate::model::access::Role,
    pub scopes: crate::model::access::Scopes,
    /// SHA-256 of the secret, lower-case hex.
    pub secret_hash: String,
    /// After a rotation: the old secret's hash, accepted until this time
    /// (UNIX ms).
    pub previous: Option<(String, i64)>,
    /// UNIX ms.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Updated coarsely ([`Keys::touch_keys`]); not set by [`Keys::put_key`].
    pub last_used_at: Option<i64>,
}

/// API keys: shared by every node of a fleet, each change logged (as a
/// [`Change::Keys`]) so that every node reads them again.
#[async_trait]
pub trait Keys: Send + Sync + 'static {
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Creates a key (`expected` is `None`; an id taken is `Conflict`), or
    /// changes one whose secret hash is still `expected` (else
    /// `Conflict`: it was rotated or removed meanwhile). Creation time and
    /// last use stay.
    async fn put_key(&self, key: StoredKey, expected: Option<String>) -> Result<Committed<()>, StoreError>;
    /// Removes a key (`NotFound` when there is none).
    async fn delete_key(&self, id: String) -> Result<Committed<()>, StoreError>;
    /// Records when keys were last used; bookkeeping, not logged.
    async fn touch_keys(&self, used: Vec<(String, i64)>) -> Result<(), StoreError>;
}

/// What the store is, and whether it was ever initialised.
#[async_trait]
pub trait StartUp: Send + Sync + 'static {
    /// `sqlite:PATH` or the PostgreSQL URL without its password, for logs.
    fn describe(&self) -> String;

    /// Whether this store may be seeded with the embedded example table on
    /// its first start (the embedded single-node default only).
    fn seeds_example(&self) -> bool;

    /// Whether any write or import was ever committed (or the store was
    /// seeded): such a store is never seeded again, even when empty.
    async fn initialised(&self) -> Result<bool, StoreError>;

    /// Marks the store initialised without changing entries (an empty seed).
    async fn mark_initialised(&self) -> Result<(), StoreError>;

    /// Writes a consistent copy of the whole store (one commit's state) to
    /// `file`, which must not exist, while writes go on (SQLite); a
    /// PostgreSQL store is backed up with its own tools (`Rejected`).
    async fn backup_into(&self, file: std::path::PathBuf) -> Result<(), StoreError>;

    /// Called once at a clean stop, after the last write: leaves the files
    /// so that the next start opens them at once. The store stays usable.
    /// SQLite checkpoints its write-ahead log and truncates it; without
    /// that, the next open read the whole log back (after a first seed of a
    /// million codes, 136 MB: 0.18 s of a 1.4 s restart). PostgreSQL: nothing.
    async fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The commit-ordered change log that every node's table follows.
#[async_trait]
pub trait ChangeLog: Send + Sync + 'static {
    /// The database's epoch and latest committed position.
    async fn head(&self) -> Result<Head, StoreError>;

    /// The changes with positions in `(after, after + max_positions]`, the
    /// head and the oldest logged position, all from one read transaction.
    async fn changes_since(&self, after: Position, max_positions: i64) -> Result<Feed, StoreError>;

    /// Wake-ups after commits (local or, for PostgreSQL, any node's).
    async fn wakeups(&self) -> Result<Box<dyn Wakeups>, StoreError>;

    /// Drops change-log rows older than the newest `keep` positions.
    async fn prune_log(&self, keep: i64) -> Result<u64, StoreError>;
}

/// Entries one at a time (or one tag at a time); every write takes the next
/// position and logs what it changed, in one transaction.
#[async_trait]
pub trait Entries: Send + Sync + 'static {
    async fn get(&self, key: &EntryKey) -> Result<Option<Stored<Entry>>, StoreError>;
    async fn list(&self, query: ListQuery) -> Result<Vec<Stored<Entry>>, StoreError>;
    /// Every tag with how many codes and rules carry it, in tag order.
    async fn tags(&self) -> Result<Vec<TagCount>, StoreError>;

    /// Creates or replaces (`Insert`: creates only, else `Conflict`).
    async fn put(&self, entry: Entry, mode: WriteMode) -> Result<Committed<Put>, StoreError>;
    /// Reads, changes and writes one entry in one transaction (`NotFound`
    /// when there is none).
    async fn modify(&self, key: EntryKey, change: ModifyFn) -> Result<Committed<Stored<Entry>>, StoreError>;
    /// Changes every entry of `kinds` with `tag` in one transaction; the
    /// number changed (`NotFound` when none has the tag).
    async fn modify_tagged(
        &self,
        kinds: Vec<EntryKind>,
        tag: Tag,
        change: ModifyEachFn,
    ) -> Result<Committed<usize>, StoreError>;
    /// Deletes one entry (`NotFound` when there is none); a delete leaves a
    /// tombstone in the change log.
    async fn delete(&self, key: EntryKey) -> Result<Committed<()>, StoreError>;
}

/// What a snapshot lends each entry to.
pub type EntrySink = Box<dyn for<'e> FnMut(&'e Entry) + Send>;

/// Everything at once: the snapshot a table is built from, imports and
/// exports.
#[async_trait]
pub trait Bulk: Send + Sync + 'static {
    /// Lends `sink` every entry as of one moment (one read
    /// transaction), on a low-priority thread, and returns that moment's
    /// head: a follower starts from it.
    async fn snapshot(&self, sink: EntrySink) -> Result<Head, StoreError>;

    /// How many codes the store holds now: what a snapshot's table sizes
    /// its code index by before the rows come (growing it as they came
    /// cost a restart on a million codes a rehash and copies of its arena).
    /// Read apart from the snapshot, so only a hint.
    async fn code_count(&self) -> Result<u64, StoreError>;

    /// Writes every line in one transaction: all or nothing. Lines that ask
    /// for a generated code get one (never colliding with any code), after
    /// every explicit line ([`rules::ImportPlan`]).
    async fn import(&self, mode: WriteMode, lines: ImportSource) -> Result<Committed<ImportSummary>, StoreError>;

    /// Sends every entry, as of one moment, into `out`, in key order:
    /// codes, rules, hosts, files. Stops early when `out` is closed.
    async fn export(&self, out: tokio::sync::mpsc::Sender<Entry>) -> Result<(), StoreError>;
}

/// Scan counts per entry, day and class.
#[async_trait]
pub trait Counts: Send + Sync + 'static {
    /// Adds `rows` to the stored counts in one transaction (adds, never
    /// overwrites: nodes sharing a store sum up).
    async fn add_counts(&self, rows: Vec<CountRow>) -> Result<(), StoreError>;

    /// The counts of `selection` from `from_day` to `to_day`, inclusive,
    /// ordered by key, day and class.
    async fn counts(&self, selection: CountSelection, from_day: i32, to_day: i32) -> Result<Vec<CountRow>, StoreError>;

    /// Drops counts of days before `before_day`.
    async fn prune_counts(&self, before_day: i32) -> Result<u64, StoreError>;
}

/// The change-log form of a batch of changes: entry by entry, or one
/// [`Change::Resync`] when there are more than [`MAX_LOGGED_CHANGES`].
pub(crate) fn log_form(changes: Vec<Change>) -> Vec<Change> {
    if changes.len() > MAX_LOGGED_CHANGES {
        vec![Change::Resync]
    } else {
        changes
    }
}

/// The `(kind, key, line)` columns of a logged change; `line` is the
/// entry's table-file JSON, `None` for a tombstone or a resync.
pub(crate) fn change_columns(change: &Change) -> (&'static str, String, Option<String>) {
    match change {
        Change::Put(entry) => (
            entry.kind().as_str(),
            entry.key().as_str().to_string(),
            Some(serde_json::to_string(&Line::from(entry)).unwrap_or_default()),
        ),
        Change::Delete(key) => (key.kind().as_str(), key.as_str().to_string(), None),
        Change::Resync => ("resync", String::new(), None),
        Change::Keys(id) => ("keys", id.clone(), None),
        Change::Certificates(name) => ("certificates", name.clone(), None),
    }
}

/// The inverse of [`change_columns`].
pub(crate) fn change_from_columns(kind: &str, key: String, line: Option<&str>) -> Result<Change, StoreError> {
    if kind == "resync" {
        return Ok(Change::Resync);
    }
    if kind == "keys" {
        return Ok(Change::Keys(key));
    }
    if kind == "certificates" {
        return Ok(Change::Certificates(key));
    }
    let kind = EntryKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("change of unknown kind {kind:?}")))?;
    match line {
        None => Ok(Change::Delete(EntryKey::from_parts(kind, key))),
        Some(line) => {
            let parsed: Line = serde_json::from_str(line).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let entry = parsed.validate().map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Change::Put(entry))
        }
    }
}

/// The class column of a stored count; a name this build does not know is
/// an error, never counted as another class.
pub(crate) fn count_class(name: &str) -> Result<crate::model::client_class::CountClass, StoreError> {
    crate::model::client_class::CountClass::parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("count of unknown class {name:?}")))
}

/// Now, UNIX milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Result<ImportLine, StoreError> {
        let text = format!(r#"{{"code":"c{n}","appid":"wx1234567890abcdef","path":"p"}}"#);
        Ok(ImportLine {
            line: n,
            item: crate::model::table_file::parse_line(&text).unwrap(),
        })
    }

    #[test]
    fn read_ahead_gives_every_line_then_stops_at_the_first_error() {
        let lines = (1..=3000)
            .map(line)
            .chain([Err(StoreError::Failed("bad".into()))])
            .chain((3001..=3005).map(line));
        let read: Vec<_> = read_ahead(Box::new(lines)).collect();
        assert_eq!(read.len(), 3001);
        assert!(read[..3000].iter().all(Result::is_ok));
        assert!(matches!(&read[3000], Err(StoreError::Failed(m)) if m == "bad"));
    }

    #[test]
    fn a_panic_while_reading_ahead_is_an_error_not_the_end() {
        let lines = (1..=2500).map(|n| if n == 2500 { panic!("a reader's bug") } else { line(n) });
        let read: Vec<_> = read_ahead(Box::new(lines)).collect();
        // The batch being filled is lost with the panic; the import fails.
        let (last, before) = read.split_last().expect("at least the error");
        assert!(
            matches!(last, Err(StoreError::Failed(m)) if m.contains("panic")),
            "{last:?}"
        );
        assert!(before.iter().all(Result::is_ok) && before.len() < 2499);
    }
}
