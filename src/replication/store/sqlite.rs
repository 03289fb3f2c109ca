//! The embedded store: SQLite through rusqlite, for one node.
//!
//! * WAL journal, `synchronous=FULL`: a commit is in the fsynced WAL before
//!   `COMMIT` returns, and every write is an explicit transaction whose
//!   `COMMIT` result is checked, so a write on a full disk is an error,
//!   never an acknowledgement.
//! * The `unix-excl` VFS: the process holds the database exclusively (a
//!   second process cannot open it), and the WAL index lives in heap memory
//!   instead of a memory-mapped `-shm` file, which, made unwritable under a
//!   running process, would kill it with SIGBUS.
//! * Before each commit the database and WAL files are checked to still be
//!   the ones opened: a write to a file deleted under the process would be
//!   acknowledged and then gone at the next start.
//! * One writer connection (writes are serialised anyway), a few reader
//!   connections; WAL lets them read while a write runs. Every call runs on
//!   a blocking thread, heavy ones (snapshot, import) at low priority.

use super::rows::{self, entry_from_row, sql, Value};
use super::{
    change_columns, change_from_columns, now_ms, rules, Bulk, Change, ChangeLog, Committed, CountRow, CountSelection,
    Counts, Entries, EntrySink, Feed, Head, ImportSource, ImportSummary, ListQuery, LoggedChange, ModifyEachFn,
    ModifyFn, Position, Put, StartUp, StoreError, TagCount, Wakeup, Wakeups, WriteMode,
};
use crate::model::domain::{Entry, EntryKey, EntryKind, Stored, Tag};
use crate::replication::audit::{Actor, Record};
use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "qrlaunch.db";
/// Reader connections kept open (exports and admin reads).
const READERS: usize = 4;

/// The SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    read_slots: Semaphore,
    identity: FileIdentity,
    committed: watch::Sender<Position>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish()
    }
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

impl SqliteStore {
    /// Opens (or creates) `dir/qrlaunch.db` and brings its schema up to date.
    /// Files that cannot be written fail here, with their name, rather than
    /// in the middle of serving.
    pub async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || SqliteStore::open_blocking(&dir))
            .await
            .map_err(failed)?
    }

    fn open_blocking(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Failed(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        preflight(dir, &path)?;
        let mut writer = open_connection(&path, false)?;
        super::migrate::sqlite(&mut writer).map_err(StoreError::Failed)?;
        // The WAL file exists once the database has been read in WAL mode.
        let position: Position = writer
            .query_row("SELECT position FROM meta WHERE id = 1", [], |r| r.get(0))
            .map_err(failed)?;
        let identity = FileIdentity::of(&path)?;
        let (committed, _) = watch::channel(position);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                read_slots: Semaphore::new(READERS),
                identity,
                committed,
            }),
        })
    }

    /// Runs `f` with a reader connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _slot = self.inner.read_slots.acquire().await.map_err(failed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_reader(f))
            .await
            .map_err(failed)?
    }

    /// Runs `f` with the writer connection on a blocking thread, outside
    /// the change log (flags, pruning).
    async fn write_unlogged<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.writer.lock().map_err(failed)?;
            inner.identity.check()?;
            f(&conn)
        })
        .await
        .map_err(failed)?
    }

    /// Runs one write transaction on a blocking thread; see [`Inner::write`].
    /// The author of its audit lines is the running task's.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, Vec<Change>, Vec<Record>), StoreError> + Send + 'static,
    ) -> Result<Committed<T>, StoreError> {
        let inner = self.inner.clone();
        let actor = crate::replication::audit::actor();
        tokio::task::spawn_blocking(move || inner.write(&actor, f))
            .await
            .map_err(failed)?
    }
}

impl Inner {
    fn with_reader<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map_err(failed)?.pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path, true)?,
        };
        let result = f(&mut conn);
        if conn.is_autocommit() {
            if let Ok(mut readers) = self.readers.lock() {
                readers.push(conn);
            }
        }
        result
    }

    /// One write transaction: take the next position, run `f`, log what it
    /// changed under that position, write its audit lines, check the
    /// files, commit. Any error (including the commit's) rolls back and is
    /// returned: nothing is acknowledged that is not on disk, and no audit
    /// line outlives its change.
    fn write<T>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, Vec<Change>, Vec<Record>), StoreError>,
    ) -> Result<Committed<T>, StoreError> {
        let mut conn = self.writer.lock().map_err(failed)?;
        self.identity.check()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let position: Position = tx.query_row(rows::BUMP, [], |r| r.get(0)).map_err(failed)?;
        let (value, changes, records) = f(&tx)?;
        log_changes(&tx, position, rules::to_log(changes)?)?;
        audit_in(&tx, position, actor, &records)?;
        self.identity.check()?;
        tx.commit().map_err(|e| StoreError::Failed(format!("commit: {e}")))?;
        self.committed.send_replace(position);
        Ok(Committed { value, position })
    }
}

/// The shared SQL's `$n` parameters as SQLite's `?n`: SQLite reads `$1` as
/// a *named* parameter and numbers names by first appearance, which breaks
/// positional binding when a statement mentions `$3` before `$1`.
fn q(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes the audit lines of a write, in its transaction.
fn audit_in(tx: &Transaction<'_>, position: Position, actor: &Actor, records: &[Record]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut insert = tx.prepare_cached(&q(rows::INSERT_AUDIT)).map_err(failed)?;
    for r in records {
        insert
            .execute(rusqlite::params![
                now,
                actor.key_id,
                actor.key_name,
                actor.client,
                r.action,
                r.kind,
                r.entry,
                r.before,
                r.after,
                position
            ])
            .map_err(failed)?;
    }
    Ok(())
}

fn log_changes(tx: &Transaction<'_>, position: Position, changes: Vec<Change>) -> Result<(), StoreError> {
    let now = now_ms();
    let mut insert = tx.prepare_cached(&q(rows::LOG_CHANGE)).map_err(failed)?;
    for (seq, change) in changes.iter().enumerate() {
        let (kind, key, line) = change_columns(change);
        insert
            .execute(rusqlite::params![position, seq as i64, kind, key, line, now])
            .map_err(failed)?;
    }
    Ok(())
}

/// How long a statement waits for a lock another connection holds.
const BUSY_WAIT: Duration = Duration::from_secs(30);
/// How long the checkpoint at a clean stop waits for readers ([`StartUp::settle`]).
const SETTLE_WAIT: Duration = Duration::from_secs(1);

/// Opens a connection on the `unix-excl` VFS with the store's settings.
fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags_and_vfs(path, flags, "unix-excl")
        .map_err(|e| StoreError::Failed(format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_WAIT).map_err(failed)?;
    if read_only {
        return Ok(conn);
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| StoreError::Failed(format!("{}: {e}", path.display())))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Failed(format!(
            "{}: cannot switch to WAL journal mode (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL").map_err(failed)?;
    Ok(conn)
}

/// Fails with the file's name when the directory or an existing database
/// file cannot be written (read-only mount, `chattr +i`, wrong owner).
fn preflight(dir: &Path, db: &Path) -> Result<(), StoreError> {
    let probe = dir.join(".qrlaunch-write-test");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| StoreError::Failed(format!("the data directory {} is not writable: {e}", dir.display())))?;
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        if file.exists() {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&file)
                .map_err(|e| StoreError::Failed(format!("{} cannot be written: {e}", file.display())))?;
        }
    }
    Ok(())
}

