//! The PostgreSQL store (through sqlx), shared by a fleet of nodes.
//!
//! The same schema and change log as SQLite (`src/replication/store/migrations/postgres/`,
//! applied by sqlx's migrator under an advisory lock, so nodes starting
//! together migrate once). A write transaction takes the next position from
//! the `meta` row (its row lock serialises writers, so positions follow
//! commit order) and sends `NOTIFY qrlaunch_changes` with it; NOTIFY is only
//! a wake-up: followers always read the log. Snapshots and log reads run in
//! `REPEATABLE READ` transactions, so the head and the rows they return are
//! of one moment. A whole-table snapshot streams through `COPY … TO STDOUT`;
//! snapshots, imports and count flushes run on an idle-class thread with a
//! runtime and a connection of their own ([`PostgresStore::on_own_connection`]),
//! never on a thread that answers requests.
//!
//! Connection failures are [`StoreError::Unavailable`] (admin writes answer
//! `503`); the pool gives up acquiring after a few seconds, so a database
//! outage never hangs an admin request for long.

use super::rows::{self, entry_from_row, sql, Value};
use super::{
    change_columns, change_from_columns, now_ms, rules, Bulk, Change, ChangeLog, Committed, CountRow, CountSelection,
    Counts, Entries, EntrySink, Feed, Head, ImportLine, ImportSource, ImportSummary, ListQuery, LoggedChange,
    ModifyEachFn, ModifyFn, Position, Put, StartUp, StoreError, TagCount, Wakeup, Wakeups, WriteMode,
};
use crate::model::domain::{Entry, EntryKey, EntryKind, Stored, Tag};
use crate::replication::audit::{Actor, Record};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use std::collections::HashSet;
use std::time::Duration;

/// The channel commits are announced on.
pub const CHANNEL: &str = "qrlaunch_changes";
/// Rows per bulk statement of an import or a count flush.
const BATCH: usize = 1000;

/// A PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    /// For connections of their own (snapshots, notifications).
    options: PgConnectOptions,
    url: String,
    described: String,
    /// A test hook (`QRLAUNCH_TEST_WRITE_PAUSE_MS`): a random pause inside
    /// every write transaction, after its position is taken, to show that
    /// slow transactions cannot reorder the log.
    write_pause: Option<u64>,
}

/// A sqlx error in the store's terms: connection trouble is "unavailable".
fn pg(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // 08: connection exception; 57P01-03: shutting down, cannot connect now.
            if code.starts_with("08") || code.starts_with("57P") {
                StoreError::Unavailable(error.to_string())
            } else {
                StoreError::Failed(error.to_string())
            }
        }
        _ => StoreError::Failed(error.to_string()),
    }
}

/// Whether connecting failed for a reason that waiting does not change: a
/// certificate refused by either side (rustls reports it inside an I/O
/// error), a bad setting, or the server refusing this client (SQLSTATE
/// class 28: no `pg_hba.conf` entry, a wrong password).
fn refused_for_good(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => true,
        // A certificate refused, or a file named by sslrootcert, sslcert
        // or sslkey that cannot be read.
        sqlx::Error::Io(io) => {
            io.get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
                || matches!(
                    io.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                )
        }
        // 28: this client refused; 3D000: no such database.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("28") || code == "3D000"),
        _ => false,
    }
}

