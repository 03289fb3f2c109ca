//! The durable store: the source of truth for codes and rules.
//!
//! The in-memory table is rebuilt from the store at start and updated after
//! each commit; the store is never read on the scan path. [`Store`] is the
//! one small interface the admin API needs, so a PostgreSQL backend can sit
//! beside [`sqlite::SqliteStore`] later; the SQL is kept portable.

pub mod sqlite;

use crate::domain::{EntryPoint, FieldError, LaunchCode, Rule, Schedule};
use crate::table_file::{TableEntry, TableLine};
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An entry as stored, with its bookkeeping times (UNIX milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    pub entry: T,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<T> Stored<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Stored<U> {
        Stored {
            entry: f(self.entry),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// How a write treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or replace.
    Upsert,
    /// Create only; an existing key is a conflict.
    Insert,
}

/// Which kind of entry, for keys and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Code,
    Rule,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the key exists already")]
    Conflict,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database column: {0}")]
    Column(#[from] rusqlite::types::FromSqlError),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is invalid ({0}); was the database edited by hand?")]
    Corrupt(#[from] FieldError),
}

/// What a finished import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub codes: u64,
    pub rules: u64,
}

/// An import in progress: one write transaction. Blocking: it runs on a
/// background thread (see [`crate::background`]), so a million-line import
/// never competes with scans at normal priority. Dropping it without
/// [`Import::commit`] rolls everything back.
pub trait Import: Send {
    /// Writes one entry. In insert mode an existing key is not an error
    /// here: the line is recorded in [`Import::conflicts`] and skipped.
    fn add(&mut self, line: usize, entry: &TableEntry) -> Result<(), StoreError>;
    /// Lines whose key existed already (insert mode), in line order.
    fn conflicts(&self) -> &[usize];
    /// Commits: everything added is on disk when this returns.
    fn commit(self: Box<Self>) -> Result<ImportCounts, StoreError>;
}

/// The operations the admin API needs.
pub trait Store: Send + Sync + 'static {
    /// Calls `sink` with every code, then every rule, as of one moment.
    /// Blocking: call it from a blocking thread. It is the start-up path for
    /// a million entries, so it may use the backend's fastest native reader.
    fn load_all(&self, sink: &mut dyn FnMut(TableEntry)) -> Result<(), StoreError>;
    fn is_empty(&self) -> StoreFuture<'_, bool>;

    fn get_code<'a>(&'a self, code: &'a str) -> StoreFuture<'a, Option<Stored<LaunchCode>>>;
    fn put_code<'a>(&'a self, code: &'a LaunchCode, mode: WriteMode) -> StoreFuture<'a, Stored<LaunchCode>>;
    fn delete_code<'a>(&'a self, code: &'a str) -> StoreFuture<'a, bool>;
    /// Codes in key order, after `after`, at most `limit`.
    fn list_codes<'a>(&'a self, after: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<Stored<LaunchCode>>>;

    /// Rules are keyed by their normalized prefix ([`crate::domain::RulePrefix::key`]).
    fn get_rule<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Stored<Rule>>>;
    fn put_rule<'a>(&'a self, rule: &'a Rule, mode: WriteMode) -> StoreFuture<'a, Stored<Rule>>;
    fn delete_rule<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;
    /// Rules in key order, after the key `after`, at most `limit`.
    fn list_rules<'a>(&'a self, after: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<Stored<Rule>>>;

    /// Sends every code, then every rule, as of one moment (one read
    /// transaction), into `out`; stops early if `out` is closed.
    fn export(&self, out: tokio::sync::mpsc::Sender<TableEntry>) -> StoreFuture<'_, ()>;

    /// Starts an all-or-nothing import. Blocking, like [`Store::load_all`].
    fn begin_import(&self, mode: WriteMode) -> Result<Box<dyn Import>, StoreError>;
}

/// The table file's line for an entry: what export writes and import reads.
pub fn to_line(entry: &TableEntry) -> TableLine {
    let (code, prefix, point, schedule) = match entry {
        TableEntry::Code(c) => (Some(c.code.to_string()), None, &c.entry, &c.schedule),
        TableEntry::Rule(r) => (None, Some(r.prefix.to_string()), &r.entry, &r.schedule),
    };
    TableLine {
        code,
        prefix,
        appid: point.appid.to_string(),
        path: point.path.to_string(),
        query: point.query.to_string(),
        env_version: point.env_version.to_string(),
        fallback_url: point.fallback_url.as_ref().map(ToString::to_string),
        valid_from: schedule.valid_from_rfc3339(),
        valid_until: schedule.valid_until_rfc3339(),
        disabled: schedule.disabled,
    }
}

/// Rebuilds an entry point from stored columns.
pub(crate) fn entry_point(
    appid: &str,
    path: &str,
    query: &str,
    env_version: &str,
    fallback_url: Option<&str>,
) -> Result<EntryPoint, FieldError> {
    Ok(EntryPoint {
        appid: appid.parse()?,
        path: path.parse()?,
        query: query.parse()?,
        env_version: env_version.parse()?,
        fallback_url: fallback_url.map(str::parse).transpose()?,
    })
}

pub(crate) fn schedule(valid_from: Option<i64>, valid_until: Option<i64>, disabled: bool) -> Schedule {
    Schedule {
        valid_from,
        valid_until,
        disabled,
    }
}
