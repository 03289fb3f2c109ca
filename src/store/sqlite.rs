//! The embedded SQLite store (through sqlx).
//!
//! WAL journal with `synchronous=FULL`: a commit is on disk (the WAL is
//! fsynced) before the call returns, so an acknowledged write survives a
//! crash or power loss. Writes are few and serialized by the admin layer;
//! reads of the admin API run beside them thanks to WAL.

use super::{entry_point, schedule, Import, ImportCounts, Store, StoreError, StoreFuture, Stored, WriteMode};
use crate::domain::{LaunchCode, Rule};
use crate::table_file::TableEntry;
use futures_util::TryStreamExt;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Columns shared by both tables, in bind order.
const ENTRY_COLUMNS: &str =
    "appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, created_at, updated_at";
const UPDATE_ENTRY: &str = "appid = excluded.appid, path = excluded.path, query = excluded.query, \
     env_version = excluded.env_version, fallback_url = excluded.fallback_url, valid_from = excluded.valid_from, \
     valid_until = excluded.valid_until, disabled = excluded.disabled, updated_at = excluded.updated_at";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file, for [`Store::load_all`]'s native reader.
    path: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) `dir/qrlaunch.db` and brings its schema up to date.
    pub async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let path = dir.join("qrlaunch.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        Ok(SqliteStore { pool, path })
    }
}

/// One of the two tables and its key column.
#[derive(Clone, Copy)]
struct TableSpec {
    name: &'static str,
    key: &'static str,
}

const CODES: TableSpec = TableSpec {
    name: "codes",
    key: "code",
};
const RULES: TableSpec = TableSpec {
    name: "rules",
    key: "prefix_key",
};

impl SqliteStore {
    async fn by_key(&self, table: TableSpec, key: &str) -> Result<Option<SqliteRow>, StoreError> {
        let sql = format!("SELECT * FROM {} WHERE {} = ?", table.name, table.key);
        Ok(sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await?)
    }

    async fn delete_by_key(&self, table: TableSpec, key: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE {} = ?", table.name, table.key);
        Ok(sqlx::query(&sql).bind(key).execute(&self.pool).await?.rows_affected() > 0)
    }