/// What went wrong setting up TLS to PostgreSQL, and what to check: the
/// URL's `sslmode` and `sslrootcert` (sqlx with rustls reads both, and
/// `sslcert`/`sslkey` for a client certificate). The URL is shown
/// redacted.
fn tls_advice(url: &str, error: &sqlx::Error) -> String {
    let url = crate::replication::redact::url(url);
    let certificate = match error {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    match error {
        sqlx::Error::Database(_) => {
            return format!(
                "{url}: {error}. The server refused this client: check the database name, the user, the password, \
                 and `sslmode` (a server that takes only TLS refuses sslmode=disable)"
            )
        }
        _ if !certificate => {
            return format!(
                "{url}: {error}. Check the URL's settings and the files its sslrootcert, sslcert and sslkey name \
                 (PEM files this process can read)"
            )
        }
        _ => {}
    }
    format!(
        "{url}: {error}. With sslmode=verify-ca or verify-full, sslrootcert=FILE must name the PEM file of the CA that \
         signed the server's certificate (without it, the platform's roots are used), and verify-full also checks \
         that the URL's host is named in that certificate"
    )
}

impl PostgresStore {
    /// Connects (retrying for a few seconds while the database starts) and
    /// brings the schema up to date.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Failed(format!("{}: {e}", crate::replication::redact::url(url))))?;
        let options = options.application_name("qrlaunch");
        let mut attempt = 0;
        let pool = loop {
            let connected = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(options.clone())
                .await;
            match connected {
                Ok(pool) => break pool,
                // A refused certificate or a refused login does not get
                // better by waiting: say so at once.
                Err(e) if refused_for_good(&e) => return Err(StoreError::Unavailable(tls_advice(url, &e))),
                Err(e) if attempt < 10 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "cannot reach PostgreSQL yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(pg(e)),
            }
        };
        let migrator = sqlx::migrate!("src/replication/store/migrations/postgres");
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        migrator.run(&pool).await.map_err(|e| match e {
            // A migration this build does not have: the database was
            // upgraded by a newer qrlaunch. Migrations only go forward.
            sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::Failed(format!(
                "the database has schema version {version}, newer than this build's {known}: run a newer qrlaunch \
                 (migrations only go forward; upgrade a fleet node by node, README \"Upgrades\")"
            )),
            other => StoreError::Failed(format!("migrating the schema: {other}")),
        })?;
        let write_pause = std::env::var("QRLAUNCH_TEST_WRITE_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&ms| ms > 0);
        Ok(PostgresStore {
            pool,
            options: options.clone(),
            url: url.to_string(),
            described: crate::replication::redact::url(url),
            write_pause,
        })
    }

    /// Starts a write: a transaction holding the next position.
    async fn begin_write(&self) -> Result<(Transaction<'static, Postgres>, Position), StoreError> {
        let mut tx = self.pool.begin().await.map_err(pg)?;
        let position = bump(&mut tx, self.write_pause).await?;
        Ok((tx, position))
    }

    /// Logs `changes` under `position`, writes the audit lines (their
    /// author is the running task's), announces it and commits.
    async fn finish_write(
        &self,
        tx: Transaction<'static, Postgres>,
        position: Position,
        changes: Vec<Change>,
        records: Vec<Record>,
    ) -> Result<(), StoreError> {
        commit_logged(tx, position, changes, &crate::replication::audit::actor(), records).await
    }

    /// Runs `work` on an idle-class thread with a runtime and a connection
    /// of its own: what encodes or decodes a million rows (snapshots,
    /// imports, count flushes) never runs on a thread that answers
    /// requests.
    async fn on_own_connection<T, F>(&self, name: &str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> futures_util::future::LocalBoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let options = self.options.clone();
        crate::replication::background::run(name, move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Failed(format!("a runtime of its own: {e}")))?;
            runtime.block_on(async move {
                use sqlx::Connection;
                let mut conn = PgConnection::connect_with(&options).await.map_err(pg)?;
                let result = work(&mut conn).await;
                let _ = conn.close().await;
                result
            })
        })
        .await
        .ok_or_else(|| StoreError::Failed("the thread stopped".into()))?
    }

    /// A read transaction that sees one moment.
    async fn begin_read(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(pg)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(pg)?;
        Ok(tx)
    }
}

/// Takes the next position: the first statement of every write. (A test
/// hook can pause here, to show slow transactions cannot reorder the log.)
async fn bump(tx: &mut PgConnection, write_pause: Option<u64>) -> Result<Position, StoreError> {
    let position: Position = sqlx::query_scalar(rows::BUMP).fetch_one(&mut *tx).await.map_err(pg)?;
    if let Some(max) = write_pause {
        use rand::Rng;
        let pause = rand::rng().random_range(0..=max);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Ok(position)
}

/// Logs `changes` under `position`, announces it and commits.
async fn commit_logged(
    mut tx: Transaction<'_, Postgres>,
    position: Position,
    changes: Vec<Change>,
    actor: &Actor,
    records: Vec<Record>,
) -> Result<(), StoreError> {
    let logged = rules::to_log(changes)?;
    // One statement for every line (a tag patch may write thousands).
    let (mut actions, mut kinds, mut entries, mut befores, mut afters) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in records {
        actions.push(r.action);
        kinds.push(r.kind);
        entries.push(r.entry);
        befores.push(r.before);
        afters.push(r.after);
    }
    sqlx::query(
        "INSERT INTO audit (at, key_id, key_name, client, action, kind, entry, before, after, position) \
         SELECT $1, $2, $3, $4, a, k, e, b, f, $5 \
         FROM UNNEST($6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS t(a, k, e, b, f)",
    )
    .bind(now_ms())
    .bind(&actor.key_id)
    .bind(&actor.key_name)
    .bind(&actor.client)
    .bind(position)
    .bind(actions)
    .bind(kinds)
    .bind(entries)
    .bind(befores)
    .bind(afters)
    .execute(&mut *tx)
    .await
    .map_err(pg)?;
    let (mut seqs, mut kinds, mut keys, mut lines) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (seq, change) in logged.iter().enumerate() {
        let (kind, key, line) = change_columns(change);
        seqs.push(seq as i32);
        kinds.push(kind.to_string());
        keys.push(key);
        lines.push(line);
    }
    sqlx::query(
        "INSERT INTO changes (position, seq, kind, key, line, committed_at) \
         SELECT $1, s, k, key, l, $2 FROM UNNEST($3::int4[], $4::text[], $5::text[], $6::text[]) AS t(s, k, key, l)",
    )
    .bind(position)
    .bind(now_ms())
    .bind(seqs)
    .bind(kinds)
    .bind(keys)
    .bind(lines)
    .execute(&mut *tx)
    .await
    .map_err(pg)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(position.to_string())
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(|e| match pg(e) {
        StoreError::Failed(m) => StoreError::Failed(format!("commit: {m}")),
        other => other,
    })
}

/// An import in one transaction on `conn`, by [`rules::ImportPlan`].
async fn import_on(
    conn: &mut PgConnection,
    mode: WriteMode,
    lines: ImportSource,
    write_pause: Option<u64>,
    actor: &Actor,
) -> Result<Committed<ImportSummary>, StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await.map_err(pg)?;
    let position = bump(&mut tx, write_pause).await?;
    let now = now_ms();
    let mut plan = rules::ImportPlan::new(mode);
    let mut lines = lines.peekable();
    // The lines come from a file, parsed on a thread of their own.
    while lines.peek().is_some() {
        let batch = lines.by_ref().take(BATCH).collect::<Result<Vec<ImportLine>, _>>()?;
        for kind_batch in plan.batch(batch) {
            let written = bulk_write(&mut tx, kind_batch.kind, &kind_batch.entries, mode, now).await?;
            let written = rules::written_flags(&kind_batch.entries, &written);
            plan.written(kind_batch, &written);
        }
    }
    plan.check_conflicts()?;
    while let Some(generated) = plan.next_generated()? {
        let written = bulk_write(&mut tx, EntryKind::Code, &generated.entries, WriteMode::Insert, now).await?;
        let written = rules::written_flags(&generated.entries, &written);
        plan.generated(generated, &written);
    }
    let (summary, changes) = plan.finish();
    let record = Record::import(&summary, mode.as_str());
    commit_logged(tx, position, changes, actor, vec![record]).await?;
    Ok(Committed {
        value: summary,
        position,
    })
}