/// The device and inode of the database and its WAL as opened: a write is
/// refused once either file was deleted or replaced under the process.
#[derive(Debug)]
struct FileIdentity {
    files: Vec<(PathBuf, (u64, u64))>,
}

impl FileIdentity {
    fn of(db: &Path) -> Result<FileIdentity, StoreError> {
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        let mut files = Vec::new();
        for file in [db.to_path_buf(), wal] {
            let id = identity(&file).ok_or_else(|| StoreError::Failed(format!("{} is missing", file.display())))?;
            files.push((file, id));
        }
        Ok(FileIdentity { files })
    }

    fn check(&self) -> Result<(), StoreError> {
        for (file, id) in &self.files {
            if identity(file) != Some(*id) {
                return Err(StoreError::Failed(format!(
                    "{} was deleted or replaced while the store was open; restart qrlaunch",
                    file.display()
                )));
            }
        }
        Ok(())
    }
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::OptText(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::OptText(None) | Value::OptInt(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::OptInt(Some(i)) | Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
        })
    }
}

/// A rusqlite row, read by column.
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl rows::RowReader for SqliteRow<'_, '_> {
    fn text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        self.0.get(i).map_err(failed)
    }
    fn int(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        self.0.get(i).map_err(failed)
    }
    fn boolean(&mut self, i: usize) -> Result<bool, StoreError> {
        self.0.get(i).map_err(failed)
    }
}

/// Rows' columns copied out of SQLite for a snapshot's decoding threads, a
/// batch at a time: the text of every row in one buffer, each column a
/// [`Cell`]. A copy per row (a vector, and a string per text column) was
/// allocated on the reading thread and freed on a decoding one, a million
/// times over on a restart.
struct RowBatch {
    kind: EntryKind,
    columns: usize,
    rows: usize,
    text: String,
    cells: Vec<Cell>,
}

/// One column of a row in a [`RowBatch`].
enum Cell {
    Null,
    Int(i64),
    /// A range of the batch's text.
    Text(std::ops::Range<usize>),
    /// A type no stored entry has (a real or a blob), kept for the error.
    Other(rusqlite::types::Type),
}

impl RowBatch {
    /// An empty batch of `kind`'s rows of `columns` columns, its text
    /// buffer sized for `text` bytes.
    fn new(kind: EntryKind, columns: usize, text: usize) -> RowBatch {
        RowBatch {
            kind,
            columns,
            rows: 0,
            text: String::with_capacity(text),
            cells: Vec::with_capacity(columns * SNAPSHOT_BATCH),
        }
    }

    fn push(&mut self, row: &rusqlite::Row<'_>) -> Result<(), StoreError> {
        use rusqlite::types::{Type, ValueRef};
        for i in 0..self.columns {
            self.cells.push(match row.get_ref(i).map_err(failed)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(n) => Cell::Int(n),
                ValueRef::Text(text) => {
                    let text =
                        std::str::from_utf8(text).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?;
                    let from = self.text.len();
                    self.text.push_str(text);
                    Cell::Text(from..self.text.len())
                }
                ValueRef::Real(_) => Cell::Other(Type::Real),
                ValueRef::Blob(_) => Cell::Other(Type::Blob),
            });
        }
        self.rows += 1;
        Ok(())
    }

    fn len(&self) -> usize {
        self.rows
    }

    /// Row `n` of the batch, for [`entry_from_row`].
    fn row(&self, n: usize) -> BatchRow<'_> {
        BatchRow {
            batch: self,
            cells: &self.cells[n * self.columns..(n + 1) * self.columns],
        }
    }
}

/// One row of a [`RowBatch`], read by column.
struct BatchRow<'b> {
    batch: &'b RowBatch,
    cells: &'b [Cell],
}

impl BatchRow<'_> {
    fn cell(&self, i: usize) -> &Cell {
        self.cells.get(i).unwrap_or(&Cell::Null)
    }
}

impl rows::RowReader for BatchRow<'_> {
    fn text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            Cell::Text(range) => Ok(Some(self.batch.text[range.clone()].to_owned())),
            other => Err(wrong_type(i, "text", other)),
        }
    }
    fn int(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            other => Err(wrong_type(i, "integer", other)),
        }
    }
    fn boolean(&mut self, i: usize) -> Result<bool, StoreError> {
        match self.cell(i) {
            Cell::Int(n) => Ok(*n != 0),
            other => Err(wrong_type(i, "boolean", other)),
        }
    }
}

/// A column of an unexpected type: the store was changed behind its back.
fn wrong_type(i: usize, expected: &str, found: &Cell) -> StoreError {
    use rusqlite::types::Type;
    let found = match found {
        Cell::Null => Type::Null,
        Cell::Int(_) => Type::Integer,
        Cell::Text(_) => Type::Text,
        Cell::Other(other) => *other,
    };
    StoreError::Corrupt(format!("column {i}: {expected} expected, found {found:?}"))
}