    /// Keyset pagination: rows after `after` in key order.
    async fn page(&self, table: TableSpec, after: Option<&str>, limit: u32) -> Result<Vec<SqliteRow>, StoreError> {
        let sql = format!(
            "SELECT * FROM {0} WHERE {1} > ? ORDER BY {1} LIMIT ?",
            table.name, table.key
        );
        Ok(sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Runs an INSERT built up to its conflict clause; no row back means the
    /// key existed (insert mode).
    async fn returning_times<T>(&self, mut q: QueryBuilder<'_, Sqlite>, entry: T) -> Result<Stored<T>, StoreError> {
        q.push(" RETURNING created_at, updated_at");
        let row = q
            .build()
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::Conflict)?;
        Ok(Stored {
            entry,
            created_at: row.try_get(0)?,
            updated_at: row.try_get(1)?,
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn code_from_row(row: &SqliteRow) -> Result<Stored<LaunchCode>, StoreError> {
    let code: String = row.try_get("code")?;
    let entry = LaunchCode {
        code: code.parse()?,
        entry: point_from_row(row)?,
        schedule: schedule_from_row(row)?,
    };
    Ok(Stored {
        entry,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn rule_from_row(row: &SqliteRow) -> Result<Stored<Rule>, StoreError> {
    let prefix: String = row.try_get("prefix")?;
    let entry = Rule {
        prefix: prefix.parse()?,
        entry: point_from_row(row)?,
        schedule: schedule_from_row(row)?,
    };
    Ok(Stored {
        entry,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn point_from_row(row: &SqliteRow) -> Result<crate::domain::EntryPoint, StoreError> {
    Ok(entry_point(
        row.try_get("appid")?,
        row.try_get("path")?,
        row.try_get("query")?,
        row.try_get("env_version")?,
        row.try_get("fallback_url")?,
    )?)
}

fn schedule_from_row(row: &SqliteRow) -> Result<crate::domain::Schedule, StoreError> {
    Ok(schedule(
        row.try_get("valid_from")?,
        row.try_get("valid_until")?,
        row.try_get("disabled")?,
    ))
}

/// The entry point and schedule columns of a rusqlite row, from `first` on.
fn entry_from_native(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> Result<(crate::domain::EntryPoint, crate::domain::Schedule), StoreError> {
    let text = |i: usize| row.get_ref(first + i).and_then(|v| Ok(v.as_str()?));
    let point = entry_point(
        text(0)?,
        text(1)?,
        text(2)?,
        text(3)?,
        row.get_ref(first + 4)?.as_str_or_null()?,
    )?;
    let schedule = schedule(row.get(first + 5)?, row.get(first + 6)?, row.get(first + 7)?);
    Ok((point, schedule))
}

/// Binds the shared columns of an entry, in [`ENTRY_COLUMNS`] order.
fn push_entry_binds<'q>(
    b: &mut sqlx::query_builder::Separated<'_, 'q, Sqlite, &'static str>,
    point: &'q crate::domain::EntryPoint,
    schedule: &crate::domain::Schedule,
    now: i64,
) {
    b.push_bind(point.appid.as_str())
        .push_bind(point.path.as_str())
        .push_bind(point.query.as_str())
        .push_bind(point.env_version.as_str())
        .push_bind(point.fallback_url.as_ref().map(|u| u.as_str()))
        .push_bind(schedule.valid_from)
        .push_bind(schedule.valid_until)
        .push_bind(schedule.disabled)
        .push_bind(now)
        .push_bind(now);
}

fn on_conflict(mode: WriteMode, key_column: &str) -> String {
    match mode {
        WriteMode::Upsert => format!(" ON CONFLICT ({key_column}) DO UPDATE SET {UPDATE_ENTRY}"),
        WriteMode::Insert => format!(" ON CONFLICT ({key_column}) DO NOTHING"),
    }
}

impl Store for SqliteStore {
    fn load_all(&self, sink: &mut dyn FnMut(TableEntry)) -> Result<(), StoreError> {
        // sqlx decodes a row in about 4 µs (owned values, an async hop per
        // row); rusqlite borrows column text straight from SQLite in well
        // under one, which is what keeps a million-code start-up within 3 s.
        // Same bundled libsqlite3, same file, read-only, one transaction.
        use rusqlite::OpenFlags;
        let mut conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let tx = conn.transaction()?;
        {
            let columns = "appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled";
            let mut select = tx.prepare(&format!("SELECT code, {columns} FROM codes"))?;
            let mut rows = select.query([])?;
            while let Some(row) = rows.next()? {
                let code = row.get_ref(0)?.as_str()?.parse()?;
                let (entry, schedule) = entry_from_native(row, 1)?;
                sink(TableEntry::Code(LaunchCode { code, entry, schedule }));
            }
            let mut select = tx.prepare(&format!("SELECT prefix, {columns} FROM rules"))?;
            let mut rows = select.query([])?;
            while let Some(row) = rows.next()? {
                let prefix = row.get_ref(0)?.as_str()?.parse()?;
                let (entry, schedule) = entry_from_native(row, 1)?;
                sink(TableEntry::Rule(Rule {
                    prefix,
                    entry,
                    schedule,
                }));
            }
        }
        tx.rollback()?;
        Ok(())
    }

    fn is_empty(&self) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM codes LIMIT 1)) + (SELECT COUNT(*) FROM (SELECT 1 FROM rules LIMIT 1)) AS n",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get::<i64, _>("n")? == 0)
        })
    }

    fn get_code<'a>(&'a self, code: &'a str) -> StoreFuture<'a, Option<Stored<LaunchCode>>> {
        Box::pin(async move { self.by_key(CODES, code).await?.as_ref().map(code_from_row).transpose() })
    }

    fn put_code<'a>(&'a self, code: &'a LaunchCode, mode: WriteMode) -> StoreFuture<'a, Stored<LaunchCode>> {
        Box::pin(async move {
            let mut q = QueryBuilder::new(format!("INSERT INTO codes (code, {ENTRY_COLUMNS}) "));
            q.push_values(std::iter::once(code), |mut b, c| {
                b.push_bind(c.code.as_str());
                push_entry_binds(&mut b, &c.entry, &c.schedule, now_ms());
            });
            q.push(on_conflict(mode, "code"));
            self.returning_times(q, code.clone()).await
        })
    }

    fn delete_code<'a>(&'a self, code: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(self.delete_by_key(CODES, code))
    }

    fn list_codes<'a>(&'a self, after: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<Stored<LaunchCode>>> {
        Box::pin(async move {
            self.page(CODES, after, limit)
                .await?
                .iter()
                .map(code_from_row)
                .collect()
        })
    }

    fn get_rule<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Stored<Rule>>> {
        Box::pin(async move { self.by_key(RULES, key).await?.as_ref().map(rule_from_row).transpose() })
    }

    fn put_rule<'a>(&'a self, rule: &'a Rule, mode: WriteMode) -> StoreFuture<'a, Stored<Rule>> {
        Box::pin(async move {
            let mut q = QueryBuilder::new(format!("INSERT INTO rules (prefix_key, prefix, {ENTRY_COLUMNS}) "));
            q.push_values(std::iter::once(rule), |mut b, r| {
                b.push_bind(r.prefix.key()).push_bind(r.prefix.as_str());
                push_entry_binds(&mut b, &r.entry, &r.schedule, now_ms());
            });
            q.push(on_conflict(mode, "prefix_key"));
            if mode == WriteMode::Upsert {
                // A new spelling of an existing prefix replaces the old spelling too.
                q.push(", prefix = excluded.prefix");
            }
            self.returning_times(q, rule.clone()).await
        })
    }

    fn delete_rule<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(self.delete_by_key(RULES, key))
    }

    fn list_rules<'a>(&'a self, after: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<Stored<Rule>>> {
        Box::pin(async move {
            self.page(RULES, after, limit)
                .await?
                .iter()
                .map(rule_from_row)
                .collect()
        })
    }

    fn export(&self, out: tokio::sync::mpsc::Sender<TableEntry>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            {
                let mut rows = sqlx::query("SELECT * FROM codes ORDER BY code").fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    if out.send(TableEntry::Code(code_from_row(&row)?.entry)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            {
                let mut rows = sqlx::query("SELECT * FROM rules ORDER BY prefix_key").fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    if out.send(TableEntry::Rule(rule_from_row(&row)?.entry)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            tx.rollback().await?;
            Ok(())
        })
    }

    fn begin_import(&self, mode: WriteMode) -> Result<Box<dyn Import>, StoreError> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")?;
        Ok(Box::new(SqliteImport {
            conn,
            mode,
            now: now_ms(),
            conflicts: Vec::new(),
            counts: ImportCounts::default(),
            open: true,
        }))
    }
}

/// One import transaction on its own rusqlite connection: prepared
/// statements, one row at a time (about a microsecond each), and the
/// statement's change count tells an insert-mode conflict apart.
struct SqliteImport {
    conn: rusqlite::Connection,
    mode: WriteMode,
    now: i64,
    conflicts: Vec<usize>,
    counts: ImportCounts,
    /// Whether the transaction still needs a rollback on drop.
    open: bool,
}

impl SqliteImport {
    fn statement(&self, table: &str, key_columns: &str, key_binds: &str, conflict_key: &str) -> String {
        let mut sql = format!(
            "INSERT INTO {table} ({key_columns}, {ENTRY_COLUMNS}) VALUES ({key_binds}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
            on_conflict(self.mode, conflict_key)
        );
        if table == "rules" && self.mode == WriteMode::Upsert {
            sql.push_str(", prefix = excluded.prefix");
        }
        sql
    }
}

impl Import for SqliteImport {
    fn add(&mut self, line: usize, entry: &TableEntry) -> Result<(), StoreError> {
        use rusqlite::params;
        let now = self.now;
        let changed = match entry {
            TableEntry::Code(c) => {
                let sql = self.statement("codes", "code", "?", "code");
                let (p, s) = (&c.entry, &c.schedule);
                self.conn.prepare_cached(&sql)?.execute(params![
                    c.code.as_str(),
                    p.appid.as_str(),
                    p.path.as_str(),
                    p.query.as_str(),
                    p.env_version.as_str(),
                    p.fallback_url.as_ref().map(|u| u.as_str()),
                    s.valid_from,
                    s.valid_until,
                    s.disabled,
                    now,
                    now
                ])?
            }
            TableEntry::Rule(r) => {
                let sql = self.statement("rules", "prefix_key, prefix", "?, ?", "prefix_key");
                let (p, s) = (&r.entry, &r.schedule);
                self.conn.prepare_cached(&sql)?.execute(params![
                    r.prefix.key(),
                    r.prefix.as_str(),
                    p.appid.as_str(),
                    p.path.as_str(),
                    p.query.as_str(),
                    p.env_version.as_str(),
                    p.fallback_url.as_ref().map(|u| u.as_str()),
                    s.valid_from,
                    s.valid_until,
                    s.disabled,
                    now,
                    now
                ])?
            }
        };
        match (changed, entry) {
            (0, _) => self.conflicts.push(line),
            (_, TableEntry::Code(_)) => self.counts.codes += 1,
            (_, TableEntry::Rule(_)) => self.counts.rules += 1,
        }
        Ok(())
    }

    fn conflicts(&self) -> &[usize] {
        &self.conflicts
    }

    fn commit(mut self: Box<Self>) -> Result<ImportCounts, StoreError> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(self.counts)
    }
}

impl Drop for SqliteImport {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_file::parse_line;

    fn code(line: &str) -> LaunchCode {
        match parse_line(line).unwrap() {
            TableEntry::Code(c) => c,
            TableEntry::Rule(_) => panic!("not a code"),
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("qrlaunch-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn writes_survive_reopening_and_insert_mode_conflicts() {
        let dir = temp_dir("reopen");
        let store = SqliteStore::open(&dir).await.unwrap();
        assert!(store.is_empty().await.unwrap());
        let a = code(
            r#"{"code":"a1","appid":"wx1234567890abcdef","path":"p","query":"x=1","valid_until":"2030-01-01T00:00:00Z"}"#,
        );
        let stored = store.put_code(&a, WriteMode::Insert).await.unwrap();
        assert_eq!(stored.created_at, stored.updated_at);
        assert!(matches!(
            store.put_code(&a, WriteMode::Insert).await,
            Err(StoreError::Conflict)
        ));
        drop(store);

        let store = SqliteStore::open(&dir).await.unwrap();
        let got = store.get_code("a1").await.unwrap().unwrap();
        assert_eq!(got.entry, a);
        let mut changed = a.clone();
        changed.entry.query = "x=2".parse().unwrap();
        let again = store.put_code(&changed, WriteMode::Upsert).await.unwrap();
        assert_eq!(again.created_at, stored.created_at);
        assert!(store.delete_code("a1").await.unwrap());
        assert!(!store.delete_code("a1").await.unwrap());
        assert!(store.get_code("a1").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_uncommitted_import_leaves_nothing_and_pages_are_stable() {
        let dir = temp_dir("import");
        let store = SqliteStore::open(&dir).await.unwrap();
        let mut import = store.begin_import(WriteMode::Insert).unwrap();
        for i in 0..1_200 {
            let line = format!(r#"{{"code":"c{i:05}","appid":"wx1234567890abcdef","path":"p"}}"#);
            import.add(i + 1, &parse_line(&line).unwrap()).unwrap();
        }
        drop(import);
        assert!(store.is_empty().await.unwrap());

        let mut import = store.begin_import(WriteMode::Insert).unwrap();
        for i in 0..1_200 {
            let line = format!(r#"{{"code":"c{i:05}","appid":"wx1234567890abcdef","path":"p"}}"#);
            import.add(i + 1, &parse_line(&line).unwrap()).unwrap();
        }
        let dup = r#"{"code":"c00007","appid":"wx1234567890abcdef","path":"q"}"#;
        import.add(1_201, &parse_line(dup).unwrap()).unwrap();
        assert_eq!(import.conflicts(), [1_201]);
        let counts = import.commit().unwrap();
        assert_eq!(counts.codes, 1_200);

        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_codes(after.as_deref(), 500).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = Some(page.last().unwrap().entry.code.to_string());
            seen.extend(page.into_iter().map(|s| s.entry.code.to_string()));
        }
        assert_eq!(seen.len(), 1_200);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