/// Adds count rows in one transaction on `conn`.
async fn add_counts_on(conn: &mut PgConnection, rows: Vec<CountRow>) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await.map_err(pg)?;
    for chunk in rows.chunks(BATCH) {
        let kinds: Vec<&str> = chunk.iter().map(|r| r.kind.as_str()).collect();
        let keys: Vec<&str> = chunk.iter().map(|r| r.key.as_str()).collect();
        let days: Vec<i32> = chunk.iter().map(|r| r.day).collect();
        let classes: Vec<&str> = chunk.iter().map(|r| r.class.as_str()).collect();
        let counts: Vec<i64> = chunk.iter().map(|r| r.count).collect();
        sqlx::query(
            "INSERT INTO scan_counts (kind, key, day, class, count) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::text[], $5::int8[]) \
             ON CONFLICT (kind, key, day, class) DO UPDATE SET count = scan_counts.count + excluded.count",
        )
        .bind(kinds)
        .bind(keys)
        .bind(days)
        .bind(classes)
        .bind(counts)
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

fn bind_values<'q>(
    mut query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    values: &'q [Value<'q>],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    for value in values {
        query = match value {
            Value::Text(s) => query.bind(s.as_ref()),
            Value::OptText(s) => query.bind(s.as_deref()),
            Value::OptInt(i) => query.bind(*i),
            Value::Int(i) => query.bind(*i),
            Value::Bool(b) => query.bind(*b),
        };
    }
    query
}

/// A selected row, read by column.
struct PgRowReader<'r>(&'r PgRow);

impl rows::RowReader for PgRowReader<'_> {
    fn text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        self.0.try_get(i).map_err(pg)
    }
    fn int(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        self.0.try_get(i).map_err(pg)
    }
    fn boolean(&mut self, i: usize) -> Result<bool, StoreError> {
        self.0.try_get(i).map_err(pg)
    }
}

fn row_entry(kind: EntryKind, row: &PgRow) -> Result<Stored<Entry>, StoreError> {
    entry_from_row(kind, &mut PgRowReader(row))
}