/// One of a snapshot's decoders: takes batches of rows until the reader is
/// done, checks each batch into entries, and lends them to `sink` a batch
/// at a time.
fn decode_rows(
    batches: &std::sync::Mutex<std::sync::mpsc::Receiver<RowBatch>>,
    sink: &std::sync::Mutex<EntrySink>,
) -> Result<(), StoreError> {
    loop {
        let next = batches.lock().map_err(failed)?.recv();
        let Ok(batch) = next else { return Ok(()) };
        // Sized up front: collecting `Result`s would grow the vector by
        // doubling, moving every entry again.
        let mut entries = Vec::with_capacity(batch.len());
        for n in 0..batch.len() {
            entries.push(entry_from_row(batch.kind, &mut batch.row(n))?.entry);
        }
        // Lent, not moved: an entry is 176 bytes.
        let mut sink = sink.lock().map_err(failed)?;
        entries.iter().for_each(&mut *sink);
    }
}

fn decoders_stopped() -> StoreError {
    StoreError::Failed("the snapshot's decoding threads stopped".into())
}

/// Rows a snapshot hands to a decoder at a time, how many such batches may
/// wait, and how many decoders check them.
const SNAPSHOT_BATCH: usize = 1024;
const SNAPSHOT_AHEAD: usize = 4;
const SNAPSHOT_DECODERS: usize = 2;
/// The text buffer of a snapshot's first batch of each kind, in bytes
/// (after that, the size of the batch before).
const SNAPSHOT_TEXT: usize = 64 * SNAPSHOT_BATCH;

/// Reads a stored entry of `kind` from a row selected with its `select` columns.
fn row_entry(kind: EntryKind, row: &rusqlite::Row<'_>) -> Result<Stored<Entry>, StoreError> {
    entry_from_row(kind, &mut SqliteRow(row))
}

/// Every entry a statement selects (with its kind's `select` columns).
fn select_entries(
    conn: &Connection,
    kind: EntryKind,
    statement: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Stored<Entry>>, StoreError> {
    let mut select = conn.prepare_cached(&q(statement)).map_err(failed)?;
    let mut found = select.query(params).map_err(failed)?;
    let mut entries = Vec::new();
    while let Some(row) = found.next().map_err(failed)? {
        entries.push(row_entry(kind, row)?);
    }
    Ok(entries)
}

fn select_by_key(conn: &Connection, key: &EntryKey) -> Result<Option<Stored<Entry>>, StoreError> {
    let found = select_entries(conn, key.kind(), &rows::select_by_key(key.kind()), [key.as_str()])?;
    Ok(found.into_iter().next())
}

/// Writes `entry` (creating or replacing) with its tags; a replace keeps
/// the stored created time whatever `created_at` says.
fn upsert(tx: &Transaction<'_>, entry: &Entry, created_at: i64, now: i64) -> Result<(), StoreError> {
    let values = rows::upsert_values(entry, created_at, now);
    tx.prepare_cached(&q(&sql(entry.kind()).upsert))
        .and_then(|mut st| st.execute(rusqlite::params_from_iter(values.iter())))
        .map_err(failed)?;
    TagStatements::prepare(tx)?.set(entry, false)
}

/// The two statements that replace an entry's tags, prepared once for a
/// whole batch (preparing them per entry was a sixth of an import's work).
struct TagStatements<'tx> {
    delete: rusqlite::CachedStatement<'tx>,
    add: rusqlite::CachedStatement<'tx>,
}

impl<'tx> TagStatements<'tx> {
    fn prepare(tx: &'tx Transaction<'_>) -> Result<TagStatements<'tx>, StoreError> {
        Ok(TagStatements {
            delete: tx.prepare_cached(&q(rows::DELETE_TAGS)).map_err(failed)?,
            add: tx.prepare_cached(&q(rows::ADD_TAG)).map_err(failed)?,
        })
    }

    /// Gives `entry` its tags. `new`: the row was just inserted, so it
    /// has none to delete (deleting an entry deletes its tags in the same
    /// transaction, [`delete_in`]).
    fn set(&mut self, entry: &Entry, new: bool) -> Result<(), StoreError> {
        let Some(tags) = entry.tags() else { return Ok(()) };
        if new && tags.is_empty() {
            return Ok(());
        }
        let (kind, key) = (entry.kind().as_str(), entry.key());
        if !new {
            self.delete
                .execute(rusqlite::params![kind, key.as_str()])
                .map_err(failed)?;
        }
        for tag in tags.iter() {
            self.add
                .execute(rusqlite::params![tag.as_str(), kind, key.as_str()])
                .map_err(failed)?;
        }
        Ok(())
    }
}

/// Writes `entries` (all of one kind); which of them were written (in
/// insert mode, the existing ones are not). What PostgreSQL does with one
/// `UNNEST` statement, row by row through one prepared statement: SQLite
/// in process has no round trip to save.
fn write_batch(tx: &Transaction<'_>, entries: &[Entry], mode: WriteMode, now: i64) -> Result<Vec<bool>, StoreError> {
    let mut written = Vec::with_capacity(entries.len());
    let Some(first) = entries.first() else {
        return Ok(written);
    };
    let s = sql(first.kind());
    let statement = match mode {
        WriteMode::Upsert => &s.upsert,
        WriteMode::Insert => &s.insert_new,
    };
    let mut write = tx.prepare_cached(&q(statement)).map_err(failed)?;
    let mut tags = TagStatements::prepare(tx)?;
    // Written in key order, the order of the primary key's B-tree: each
    // insert then descends next to the one before, in pages the CPU's
    // cache still holds (in the file's order every insert went to a random
    // leaf). Stable, so two lines of one key keep their order.
    let keys: Vec<EntryKey> = entries.iter().map(EntryKey::of).collect();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| keys[a].as_str().cmp(keys[b].as_str()));
    written.resize(entries.len(), false);
    for i in order {
        let entry = &entries[i];
        let values = rows::upsert_values(entry, now, now);
        let changed = write
            .execute(rusqlite::params_from_iter(values.iter()))
            .map_err(failed)?;
        if changed == 1 {
            tags.set(entry, mode == WriteMode::Insert)?;
        }
        written[i] = changed == 1;
    }
    Ok(written)
}