async fn select_by_key(conn: &mut PgConnection, key: &EntryKey) -> Result<Option<Stored<Entry>>, StoreError> {
    let row = sqlx::query(&rows::select_by_key(key.kind()))
        .bind(key.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(pg)?;
    row.map(|row| row_entry(key.kind(), &row)).transpose()
}

async fn set_tags(conn: &mut PgConnection, entry: &Entry) -> Result<(), StoreError> {
    let Some(tags) = entry.tags() else { return Ok(()) };
    let (kind, key) = (entry.kind().as_str(), entry.key());
    sqlx::query(rows::DELETE_TAGS)
        .bind(kind)
        .bind(key.as_str())
        .execute(&mut *conn)
        .await
        .map_err(pg)?;
    if !tags.is_empty() {
        sqlx::query("INSERT INTO entry_tags (tag, kind, key) SELECT t, $2, $3 FROM UNNEST($1::text[]) AS t ON CONFLICT DO NOTHING")
            .bind(tags.to_strings())
            .bind(kind)
            .bind(key.as_str())
            .execute(&mut *conn)
            .await
            .map_err(pg)?;
    }
    Ok(())
}

async fn upsert(conn: &mut PgConnection, entry: &Entry, created_at: i64, now: i64) -> Result<(), StoreError> {
    let values = rows::upsert_values(entry, created_at, now);
    bind_values(sqlx::query(&sql(entry.kind()).upsert), &values)
        .execute(&mut *conn)
        .await
        .map_err(pg)?;
    set_tags(conn, entry).await
}

/// The columns of `entries` (all of one kind), as PostgreSQL arrays.
enum Column {
    Text(Vec<String>),
    OptText(Vec<Option<String>>),
    OptInt(Vec<Option<i64>>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

fn columns_of(entries: &[Entry], now: i64) -> Vec<Column> {
    let rows: Vec<Vec<Value>> = entries.iter().map(|e| rows::upsert_values(e, now, now)).collect();
    let width = rows.first().map_or(0, Vec::len);
    (0..width)
        .map(|c| match &rows[0][c] {
            Value::Text(_) => Column::Text(
                rows.iter()
                    .map(|r| match &r[c] {
                        Value::Text(s) => s.to_string(),
                        _ => String::new(),
                    })
                    .collect(),
            ),
            Value::OptText(_) => Column::OptText(
                rows.iter()
                    .map(|r| match &r[c] {
                        Value::OptText(s) => s.as_ref().map(|s| s.to_string()),
                        _ => None,
                    })
                    .collect(),
            ),
            Value::OptInt(_) => Column::OptInt(
                rows.iter()
                    .map(|r| match &r[c] {
                        Value::OptInt(i) => *i,
                        _ => None,
                    })
                    .collect(),
            ),
            Value::Int(_) => Column::Int(
                rows.iter()
                    .map(|r| match &r[c] {
                        Value::Int(i) => *i,
                        _ => 0,
                    })
                    .collect(),
            ),
            Value::Bool(_) => Column::Bool(rows.iter().map(|r| matches!(&r[c], Value::Bool(true))).collect()),
        })
        .collect()
}

/// Writes `entries` (all of one kind) in one statement; returns the keys
/// written (in insert mode, the existing ones are not).
async fn bulk_write(
    conn: &mut PgConnection,
    kind: EntryKind,
    entries: &[Entry],
    mode: WriteMode,
    now: i64,
) -> Result<HashSet<String>, StoreError> {
    if entries.is_empty() {
        return Ok(HashSet::new());
    }
    let s = sql(kind);
    let names: Vec<&str> = s.columns.iter().map(|c| c.name).collect();
    let params: Vec<String> = s
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.array))
        .collect();
    let conflict = match mode {
        WriteMode::Upsert => format!("DO UPDATE SET {}", s.update_set),
        WriteMode::Insert => "DO NOTHING".to_string(),
    };
    let statement = format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({}) ON CONFLICT ({}) {conflict} RETURNING {}",
        s.table,
        names.join(", "),
        params.join(", "),
        s.key,
        s.key
    );
    let mut query = sqlx::query_scalar::<_, String>(&statement);
    for column in columns_of(entries, now) {
        query = match column {
            Column::Text(v) => query.bind(v),
            Column::OptText(v) => query.bind(v),
            Column::OptInt(v) => query.bind(v),
            Column::Int(v) => query.bind(v),
            Column::Bool(v) => query.bind(v),
        };
    }
    let written: Vec<String> = query.fetch_all(&mut *conn).await.map_err(pg)?;
    let written: HashSet<String> = written.into_iter().collect();
    // Tags of what was written.
    let tagged: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.tags().is_some() && written.contains(e.key().as_str()))
        .collect();
    if !tagged.is_empty() {
        let keys: Vec<String> = tagged.iter().map(|e| e.key().as_str().to_string()).collect();
        sqlx::query("DELETE FROM entry_tags WHERE kind = $1 AND key = ANY($2)")
            .bind(kind.as_str())
            .bind(&keys)
            .execute(&mut *conn)
            .await
            .map_err(pg)?;
        let (mut tags, mut tag_keys) = (Vec::new(), Vec::new());
        for entry in tagged {
            for tag in entry.tags().into_iter().flat_map(|t| t.iter()) {
                tags.push(tag.to_string());
                tag_keys.push(entry.key().as_str().to_string());
            }
        }
        if !tags.is_empty() {
            sqlx::query(
                "INSERT INTO entry_tags (tag, kind, key) SELECT t, $2, k FROM UNNEST($1::text[], $3::text[]) AS x(t, k) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tags)
            .bind(kind.as_str())
            .bind(tag_keys)
            .execute(&mut *conn)
            .await
            .map_err(pg)?;
        }
    }
    Ok(written)
}

/// Parses one line of `COPY … TO STDOUT` text format into its columns
/// (`None` for `\N`), undoing its backslash escapes.
fn copy_columns(line: &[u8]) -> Vec<Option<String>> {
    line.split(|&b| b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return None;
            }
            let mut out = Vec::with_capacity(field.len());
            let mut i = 0;
            while i < field.len() {
                if field[i] == b'\\' && i + 1 < field.len() {
                    let c = field[i + 1];
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'b' => 8,
                        b'f' => 12,
                        b'v' => 11,
                        other => other,
                    });
                    i += 2;
                } else {
                    out.push(field[i]);
                    i += 1;
                }
            }
            Some(String::from_utf8_lossy(&out).into_owned())
        })
        .collect()
}

/// The columns of one `COPY` text row, read as a selected row.
struct CopyRow(Vec<Option<String>>);

impl rows::RowReader for CopyRow {
    fn text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.0.get_mut(i).and_then(Option::take))
    }
    fn int(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        self.text(i)?
            .map(|v| v.parse::<i64>().map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
    fn boolean(&mut self, i: usize) -> Result<bool, StoreError> {
        Ok(self.text(i)?.as_deref() == Some("t"))
    }
}

/// Turns `COPY` text rows of one kind into entries for a sink, as the
/// stream's messages (a row each, or parts of one) arrive.
struct CopyParser {
    kind: EntryKind,
    pending: Vec<u8>,
}

impl CopyParser {
    fn new(kind: EntryKind) -> CopyParser {
        CopyParser {
            kind,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, chunk: &[u8], sink: &mut dyn FnMut(&Entry)) -> Result<(), StoreError> {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            Self::row(self.kind, &self.pending[start..start + end], sink)?;
            start += end + 1;
        }
        self.pending.drain(..start);
        Ok(())
    }

    fn finish(self, sink: &mut dyn FnMut(&Entry)) -> Result<(), StoreError> {
        Self::row(self.kind, &self.pending, sink)
    }

    fn row(kind: EntryKind, line: &[u8], sink: &mut dyn FnMut(&Entry)) -> Result<(), StoreError> {
        if line.is_empty() {
            return Ok(());
        }
        sink(&entry_from_row(kind, &mut CopyRow(copy_columns(line)))?.entry);
        Ok(())
    }
}

/// A whole-table snapshot in one `REPEATABLE READ` transaction on `conn`:
/// every entry into `sink`, and the head of that moment. Run on a
/// connection of its own ([`PostgresStore::on_own_connection`]), so that
/// reading and decoding the `COPY` stream (a message per row) never runs
/// on a thread that answers requests.
async fn read_snapshot(conn: &mut PgConnection, sink: &mut dyn FnMut(&Entry)) -> Result<Head, StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await.map_err(pg)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
    let head = read_head(&mut tx).await?;
    for kind in EntryKind::ALL {
        let statement = format!("COPY ({}) TO STDOUT", rows::select_all(kind, false));
        let mut parser = CopyParser::new(kind);
        let mut stream = tx.copy_out_raw(&statement).await.map_err(pg)?;
        while let Some(chunk) = stream.try_next().await.map_err(pg)? {
            parser.push(&chunk, sink)?;
        }
        drop(stream);
        parser.finish(sink)?;
    }
    tx.rollback().await.map_err(pg)?;
    Ok(head)
}

fn count_row(row: &PgRow) -> Result<CountRow, StoreError> {
    let kind: String = row.try_get(0).map_err(pg)?;
    Ok(CountRow {
        kind: EntryKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("count of unknown kind {kind:?}")))?,
        key: row.try_get(1).map_err(pg)?,
        day: row.try_get(2).map_err(pg)?,
        class: super::count_class(&row.try_get::<String, _>(3).map_err(pg)?)?,
        count: row.try_get(4).map_err(pg)?,
    })
}

async fn read_head(conn: &mut PgConnection) -> Result<Head, StoreError> {
    let row = sqlx::query(rows::HEAD).fetch_one(&mut *conn).await.map_err(pg)?;
    Ok(Head {
        epoch: row.try_get(0).map_err(pg)?,
        position: row.try_get(1).map_err(pg)?,
    })
}

/// Wake-ups from `LISTEN qrlaunch_changes` on a connection of its own.
struct Listener {
    listener: PgListener,
}

#[async_trait]
impl Wakeups for Listener {
    async fn next(&mut self) -> Result<Wakeup, StoreError> {
        match self.listener.try_recv().await {
            Ok(Some(notification)) => Ok(Wakeup::Committed(notification.payload().parse().unwrap_or(0))),
            // The connection was lost; the next call reconnects and listens
            // again. Whatever was announced meanwhile is missed: catch up.
            Ok(None) => Ok(Wakeup::Reconnected),
            Err(e) => Err(pg(e)),
        }
    }
}

#[async_trait]
impl StartUp for PostgresStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn seeds_example(&self) -> bool {
        false
    }

    async fn backup_into(&self, _file: std::path::PathBuf) -> Result<(), StoreError> {
        Err(StoreError::Rejected(crate::model::domain::FieldError::new(
            "store",
            "a PostgreSQL store is backed up with pg_dump (and restored with pg_restore): README, \"Backup\"",
        )))
    }

    async fn initialised(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar(rows::INITIALISED)
            .fetch_one(&self.pool)
            .await
            .map_err(pg)
    }

    async fn mark_initialised(&self) -> Result<(), StoreError> {
        sqlx::query(rows::MARK_INITIALISED)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(pg)
    }
}

#[async_trait]
impl ChangeLog for PostgresStore {
    async fn head(&self) -> Result<Head, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(pg)?;
        read_head(&mut conn).await
    }

    async fn changes_since(&self, after: Position, max_positions: i64) -> Result<Feed, StoreError> {
        let mut tx = self.begin_read().await?;
        let head = read_head(&mut tx).await?;
        let oldest: Option<Position> = sqlx::query_scalar(rows::OLDEST).fetch_one(&mut *tx).await.map_err(pg)?;
        let found = sqlx::query(rows::FEED)
            .bind(after)
            .bind(after.saturating_add(max_positions))
            .fetch_all(&mut *tx)
            .await
            .map_err(pg)?;
        tx.rollback().await.map_err(pg)?;
        let mut changes = Vec::with_capacity(found.len());
        for row in found {
            let kind: String = row.try_get(1).map_err(pg)?;
            let line: Option<String> = row.try_get(3).map_err(pg)?;
            changes.push(LoggedChange {
                position: row.try_get(0).map_err(pg)?,
                committed_at_ms: row.try_get(4).map_err(pg)?,
                change: change_from_columns(&kind, row.try_get(2).map_err(pg)?, line.as_deref())?,
            });
        }
        Ok(Feed {
            oldest: oldest.unwrap_or(head.position + 1),
            head,
            changes,
        })
    }

    async fn wakeups(&self) -> Result<Box<dyn Wakeups>, StoreError> {
        let mut listener = PgListener::connect(&self.url).await.map_err(pg)?;
        listener.listen(CHANNEL).await.map_err(pg)?;
        Ok(Box::new(Listener { listener }))
    }

    async fn prune_log(&self, keep: i64) -> Result<u64, StoreError> {
        sqlx::query(rows::PRUNE_LOG)
            .bind(keep)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(pg)
    }
}