fn delete_in(tx: &Transaction<'_>, key: &EntryKey) -> Result<bool, StoreError> {
    let deleted = tx
        .prepare_cached(&q(&rows::delete_by_key(key.kind())))
        .and_then(|mut st| st.execute([key.as_str()]))
        .map_err(failed)?;
    tx.prepare_cached(&q(rows::DELETE_TAGS))
        .and_then(|mut st| st.execute(rusqlite::params![key.kind().as_str(), key.as_str()]))
        .map_err(failed)?;
    Ok(deleted > 0)
}

/// An import, by [`rules::ImportPlan`]: batches of lines, each written kind
/// by kind, then the generated codes.
fn import_in(
    tx: &Transaction<'_>,
    mode: WriteMode,
    lines: ImportSource,
) -> Result<(ImportSummary, Vec<Change>), StoreError> {
    let now = now_ms();
    let mut plan = rules::ImportPlan::new(mode);
    let mut lines = lines.peekable();
    while lines.peek().is_some() {
        let batch = lines.by_ref().take(BATCH).collect::<Result<Vec<_>, _>>()?;
        for kind_batch in plan.batch(batch) {
            let written = write_batch(tx, &kind_batch.entries, plan.mode(), now)?;
            plan.written(kind_batch, &written);
        }
    }
    plan.check_conflicts()?;
    while let Some(generated) = plan.next_generated()? {
        let written = write_batch(tx, &generated.entries, WriteMode::Insert, now)?;
        plan.generated(generated, &written);
    }
    Ok(plan.finish())
}

/// Lines an import takes at a time, each batch written in key order (see
/// `write_batch`). A million random keys make about 5,000 leaves of the
/// primary key's index: a batch of 4,096 still sent nearly every insert to
/// a leaf of its own, one of 16,384 puts three in each: a pinned first
/// seed of a million codes went from 5.5 to 4.7 s (README, "A first seed
/// in larger batches"); 65,536 gained nothing more.
const BATCH: usize = 16384;

/// The page cache of an import's transaction, in KiB. With SQLite's
/// default (2 MiB) a million random keys do not fit the primary key's
/// index: almost every insert spilled a page to the WAL and read one back
/// (a million `pwrite`s and a million `pread`s, 4 of a first seed's 10
/// seconds). 64 MiB holds the index of a couple of million codes; pages
/// are taken only as they are used, and given back after the import.
const IMPORT_CACHE_KIB: i64 = 64 * 1024;

/// SQLite's default `cache_size` (negative: in KiB), for every other write.
const DEFAULT_CACHE_SIZE: i64 = -2000;

#[async_trait]
impl StartUp for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.inner.path.display())
    }

    fn seeds_example(&self) -> bool {
        true
    }

    async fn backup_into(&self, file: std::path::PathBuf) -> Result<(), StoreError> {
        // One read transaction: the copy is the store at one commit, and
        // the writer is never held up (WAL). Run on a connection of this
        // process: the store's exclusive lock keeps other processes out.
        self.read(move |conn| {
            let target = file
                .to_str()
                .ok_or_else(|| StoreError::Failed(format!("{}: the path is not UTF-8", file.display())))?;
            conn.execute("VACUUM INTO ?1", [target])
                .map(|_| ())
                .map_err(|e| StoreError::Failed(format!("copying the store to {}: {e}", file.display())))
        })
        .await
    }

    async fn initialised(&self) -> Result<bool, StoreError> {
        self.read(|conn| conn.query_row(rows::INITIALISED, [], |r| r.get(0)).map_err(failed))
            .await
    }

    async fn mark_initialised(&self) -> Result<(), StoreError> {
        self.write_unlogged(|conn| conn.execute(rows::MARK_INITIALISED, []).map(drop).map_err(failed))
            .await
    }

    async fn settle(&self) -> Result<(), StoreError> {
        // Copies what the log holds into the database and empties the log
        // file. A reader still in a transaction (a backup that outlived its
        // request) keeps the log: waited for briefly, not for the 30 s a
        // write would wait, so that a stop stays prompt.
        self.write_unlogged(|conn| {
            conn.busy_timeout(SETTLE_WAIT).map_err(failed)?;
            let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
            conn.busy_timeout(BUSY_WAIT).map_err(failed)?;
            match result.map_err(failed)? {
                0 => Ok(()),
                _ => Err(StoreError::Failed(
                    "a reader still held the write-ahead log; the next start reads it back".into(),
                )),
            }
        })
        .await
    }
}

#[async_trait]
impl ChangeLog for SqliteStore {
    async fn head(&self) -> Result<Head, StoreError> {
        self.read(|conn| read_head(conn)).await
    }

    async fn changes_since(&self, after: Position, max_positions: i64) -> Result<Feed, StoreError> {
        self.read(move |conn| {
            let tx = conn.transaction().map_err(failed)?;
            let head = read_head(&tx)?;
            let oldest: Option<Position> = tx.query_row(rows::OLDEST, [], |r| r.get(0)).map_err(failed)?;
            let mut select = tx.prepare_cached(&q(rows::FEED)).map_err(failed)?;
            let mut found = select
                .query(rusqlite::params![after, after.saturating_add(max_positions)])
                .map_err(failed)?;
            let mut changes = Vec::new();
            while let Some(row) = found.next().map_err(failed)? {
                let kind: String = row.get(1).map_err(failed)?;
                let line: Option<String> = row.get(3).map_err(failed)?;
                changes.push(LoggedChange {
                    position: row.get(0).map_err(failed)?,
                    committed_at_ms: row.get(4).map_err(failed)?,
                    change: change_from_columns(&kind, row.get(2).map_err(failed)?, line.as_deref())?,
                });
            }
            drop(found);
            drop(select);
            tx.rollback().map_err(failed)?;
            Ok(Feed {
                oldest: oldest.unwrap_or(head.position + 1),
                head,
                changes,
            })
        })
        .await
    }

    async fn wakeups(&self) -> Result<Box<dyn Wakeups>, StoreError> {
        Ok(Box::new(LocalWakeups(self.inner.committed.subscribe())))
    }

    async fn prune_log(&self, keep: i64) -> Result<u64, StoreError> {
        self.write_unlogged(move |conn| {
            conn.execute(&q(rows::PRUNE_LOG), [keep])
                .map(|n| n as u64)
                .map_err(failed)
        })
        .await
    }
}