#[async_trait]
impl Entries for PostgresStore {
    async fn get(&self, key: &EntryKey) -> Result<Option<Stored<Entry>>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(pg)?;
        select_by_key(&mut conn, key).await
    }

    async fn tags(&self) -> Result<Vec<TagCount>, StoreError> {
        let found: Vec<(String, String, i64)> = sqlx::query_as(rows::TAG_COUNTS)
            .fetch_all(&self.pool)
            .await
            .map_err(pg)?;
        Ok(TagCount::fold(found))
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Stored<Entry>>, StoreError> {
        let statement = rows::list_page(query.kind, query.tag.is_some());
        let mut select = sqlx::query(&statement)
            .bind(query.after.unwrap_or_default())
            .bind(i64::from(query.limit));
        if let Some(tag) = &query.tag {
            select = select.bind(tag.as_str());
        }
        let found = select.fetch_all(&self.pool).await.map_err(pg)?;
        found.iter().map(|row| row_entry(query.kind, row)).collect()
    }

    async fn put(&self, entry: Entry, mode: WriteMode) -> Result<Committed<Put>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let now = now_ms();
        let existing = select_by_key(&mut tx, &entry.key()).await?;
        let (created_at, created) = rules::put(existing.as_ref(), mode, now)?;
        upsert(&mut tx, &entry, created_at, now).await?;
        let change = Change::Put(entry.clone());
        let record = Record::put(existing.as_ref(), &entry);
        self.finish_write(tx, position, vec![change], vec![record]).await?;
        Ok(Committed {
            value: rules::put_answer(entry, created_at, created, now),
            position,
        })
    }

    async fn modify(&self, key: EntryKey, change: ModifyFn) -> Result<Committed<Stored<Entry>>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let current = select_by_key(&mut tx, &key).await?.ok_or(StoreError::NotFound)?;
        let before = current.entry.clone();
        let (entry, created_at) = rules::modified(current, change)?;
        let now = now_ms();
        upsert(&mut tx, &entry, created_at, now).await?;
        let record = Record::patch(&before, &entry);
        self.finish_write(tx, position, vec![Change::Put(entry.clone())], vec![record])
            .await?;
        Ok(Committed {
            value: Stored {
                entry,
                created_at,
                updated_at: now,
            },
            position,
        })
    }

    async fn modify_tagged(
        &self,
        kinds: Vec<EntryKind>,
        tag: Tag,
        change: ModifyEachFn,
    ) -> Result<Committed<usize>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let now = now_ms();
        let mut count = 0;
        let mut changes = rules::Changes::default();
        let mut records = Vec::new();
        for kind in kinds {
            let found = sqlx::query(&rows::select_tagged(kind))
                .bind(kind.as_str())
                .bind(tag.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(pg)?;
            count += found.len();
            for row in &found {
                let current = row_entry(kind, row)?;
                let before = current.entry.clone();
                let (entry, created_at) = rules::modified(current, &change)?;
                upsert(&mut tx, &entry, created_at, now).await?;
                records.push(Record::patch(&before, &entry));
                changes.push(Change::Put(entry));
            }
        }
        self.finish_write(tx, position, changes.into_inner(), records).await?;
        Ok(Committed { value: count, position })
    }

    async fn delete(&self, key: EntryKey) -> Result<Committed<()>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let before = select_by_key(&mut tx, &key).await?.ok_or(StoreError::NotFound)?;
        let deleted = sqlx::query(&rows::delete_by_key(key.kind()))
            .bind(key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(pg)?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(rows::DELETE_TAGS)
            .bind(key.kind().as_str())
            .bind(key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(pg)?;
        self.finish_write(
            tx,
            position,
            vec![Change::Delete(key)],
            vec![Record::delete(&before.entry)],
        )
        .await?;
        Ok(Committed { value: (), position })
    }
}

/// The planner's estimate of the codes (`-1`: never analysed).
const ESTIMATE_CODES: &str = "SELECT GREATEST(reltuples, 0)::int8 FROM pg_class WHERE oid = 'codes'::regclass";

#[async_trait]
impl Bulk for PostgresStore {
    async fn snapshot(&self, mut sink: EntrySink) -> Result<Head, StoreError> {
        self.on_own_connection("qrlaunch-snapshot", move |conn| {
            Box::pin(async move { read_snapshot(conn, &mut *sink).await })
        })
        .await
    }