#[async_trait]
impl Entries for SqliteStore {
    async fn get(&self, key: &EntryKey) -> Result<Option<Stored<Entry>>, StoreError> {
        let key = key.clone();
        self.read(move |conn| select_by_key(conn, &key)).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Stored<Entry>>, StoreError> {
        self.read(move |conn| {
            let statement = rows::list_page(query.kind, query.tag.is_some());
            let after = query.after.unwrap_or_default();
            let limit = i64::from(query.limit);
            match &query.tag {
                Some(tag) => select_entries(
                    conn,
                    query.kind,
                    &statement,
                    rusqlite::params![after, limit, tag.as_str()],
                ),
                None => select_entries(conn, query.kind, &statement, rusqlite::params![after, limit]),
            }
        })
        .await
    }

    async fn tags(&self) -> Result<Vec<TagCount>, StoreError> {
        self.read(|conn| {
            let mut select = conn.prepare_cached(rows::TAG_COUNTS).map_err(failed)?;
            let found = select
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .map_err(failed)?;
            let rows = found.collect::<Result<Vec<_>, _>>().map_err(failed)?;
            Ok(TagCount::fold(rows))
        })
        .await
    }

    async fn put(&self, entry: Entry, mode: WriteMode) -> Result<Committed<Put>, StoreError> {
        self.write(move |tx| {
            let now = now_ms();
            let existing = select_by_key(tx, &entry.key())?;
            let (created_at, created) = rules::put(existing.as_ref(), mode, now)?;
            upsert(tx, &entry, created_at, now)?;
            let change = Change::Put(entry.clone());
            let record = Record::put(existing.as_ref(), &entry);
            Ok((
                rules::put_answer(entry, created_at, created, now),
                vec![change],
                vec![record],
            ))
        })
        .await
    }

    async fn modify(&self, key: EntryKey, change: ModifyFn) -> Result<Committed<Stored<Entry>>, StoreError> {
        self.write(move |tx| {
            let current = select_by_key(tx, &key)?.ok_or(StoreError::NotFound)?;
            let before = current.entry.clone();
            let (entry, created_at) = rules::modified(current, change)?;
            let now = now_ms();
            upsert(tx, &entry, created_at, now)?;
            let logged = Change::Put(entry.clone());
            let record = Record::patch(&before, &entry);
            let stored = Stored {
                entry,
                created_at,
                updated_at: now,
            };
            Ok((stored, vec![logged], vec![record]))
        })
        .await
    }

    async fn modify_tagged(
        &self,
        kinds: Vec<EntryKind>,
        tag: Tag,
        change: ModifyEachFn,
    ) -> Result<Committed<usize>, StoreError> {
        self.write(move |tx| {
            let now = now_ms();
            let mut count = 0;
            let mut changes = rules::Changes::default();
            let mut records = Vec::new();
            for kind in kinds {
                let statement = rows::select_tagged(kind);
                let current = select_entries(tx, kind, &statement, rusqlite::params![kind.as_str(), tag.as_str()])?;
                count += current.len();
                for stored in current {
                    let before = stored.entry.clone();
                    let (entry, created_at) = rules::modified(stored, &change)?;
                    upsert(tx, &entry, created_at, now)?;
                    records.push(Record::patch(&before, &entry));
                    changes.push(Change::Put(entry));
                }
            }
            Ok((count, changes.into_inner(), records))
        })
        .await
    }

    async fn delete(&self, key: EntryKey) -> Result<Committed<()>, StoreError> {
        self.write(move |tx| {
            let before = select_by_key(tx, &key)?.ok_or(StoreError::NotFound)?;
            if !delete_in(tx, &key)? {
                return Err(StoreError::NotFound);
            }
            Ok(((), vec![Change::Delete(key)], vec![Record::delete(&before.entry)]))
        })
        .await
    }
}

#[async_trait]
impl Bulk for SqliteStore {
    /// Idle-class threads: one reads the rows in one read transaction and
    /// copies their columns out, [`SNAPSHOT_DECODERS`] check them into
    /// entries and hand each batch to `sink` (the checking was twice the
    /// reading, and on one thread a restart on a million codes took 1.8 s).
    /// The entries reach `sink` one batch at a time, batches in no fixed
    /// order.
    async fn snapshot(&self, sink: EntrySink) -> Result<Head, StoreError> {
        let inner = self.inner.clone();
        let (rows, batches) = std::sync::mpsc::sync_channel::<RowBatch>(SNAPSHOT_AHEAD);
        let reading = crate::replication::background::run("qrlaunch-snapshot", move || {
            inner.with_reader(|conn| {
                let tx = conn.transaction().map_err(failed)?;
                let head = read_head(&tx)?;
                for kind in EntryKind::ALL {
                    let mut select = tx.prepare(&q(&rows::select_all(kind, false))).map_err(failed)?;
                    let columns = select.column_count();
                    let mut found = select.query([]).map_err(failed)?;
                    let mut batch = RowBatch::new(kind, columns, SNAPSHOT_TEXT);
                    while let Some(row) = found.next().map_err(failed)? {
                        batch.push(row)?;
                        if batch.len() == SNAPSHOT_BATCH {
                            // The next batch's text is about as long.
                            let next = RowBatch::new(kind, columns, batch.text.len());
                            rows.send(std::mem::replace(&mut batch, next))
                                .map_err(|_| decoders_stopped())?;
                        }
                    }
                    if batch.len() > 0 {
                        rows.send(batch).map_err(|_| decoders_stopped())?;
                    }
                }
                tx.rollback().map_err(failed)?;
                Ok(head)
            })
        });
        let batches = Arc::new(std::sync::Mutex::new(batches));
        let sink = Arc::new(std::sync::Mutex::new(sink));
        let decoders: Vec<_> = (0..SNAPSHOT_DECODERS)
            .map(|_| {
                let (batches, sink) = (batches.clone(), sink.clone());
                crate::replication::background::run("qrlaunch-decode", move || decode_rows(&batches, &sink))
            })
            .collect();
        // Only the decoders hold the rows' receiver: should they all stop,
        // the reader's next send fails instead of waiting for ever.
        drop((batches, sink));
        let (read, decoded) = tokio::join!(reading, futures_util::future::join_all(decoders));
        // A row that does not check stops its decoder, and once all have
        // stopped, the reader (whose error only says so): theirs come first.
        for done in decoded {
            done.ok_or_else(decoders_stopped)??;
        }
        read.ok_or_else(|| StoreError::Failed("the snapshot thread stopped".into()))?
    }

    async fn code_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.query_row(rows::COUNT_CODES, [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(failed)
        })
        .await
    }

    async fn import(&self, mode: WriteMode, lines: ImportSource) -> Result<Committed<ImportSummary>, StoreError> {
        let inner = self.inner.clone();
        let actor = crate::replication::audit::actor();
        let lines = super::read_ahead(lines);
        crate::replication::background::run("qrlaunch-import", move || {
            let written = inner.write(&actor, |tx| {
                tx.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)
                    .map_err(failed)?;
                let (summary, changes) = import_in(tx, mode, lines)?;
                let record = Record::import(&summary, mode.as_str());
                Ok((summary, changes, vec![record]))
            });
            // Back to the default cache, and its memory back to the kernel.
            if let Ok(conn) = inner.writer.lock() {
                let reset = conn
                    .pragma_update(None, "cache_size", DEFAULT_CACHE_SIZE)
                    .and_then(|()| conn.execute_batch("PRAGMA shrink_memory"));
                if let Err(error) = reset {
                    tracing::warn!(%error, "could not shrink the store's page cache after an import");
                }
            }
            crate::replication::background::release_free_memory();
            written
        })
        .await
        .ok_or_else(|| StoreError::Failed("the import thread stopped".into()))?
    }

    async fn export(&self, out: tokio::sync::mpsc::Sender<Entry>) -> Result<(), StoreError> {
        self.read(move |conn| {
            let tx = conn.transaction().map_err(failed)?;
            for kind in EntryKind::ALL {
                let mut select = tx.prepare(&q(&rows::select_all(kind, true))).map_err(failed)?;
                let mut found = select.query([]).map_err(failed)?;
                while let Some(row) = found.next().map_err(failed)? {
                    if out.blocking_send(row_entry(kind, row)?.entry).is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Counts for SqliteStore {
    async fn add_counts(&self, rows: Vec<CountRow>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        crate::replication::background::run("qrlaunch-flush", move || {
            let mut rows = rows;
            // In primary-key order every B-tree page is written once and
            // stays in the page cache while it is; in the table's own
            // (hash) order a million rows miss the cache on almost every
            // row (measured in benches/counts.rs).
            rows.sort_unstable_by(|a, b| {
                (a.kind.as_str(), &a.key, a.day, a.class.as_str()).cmp(&(
                    b.kind.as_str(),
                    &b.key,
                    b.day,
                    b.class.as_str(),
                ))
            });
            let mut conn = inner.writer.lock().map_err(failed)?;
            inner.identity.check()?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            {
                let mut add = tx.prepare_cached(&q(rows::ADD_COUNT)).map_err(failed)?;
                for row in &rows {
                    add.execute(rusqlite::params![
                        row.kind.as_str(),
                        row.key,
                        row.day,
                        row.class.as_str(),
                        row.count
                    ])
                    .map_err(failed)?;
                }
            }
            inner.identity.check()?;
            tx.commit().map_err(|e| StoreError::Failed(format!("commit: {e}")))
        })
        .await
        .ok_or_else(|| StoreError::Failed("the flush thread stopped".into()))?
    }

    async fn counts(&self, selection: CountSelection, from_day: i32, to_day: i32) -> Result<Vec<CountRow>, StoreError> {
        self.read(move |conn| {
            let (sql, kind, key) = selection.statement();
            let mut select = conn.prepare_cached(&q(sql)).map_err(failed)?;
            let mut found = select
                .query(rusqlite::params![kind.as_str(), key, from_day, to_day])
                .map_err(failed)?;
            let mut out = Vec::new();
            while let Some(row) = found.next().map_err(failed)? {
                out.push(count_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn prune_counts(&self, before_day: i32) -> Result<u64, StoreError> {
        self.write_unlogged(move |conn| {
            conn.execute(&q(rows::PRUNE_COUNTS), [before_day])
                .map(|n| n as u64)
                .map_err(failed)
        })
        .await
    }
}

fn count_row(row: &rusqlite::Row<'_>) -> Result<CountRow, StoreError> {
    let kind: String = row.get(0).map_err(failed)?;
    Ok(CountRow {
        kind: EntryKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("count of unknown kind {kind:?}")))?,
        key: row.get(1).map_err(failed)?,
        day: row.get(2).map_err(failed)?,
        class: super::count_class(&row.get::<_, String>(3).map_err(failed)?)?,
        count: row.get(4).map_err(failed)?,
    })
}

fn read_head(conn: &Connection) -> Result<Head, StoreError> {
    conn.query_row(rows::HEAD, [], |r| {
        Ok(Head {
            epoch: r.get(0)?,
            position: r.get(1)?,
        })
    })
    .map_err(failed)
}

/// Wake-ups from this process's own commits (nothing else writes the file).
struct LocalWakeups(watch::Receiver<Position>);

#[async_trait]
impl Wakeups for LocalWakeups {
    async fn next(&mut self) -> Result<Wakeup, StoreError> {
        self.0
            .changed()
            .await
            .map_err(|_| StoreError::Unavailable("the store was closed".into()))?;
        Ok(Wakeup::Committed(*self.0.borrow_and_update()))
    }
}

#[async_trait]
impl super::Keys for SqliteStore {
    async fn keys(&self) -> Result<Vec<super::StoredKey>, StoreError> {
        self.read(|conn| {
            let mut select = conn.prepare(&q(rows::SELECT_KEYS)).map_err(failed)?;
            let mut found = select.query([]).map_err(failed)?;
            let mut keys = Vec::new();
            while let Some(row) = found.next().map_err(failed)? {
                keys.push(key_of_row(row).map_err(failed)??);
            }
            Ok(keys)
        })
        .await
    }

    async fn put_key(&self, key: super::StoredKey, expected: Option<String>) -> Result<Committed<()>, StoreError> {
        self.write(move |tx| {
            let previous_key = key_in(tx, &key.id)?;
            let (previous_hash, previous_until) = key.previous.clone().unzip();
            let (statement, last) = match &expected {
                None => (rows::INSERT_KEY, rusqlite::types::Value::Integer(key.created_at)),
                Some(hash) => (rows::UPDATE_KEY, rusqlite::types::Value::Text(hash.clone())),
            };
            let changed = tx
                .execute(
                    &q(statement),
                    rusqlite::params![
                        key.id,
                        key.name,
                        key.role.as_str(),
                        rows::scopes_json(&key.scopes),
                        key.secret_hash,
                        previous_hash,
                        previous_until,
                        key.expires_at,
                        last,
                    ],
                )
                .map_err(failed)?;
            if changed == 0 {
                return Err(StoreError::Conflict);
            }
            let before = previous_key.as_ref();
            let record = Record::key(before, Some(&key));
            Ok(((), vec![Change::Keys(key.id.clone())], vec![record]))
        })
        .await
    }

    async fn delete_key(&self, id: String) -> Result<Committed<()>, StoreError> {
        self.write(move |tx| {
            let before = key_in(tx, &id)?;
            if tx.execute(&q(rows::DELETE_KEY), [&id]).map_err(failed)? == 0 {
                return Err(StoreError::NotFound);
            }
            let record = Record::key(before.as_ref(), None);
            Ok(((), vec![Change::Keys(id)], vec![record]))
        })
        .await
    }

    async fn touch_keys(&self, used: Vec<(String, i64)>) -> Result<(), StoreError> {
        self.write_unlogged(move |conn| {
            let mut touch = conn.prepare_cached(&q(rows::TOUCH_KEY)).map_err(failed)?;
            for (id, at) in &used {
                touch.execute(rusqlite::params![id, at]).map_err(failed)?;
            }
            Ok(())
        })
        .await
    }
}

/// The key `id` as stored, inside a write.
fn key_in(tx: &Transaction<'_>, id: &str) -> Result<Option<super::StoredKey>, StoreError> {
    let mut select = tx.prepare_cached(&q(rows::SELECT_KEY)).map_err(failed)?;
    let mut found = select.query([id]).map_err(failed)?;
    match found.next().map_err(failed)? {
        Some(row) => Ok(Some(key_of_row(row).map_err(failed)??)),
        None => Ok(None),
    }
}

fn key_of_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<super::StoredKey, StoreError>> {
    let role: String = row.get(2)?;
    let scopes: String = row.get(3)?;
    let previous_hash: Option<String> = row.get(5)?;
    let previous_until: Option<i64> = row.get(6)?;
    let (role, scopes) = match (rows::role_of(&role), rows::scopes_of(&scopes)) {
        (Ok(role), Ok(scopes)) => (role, scopes),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    Ok(Ok(super::StoredKey {
        id: row.get(0)?,
        name: row.get(1)?,
        role,
        scopes,
        secret_hash: row.get(4)?,
        previous: previous_hash.zip(previous_until),
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        last_used_at: row.get(9)?,
    }))
}

#[async_trait]
impl super::Certificates for SqliteStore {
    async fn certificates(&self) -> Result<Vec<super::StoredCertificate>, StoreError> {
        self.read(|conn| {
            let mut select = conn.prepare(&q(rows::SELECT_CERTIFICATES)).map_err(failed)?;
            let found = select
                .query_map([], |row| {
                    Ok(super::StoredCertificate {
                        name: row.get(0)?,
                        chain_pem: row.get(1)?,
                        key_pem: row.get(2)?,
                        not_before: row.get(3)?,
                        not_after: row.get(4)?,
                        renew_after: row.get(5)?,
                        issuer: row.get(6)?,
                        updated_at: row.get(7)?,
                    })
                })
                .map_err(failed)?;
            found.collect::<Result<Vec<_>, _>>().map_err(failed)
        })
        .await
    }

    async fn put_certificate(&self, cert: super::StoredCertificate) -> Result<Committed<()>, StoreError> {
        self.write(move |tx| {
            let before: Option<i64> = tx
                .query_row(&q(rows::SELECT_CERTIFICATE_AFTER), [&cert.name], |r| r.get(0))
                .optional()
                .map_err(failed)?;
            tx.execute(
                &q(rows::PUT_CERTIFICATE),
                rusqlite::params![
                    cert.name,
                    cert.chain_pem,
                    cert.key_pem,
                    cert.not_before,
                    cert.not_after,
                    cert.renew_after,
                    cert.issuer,
                    cert.updated_at
                ],
            )
            .map_err(failed)?;
            let record = Record::certificate(before, &cert);
            Ok(((), vec![Change::Certificates(cert.name.clone())], vec![record]))
        })
        .await
    }

    async fn delete_certificate(&self, name: String) -> Result<Committed<()>, StoreError> {
        self.write(move |tx| {
            let before: Option<i64> = tx
                .query_row(&q(rows::SELECT_CERTIFICATE_AFTER), [&name], |r| r.get(0))
                .optional()
                .map_err(failed)?;
            if tx.execute(&q(rows::DELETE_CERTIFICATE), [&name]).map_err(failed)? == 0 {
                return Err(StoreError::NotFound);
            }
            let record = Record::certificate_removed(&name, before);
            Ok(((), vec![Change::Certificates(name)], vec![record]))
        })
        .await
    }

    async fn acme_account(&self, directory: String) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            conn.query_row(&q(rows::SELECT_ACME_ACCOUNT), [&directory], |r| r.get(0))
                .optional()
                .map_err(failed)
        })
        .await
    }

    async fn keep_acme_account(&self, directory: String, credentials: String) -> Result<String, StoreError> {
        self.write_unlogged(move |conn| {
            conn.execute(
                &q(rows::INSERT_ACME_ACCOUNT),
                rusqlite::params![directory, credentials, now_ms()],
            )
            .map_err(failed)?;
            conn.query_row(&q(rows::SELECT_ACME_ACCOUNT), [&directory], |r| r.get(0))
                .map_err(failed)
        })
        .await
    }

    async fn take_acme_lease(&self, holder: String, now_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.write_unlogged(move |conn| {
            conn.execute(&q(rows::TAKE_ACME_LEASE), rusqlite::params![holder, until_ms, now_ms])
                .map(|changed| changed == 1)
                .map_err(failed)
        })
        .await
    }
}

#[async_trait]
impl super::Audit for SqliteStore {
    async fn audit(
        &self,
        query: crate::replication::audit::Query,
    ) -> Result<Vec<crate::replication::audit::Row>, StoreError> {
        self.read(move |conn| {
            let (statement, params) = rows::select_audit(&query);
            let mut select = conn.prepare(&q(&statement)).map_err(failed)?;
            let values: Vec<rusqlite::types::Value> = params
                .into_iter()
                .map(|p| match p {
                    rows::AuditParam::Int(i) => rusqlite::types::Value::Integer(i),
                    rows::AuditParam::Text(t) => rusqlite::types::Value::Text(t),
                })
                .collect();
            let mut found = select.query(rusqlite::params_from_iter(values)).map_err(failed)?;
            let mut lines = Vec::new();
            while let Some(row) = found.next().map_err(failed)? {
                lines.push(audit_row(row).map_err(failed)?);
            }
            Ok(lines)
        })
        .await
    }

    async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write_unlogged(move |conn| {
            conn.execute(&q(rows::PRUNE_AUDIT), [before_ms])
                .map(|n| n as u64)
                .map_err(failed)
        })
        .await
    }
}

fn audit_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<crate::replication::audit::Row> {
    Ok(crate::replication::audit::Row {
        id: row.get(0)?,
        at: row.get(1)?,
        actor: Actor {
            key_id: row.get(2)?,
            key_name: row.get(3)?,
            client: row.get(4)?,
        },
        record: crate::replication::audit::RowRecord {
            action: row.get(5)?,
            kind: row.get(6)?,
            entry: row.get(7)?,
            before: row.get(8)?,
            after: row.get(9)?,
        },
        position: row.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table_file::{parse_line, Item};

    fn entry(line: &str) -> Entry {
        match parse_line(line).unwrap() {
            Item::Entry(e) => e,
            Item::Generate(_) => panic!("no code"),
        }
    }

    #[tokio::test]
    async fn writes_survive_reopening_and_every_write_has_the_next_position() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(!store.initialised().await.unwrap());
        let head = store.head().await.unwrap();
        assert_eq!(head.position, 0);
        let a = entry(
            r#"{"code":"a1","appid":"wx1234567890abcdef","path":"p","query":"x=1","valid_until":"2030-01-01T00:00:00Z","tags":["t"]}"#,
        );
        let put = store.put(a.clone(), WriteMode::Insert).await.unwrap();
        assert!(put.value.created);
        assert_eq!(put.position, 1);
        assert_eq!(store.put(a.clone(), WriteMode::Insert).await, Err(StoreError::Conflict));
        let again = store.put(a.clone(), WriteMode::Upsert).await.unwrap();
        assert!(!again.value.created);
        assert_eq!(again.position, 2, "a refused write takes no position");
        drop(store);

        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(store.initialised().await.unwrap());
        assert_eq!(store.head().await.unwrap().epoch, head.epoch);
        assert_eq!(store.get(&a.key()).await.unwrap().unwrap().entry, a);
        let tagged = ListQuery {
            kind: EntryKind::Code,
            after: None,
            limit: 10,
            tag: Some("t".parse().unwrap()),
        };
        assert_eq!(store.list(tagged).await.unwrap().len(), 1);
        assert_eq!(store.delete(a.key()).await.unwrap().position, 3);
        assert_eq!(store.delete(a.key()).await, Err(StoreError::NotFound));

        let feed = store.changes_since(0, 100).await.unwrap();
        assert_eq!(feed.head.position, 3);
        assert_eq!(feed.oldest, 1);
        let positions: Vec<Position> = feed.changes.iter().map(|c| c.position).collect();
        assert_eq!(positions, [1, 2, 3]);
        assert_eq!(feed.changes[2].change, Change::Delete(a.key()));
        assert_eq!(store.prune_log(1).await.unwrap(), 2);
        assert_eq!(store.changes_since(0, 100).await.unwrap().oldest, 3);
    }

    #[tokio::test]
    async fn no_shm_file_is_mapped_and_readers_see_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store
            .put(
                entry(r#"{"code":"a","appid":"wx1234567890abcdef","path":"p"}"#),
                WriteMode::Upsert,
            )
            .await
            .unwrap();
        assert!(!dir.path().join("qrlaunch.db-shm").exists());
        // A reader connection of the same process sees what the writer wrote.
        assert_eq!(store.head().await.unwrap().position, 1);
    }

    /// A batch keeps every row's columns apart in its one buffer, and a
    /// column of a type no entry has is an error that names the type.
    #[test]
    fn a_row_batch_reads_back_each_rows_columns() {
        use rows::RowReader;
        let db = Connection::open_in_memory().unwrap();
        let mut select = db
            .prepare("SELECT 'é' || 'a', 7, NULL, x'00', 1.5 UNION ALL SELECT '', 0, 'b', 'c', 'd'")
            .unwrap();
        let mut batch = RowBatch::new(EntryKind::Code, select.column_count(), 0);
        let mut found = select.query([]).unwrap();
        while let Some(row) = found.next().unwrap() {
            batch.push(row).unwrap();
        }
        assert_eq!(batch.len(), 2);
        let mut first = batch.row(0);
        assert_eq!(first.text(0).unwrap().as_deref(), Some("éa"));
        assert_eq!(first.int(1).unwrap(), Some(7));
        assert!(first.boolean(1).unwrap());
        assert_eq!(first.text(2).unwrap(), None);
        let blob = first.text(3).unwrap_err().to_string();
        assert!(blob.contains("column 3: text expected, found Blob"), "{blob}");
        let real = first.int(4).unwrap_err().to_string();
        assert!(real.contains("column 4: integer expected, found Real"), "{real}");
        let mut second = batch.row(1);
        assert_eq!(second.text(0).unwrap().as_deref(), Some(""));
        assert!(!second.boolean(1).unwrap());
        assert_eq!(second.text(2).unwrap().as_deref(), Some("b"));
        assert_eq!(second.text(4).unwrap().as_deref(), Some("d"));
        let number = second.text(1).unwrap_err().to_string();
        assert!(number.contains("found Integer"), "{number}");
        assert_eq!(second.text(9).unwrap(), None, "a column the row does not have");
    }
}