    /// PostgreSQL's own estimate (`pg_class.reltuples`, kept by
    /// autovacuum): free, where `COUNT(*)` would scan the table at normal
    /// priority on the database's cores just as the snapshot starts. `0`
    /// before the table was first analysed.
    async fn code_count(&self) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(pg)?;
        let n: i64 = sqlx::query_scalar(ESTIMATE_CODES)
            .fetch_one(&mut *conn)
            .await
            .map_err(pg)?;
        Ok(n.max(0) as u64)
    }

    async fn import(&self, mode: WriteMode, lines: ImportSource) -> Result<Committed<ImportSummary>, StoreError> {
        let pause = self.write_pause;
        let actor = crate::replication::audit::actor();
        let lines = super::read_ahead(lines);
        self.on_own_connection("qrlaunch-import", move |conn| {
            Box::pin(async move { import_on(conn, mode, lines, pause, &actor).await })
        })
        .await
    }

    async fn export(&self, out: tokio::sync::mpsc::Sender<Entry>) -> Result<(), StoreError> {
        let mut tx = self.begin_read().await?;
        for kind in EntryKind::ALL {
            let statement = rows::select_all(kind, true);
            let mut rows = sqlx::query(&statement).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(pg)? {
                if out.send(row_entry(kind, &row)?.entry).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Counts for PostgresStore {
    async fn add_counts(&self, rows: Vec<CountRow>) -> Result<(), StoreError> {
        self.on_own_connection("qrlaunch-flush", move |conn| Box::pin(add_counts_on(conn, rows)))
            .await
    }

    async fn counts(&self, selection: CountSelection, from_day: i32, to_day: i32) -> Result<Vec<CountRow>, StoreError> {
        let (statement, kind, key) = selection.statement();
        let found = sqlx::query(statement)
            .bind(kind.as_str())
            .bind(key)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(&self.pool)
            .await
            .map_err(pg)?;
        found.iter().map(count_row).collect()
    }

    async fn prune_counts(&self, before_day: i32) -> Result<u64, StoreError> {
        sqlx::query(rows::PRUNE_COUNTS)
            .bind(before_day)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(pg)
    }
}

#[async_trait]
impl super::Keys for PostgresStore {
    async fn keys(&self) -> Result<Vec<super::StoredKey>, StoreError> {
        let rows = sqlx::query(rows::SELECT_KEYS).fetch_all(&self.pool).await.map_err(pg)?;
        rows.iter().map(key_of_row).collect()
    }

    async fn put_key(&self, key: super::StoredKey, expected: Option<String>) -> Result<Committed<()>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let previous_key = key_in(&mut tx, &key.id).await?;
        let (previous_hash, previous_until) = key.previous.clone().unzip();
        let query = sqlx::query(if expected.is_none() {
            rows::INSERT_KEY
        } else {
            rows::UPDATE_KEY
        })
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(rows::scopes_json(&key.scopes))
        .bind(&key.secret_hash)
        .bind(previous_hash)
        .bind(previous_until)
        .bind(key.expires_at);
        let query = match &expected {
            None => query.bind(key.created_at),
            Some(hash) => query.bind(hash),
        };
        let changed = query.execute(&mut *tx).await.map_err(pg)?.rows_affected();
        if changed == 0 {
            return Err(StoreError::Conflict);
        }
        let record = Record::key(previous_key.as_ref(), Some(&key));
        self.finish_write(tx, position, vec![Change::Keys(key.id.clone())], vec![record])
            .await?;
        Ok(Committed { value: (), position })
    }

    async fn delete_key(&self, id: String) -> Result<Committed<()>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let before = key_in(&mut tx, &id).await?;
        let deleted = sqlx::query(rows::DELETE_KEY)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(pg)?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        let record = Record::key(before.as_ref(), None);
        self.finish_write(tx, position, vec![Change::Keys(id)], vec![record])
            .await?;
        Ok(Committed { value: (), position })
    }

    async fn touch_keys(&self, used: Vec<(String, i64)>) -> Result<(), StoreError> {
        for (id, at) in used {
            sqlx::query(rows::TOUCH_KEY)
                .bind(id)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(pg)?;
        }
        Ok(())
    }
}

#[async_trait]
impl super::Certificates for PostgresStore {
    async fn certificates(&self) -> Result<Vec<super::StoredCertificate>, StoreError> {
        let found = sqlx::query(rows::SELECT_CERTIFICATES)
            .fetch_all(&self.pool)
            .await
            .map_err(pg)?;
        found
            .iter()
            .map(|row| {
                Ok(super::StoredCertificate {
                    name: row.try_get(0).map_err(pg)?,
                    chain_pem: row.try_get(1).map_err(pg)?,
                    key_pem: row.try_get(2).map_err(pg)?,
                    not_before: row.try_get(3).map_err(pg)?,
                    not_after: row.try_get(4).map_err(pg)?,
                    renew_after: row.try_get(5).map_err(pg)?,
                    issuer: row.try_get(6).map_err(pg)?,
                    updated_at: row.try_get(7).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn put_certificate(&self, cert: super::StoredCertificate) -> Result<Committed<()>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let before: Option<i64> = sqlx::query_scalar(rows::SELECT_CERTIFICATE_AFTER)
            .bind(&cert.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(pg)?;
        sqlx::query(rows::PUT_CERTIFICATE)
            .bind(&cert.name)
            .bind(&cert.chain_pem)
            .bind(&cert.key_pem)
            .bind(cert.not_before)
            .bind(cert.not_after)
            .bind(cert.renew_after)
            .bind(&cert.issuer)
            .bind(cert.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(pg)?;
        let record = Record::certificate(before, &cert);
        self.finish_write(
            tx,
            position,
            vec![Change::Certificates(cert.name.clone())],
            vec![record],
        )
        .await?;
        Ok(Committed { value: (), position })
    }

    async fn delete_certificate(&self, name: String) -> Result<Committed<()>, StoreError> {
        let (mut tx, position) = self.begin_write().await?;
        let before: Option<i64> = sqlx::query_scalar(rows::SELECT_CERTIFICATE_AFTER)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(pg)?;
        let deleted = sqlx::query(rows::DELETE_CERTIFICATE)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(pg)?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        let record = Record::certificate_removed(&name, before);
        self.finish_write(tx, position, vec![Change::Certificates(name)], vec![record])
            .await?;
        Ok(Committed { value: (), position })
    }

    async fn acme_account(&self, directory: String) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(rows::SELECT_ACME_ACCOUNT)
            .bind(directory)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg)
    }

    async fn keep_acme_account(&self, directory: String, credentials: String) -> Result<String, StoreError> {
        sqlx::query(rows::INSERT_ACME_ACCOUNT)
            .bind(&directory)
            .bind(credentials)
            .bind(super::now_ms())
            .execute(&self.pool)
            .await
            .map_err(pg)?;
        sqlx::query_scalar(rows::SELECT_ACME_ACCOUNT)
            .bind(directory)
            .fetch_one(&self.pool)
            .await
            .map_err(pg)
    }

    async fn take_acme_lease(&self, holder: String, now_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        sqlx::query(rows::TAKE_ACME_LEASE)
            .bind(holder)
            .bind(until_ms)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected() == 1)
            .map_err(pg)
    }
}

/// The key `id` as stored, inside a write (writes are serialised by the
/// position row, so it cannot change before the commit).
async fn key_in(tx: &mut PgConnection, id: &str) -> Result<Option<super::StoredKey>, StoreError> {
    let row = sqlx::query(rows::SELECT_KEY)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(pg)?;
    row.as_ref().map(key_of_row).transpose()
}

fn key_of_row(row: &PgRow) -> Result<super::StoredKey, StoreError> {
    let get = |e: sqlx::Error| StoreError::Corrupt(format!("api_keys row: {e}"));
    let previous_hash: Option<String> = row.try_get(5).map_err(get)?;
    let previous_until: Option<i64> = row.try_get(6).map_err(get)?;
    Ok(super::StoredKey {
        id: row.try_get(0).map_err(get)?,
        name: row.try_get(1).map_err(get)?,
        role: rows::role_of(row.try_get::<&str, _>(2).map_err(get)?)?,
        scopes: rows::scopes_of(row.try_get::<&str, _>(3).map_err(get)?)?,
        secret_hash: row.try_get(4).map_err(get)?,
        previous: previous_hash.zip(previous_until),
        created_at: row.try_get(7).map_err(get)?,
        expires_at: row.try_get(8).map_err(get)?,
        last_used_at: row.try_get(9).map_err(get)?,
    })
}

#[async_trait]
impl super::Audit for PostgresStore {
    async fn audit(
        &self,
        query: crate::replication::audit::Query,
    ) -> Result<Vec<crate::replication::audit::Row>, StoreError> {
        let (statement, params) = rows::select_audit(&query);
        let mut select = sqlx::query(&statement);
        for param in params {
            select = match param {
                rows::AuditParam::Int(i) => select.bind(i),
                rows::AuditParam::Text(t) => select.bind(t),
            };
        }
        let rows = select.fetch_all(&self.pool).await.map_err(pg)?;
        rows.iter()
            .map(|row| {
                let get = |e: sqlx::Error| StoreError::Corrupt(format!("audit row: {e}"));
                Ok(crate::replication::audit::Row {
                    id: row.try_get(0).map_err(get)?,
                    at: row.try_get(1).map_err(get)?,
                    actor: Actor {
                        key_id: row.try_get(2).map_err(get)?,
                        key_name: row.try_get(3).map_err(get)?,
                        client: row.try_get(4).map_err(get)?,
                    },
                    record: crate::replication::audit::RowRecord {
                        action: row.try_get(5).map_err(get)?,
                        kind: row.try_get(6).map_err(get)?,
                        entry: row.try_get(7).map_err(get)?,
                        before: row.try_get(8).map_err(get)?,
                        after: row.try_get(9).map_err(get)?,
                    },
                    position: row.try_get(10).map_err(get)?,
                })
            })
            .collect()
    }

    async fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        sqlx::query(rows::PRUNE_AUDIT)
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(pg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_fields_are_unescaped() {
        assert_eq!(
            copy_columns(b"a\\tb\t\\N\tc\\\\d\tx\\ny"),
            [Some("a\tb".into()), None, Some("c\\d".into()), Some("x\ny".into())]
        );
        assert_eq!(
            crate::replication::redact::url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
