//! Columns ⇄ entries, shared by both backends. Each entry table's columns
//! are listed once ([`KindSql::columns`]); the select list, the upsert and
//! insert statements, the bulk-write types, the values of an entry and the
//! reading of a row are all derived from that list, so a new field is a
//! line here and a migration, nothing else. Each backend only moves its
//! driver's values in and out.

use super::StoreError;
use crate::model::domain::{Entry, EntryKind, EntryPoint, FieldError, Line, Schedule, Stored, Tags};
use std::borrow::Cow;
use std::sync::LazyLock;

/// One column of an entry table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub name: &'static str,
    /// Its PostgreSQL array type, for bulk writes (`UNNEST`).
    pub array: &'static str,
}

const fn column(name: &'static str, array: &'static str) -> Column {
    Column { name, array }
}

/// The columns an entry point (a code's or a rule's) adds.
macro_rules! point_columns {
    () => {
        [
            column("appid", "text[]"),
            column("path", "text[]"),
            column("query", "text[]"),
            column("env_version", "text[]"),
            column("fallback_url", "text[]"),
            column("valid_from", "int8[]"),
            column("valid_until", "int8[]"),
            column("disabled", "bool[]"),
            column("tags", "text[]"),
        ]
    };
}

const CREATED_AT: Column = column("created_at", "int8[]");
const UPDATED_AT: Column = column("updated_at", "int8[]");

/// Per-kind SQL, derived from the kind's columns (the key first).
pub(crate) struct KindSql {
    pub table: &'static str,
    pub key: &'static str,
    pub columns: Vec<Column>,
    /// `code, appid, …`: what every select of the kind returns.
    pub select: String,
    /// Create or replace, `$n` parameters in column order; a replace keeps
    /// the key and `created_at`.
    pub upsert: String,
    /// Create only; an existing key is left alone (no row changed).
    pub insert_new: String,
    /// `SET …` of a replace: every column but the key and `created_at`.
    pub update_set: String,
    /// Where [`entry_from_row`] finds each column in a selected row.
    at: Positions,
}

/// The position of each column [`entry_from_row`] reads, in a selected row
/// of one kind (`usize::MAX` where the kind has no such column: never read
/// for it). Found once per kind: looking each name up in every row was a
/// search of the column names per field and row, a million rows at a
/// restart.
#[derive(Debug, Clone, Copy)]
struct Positions {
    code: usize,
    prefix: usize,
    count_by: usize,
    host: usize,
    unmatched: usize,
    path: usize,
    body: usize,
    appid: usize,
    query: usize,
    env_version: usize,
    tags: usize,
    fallback_url: usize,
    disabled: usize,
    valid_from: usize,
    valid_until: usize,
    created_at: usize,
    updated_at: usize,
}

impl Positions {
    fn of(columns: &[Column]) -> Positions {
        let at = |name: &str| columns.iter().position(|c| c.name == name).unwrap_or(usize::MAX);
        Positions {
            code: at("code"),
            prefix: at("prefix"),
            count_by: at("count_by"),
            host: at("host"),
            unmatched: at("unmatched"),
            path: at("path"),
            body: at("body"),
            appid: at("appid"),
            query: at("query"),
            env_version: at("env_version"),
            tags: at("tags"),
            fallback_url: at("fallback_url"),
            disabled: at("disabled"),
            valid_from: at("valid_from"),
            valid_until: at("valid_until"),
            created_at: at("created_at"),
            updated_at: at("updated_at"),
        }
    }
}

impl KindSql {
    fn new(table: &'static str, own: &[Column]) -> KindSql {
        let mut columns = own.to_vec();
        columns.extend([CREATED_AT, UPDATED_AT]);
        let key = columns[0].name;
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let update_set = names
            .iter()
            .filter(|n| **n != key && **n != CREATED_AT.name)
            .map(|n| format!("{n} = excluded.{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            params.join(", ")
        );
        KindSql {
            table,
            key,
            select: names.join(", "),
            upsert: format!("{insert} ON CONFLICT ({key}) DO UPDATE SET {update_set}"),
            insert_new: format!("{insert} ON CONFLICT ({key}) DO NOTHING"),
            update_set,
            at: Positions::of(&columns),
            columns,
        }
    }
}

static SQL: LazyLock<[KindSql; 4]> = LazyLock::new(|| {
    let point = point_columns!();
    let with_point = |own: &[Column]| {
        let mut all = own.to_vec();
        all.extend(point);
        all
    };
    [
        KindSql::new("codes", &with_point(&[column("code", "text[]")])),
        KindSql::new(
            "rules",
            &with_point(&[
                column("prefix_key", "text[]"),
                column("prefix", "text[]"),
                column("count_by", "text[]"),
            ]),
        ),
        KindSql::new("hosts", &[column("host", "text[]"), column("unmatched", "text[]")]),
        KindSql::new(
            "files",
            &[
                column("file_key", "text[]"),
                column("host", "text[]"),
                column("path", "text[]"),
                column("body", "text[]"),
            ],
        ),
    ]
});

pub(crate) fn sql(kind: EntryKind) -> &'static KindSql {
    let index = match kind {
        EntryKind::Code => 0,
        EntryKind::Rule => 1,
        EntryKind::Host => 2,
        EntryKind::File => 3,
    };
    &SQL[index]
}

/// Adds one count (the flush of every node adds; none overwrites).
pub(crate) const ADD_COUNT: &str = "INSERT INTO scan_counts (kind, key, day, class, count) VALUES ($1, $2, $3, $4, $5) \
                                    ON CONFLICT (kind, key, day, class) DO UPDATE SET count = scan_counts.count + excluded.count";
pub(crate) const COUNTS_BY_KEY: &str = "SELECT kind, key, day, class, count FROM scan_counts \
                                        WHERE kind = $1 AND key = $2 AND day >= $3 AND day <= $4 ORDER BY key, day, class";
/// The counts of a rule by the values of its `count_by` parameter: keys
/// `rule \x1f param \x1f value` (prefix keys never hold a control
/// character), so `$2` is `rule \x1f param` and the values are the keys
/// between `$2 \x1f` and `$2 ' '`, an index range in both stores.
pub(crate) const COUNTS_BY_VALUE: &str = "SELECT kind, key, day, class, count FROM scan_counts \
                                          WHERE kind = $1 AND key > $2 || '\u{1f}' AND key < $2 || ' ' \
                                          AND day >= $3 AND day <= $4 ORDER BY key, day, class";
pub(crate) const COUNTS_BY_TAG: &str = "SELECT c.kind, c.key, c.day, c.class, c.count FROM scan_counts c \
                                        JOIN entry_tags t ON t.kind = c.kind AND t.key = c.key \
                                        WHERE c.kind = $1 AND t.tag = $2 AND c.day >= $3 AND c.day <= $4 ORDER BY c.key, c.day, c.class";
/// Every count of a kind; `$2` is the empty string (every key is at least
/// that), so that all selections bind the same parameters.
pub(crate) const COUNTS_BY_KIND: &str = "SELECT kind, key, day, class, count FROM scan_counts \
                                         WHERE kind = $1 AND key >= $2 AND day >= $3 AND day <= $4 ORDER BY key, day, class";
/// Entries per tag and kind, for [`super::TagCount::fold`].
pub(crate) const TAG_COUNTS: &str = "SELECT tag, kind, COUNT(*) FROM entry_tags GROUP BY tag, kind ORDER BY tag, kind";
pub(crate) const PRUNE_COUNTS: &str = "DELETE FROM scan_counts WHERE day < $1";

/// Takes the next position; the first statement of every write.
pub(crate) const BUMP: &str =
    "UPDATE meta SET position = position + 1, initialised = TRUE WHERE id = 1 RETURNING position";
pub(crate) const HEAD: &str = "SELECT epoch, position FROM meta WHERE id = 1";
pub(crate) const INITIALISED: &str = "SELECT initialised FROM meta WHERE id = 1";
pub(crate) const MARK_INITIALISED: &str = "UPDATE meta SET initialised = TRUE WHERE id = 1";
pub(crate) const LOG_CHANGE: &str =
    "INSERT INTO changes (position, seq, kind, key, line, committed_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const FEED: &str = "SELECT position, kind, key, line, committed_at FROM changes \
                               WHERE position > $1 AND position <= $2 ORDER BY position, seq";
pub(crate) const OLDEST: &str = "SELECT MIN(position) FROM changes";
pub(crate) const PRUNE_LOG: &str =
    "DELETE FROM changes WHERE position <= (SELECT position FROM meta WHERE id = 1) - $1";
pub(crate) const DELETE_TAGS: &str = "DELETE FROM entry_tags WHERE kind = $1 AND key = $2";
pub(crate) const ADD_TAG: &str = "INSERT INTO entry_tags (tag, kind, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// `SELECT … FROM table WHERE key = $1`.
pub(crate) fn select_by_key(kind: EntryKind) -> String {
    let s = sql(kind);
    format!("SELECT {} FROM {} WHERE {} = $1", s.select, s.table, s.key)
}

/// `DELETE FROM table WHERE key = $1`.
pub(crate) fn delete_by_key(kind: EntryKind) -> String {
    let s = sql(kind);
    format!("DELETE FROM {} WHERE {} = $1", s.table, s.key)
}

/// Every entry of a kind in key order (export), or in no order (snapshot).
pub(crate) fn select_all(kind: EntryKind, ordered: bool) -> String {
    let s = sql(kind);
    let order = if ordered {
        format!(" ORDER BY {}", s.key)
    } else {
        String::new()
    };
    format!("SELECT {} FROM {}{order}", s.select, s.table)
}

/// The columns of a kind, prefixed `e.` for joins.
fn joined_select(s: &KindSql) -> String {
    s.columns
        .iter()
        .map(|c| format!("e.{}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A page of a listing: keys after `$1`, at most `$2`, with tag `$3` when
/// `tagged`.
pub(crate) fn list_page(kind: EntryKind, tagged: bool) -> String {
    let s = sql(kind);
    let join = if tagged {
        format!(
            "JOIN entry_tags t ON t.kind = '{}' AND t.key = e.{} AND t.tag = $3",
            kind.as_str(),
            s.key
        )
    } else {
        String::new()
    };
    format!(
        "SELECT {} FROM {} e {join} WHERE e.{key} > $1 ORDER BY e.{key} LIMIT $2",
        joined_select(s),
        s.table,
        key = s.key
    )
}

/// Every entry of kind `$1` with tag `$2`.
pub(crate) fn select_tagged(kind: EntryKind) -> String {
    let s = sql(kind);
    format!(
        "SELECT {} FROM {} e JOIN entry_tags t ON t.kind = $1 AND t.key = e.{} AND t.tag = $2",
        joined_select(s),
        s.table,
        s.key
    )
}

/// One value bound to a statement parameter.
/// Text borrows from the entry where it can: an import binds a million
/// rows, and copying every field first was a tenth of its work.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Text(Cow<'a, str>),
    OptText(Option<Cow<'a, str>>),
    OptInt(Option<i64>),
    Int(i64),
    Bool(bool),
}

/// The parameters of [`KindSql::upsert`] for `entry`, with its times, in
/// column order.
pub(crate) fn upsert_values(entry: &Entry, created_at: i64, updated_at: i64) -> Vec<Value<'_>> {
    sql(entry.kind())
        .columns
        .iter()
        .map(|c| value(entry, c.name, created_at, updated_at))
        .collect()
}

/// The value of column `name` of `entry`.
fn value<'a>(entry: &'a Entry, name: &str, created_at: i64, updated_at: i64) -> Value<'a> {
    use Value::*;
    let owned = |s: String| Text(Cow::Owned(s));
    match (entry, name) {
        (_, "created_at") => Int(created_at),
        (_, "updated_at") => Int(updated_at),
        (Entry::Code(c), "code") => Text(Cow::Borrowed(c.code.as_str())),
        (Entry::Rule(r), "prefix_key") => owned(r.prefix.key().to_string()),
        (Entry::Rule(r), "prefix") => owned(r.prefix.to_string()),
        (Entry::Rule(r), "count_by") => OptText(r.count_by.as_ref().map(|c| Cow::Owned(c.to_string()))),
        (Entry::Code(c), point) => point_value(&c.entry, &c.schedule, &c.tags, point),
        (Entry::Rule(r), point) => point_value(&r.entry, &r.schedule, &r.tags, point),
        (Entry::Host(h), "host") => owned(h.host.to_string()),
        (Entry::Host(_), "unmatched") => OptText(Line::from(entry).unmatched.map(Cow::Owned)),
        (Entry::File(_), "file_key") => owned(entry.key().as_str().to_string()),
        (Entry::File(f), "host") => owned(f.host.to_string()),
        (Entry::File(f), "path") => owned(f.path.to_string()),
        (Entry::File(f), "body") => Text(Cow::Borrowed(f.body.as_str())),
        (_, other) => unreachable!("no value for column {other} of a {}", entry.kind().as_str()),
    }
}

fn point_value<'a>(p: &'a EntryPoint, s: &Schedule, tags: &Tags, name: &str) -> Value<'a> {
    use Value::*;
    match name {
        "appid" => Text(Cow::Borrowed(p.appid.as_str())),
        "path" => Text(Cow::Borrowed(p.path.as_str())),
        "query" => Text(Cow::Borrowed(p.query.as_str())),
        "env_version" => Text(Cow::Borrowed(p.env_version.as_str())),
        "fallback_url" => OptText(p.fallback_url.as_ref().map(|u| Cow::Borrowed(u.as_str()))),
        "valid_from" => OptInt(s.valid_from),
        "valid_until" => OptInt(s.valid_until),
        "disabled" => Bool(s.disabled),
        "tags" if tags.is_empty() => Text(Cow::Borrowed("")),
        "tags" => Text(Cow::Owned(tags.joined())),
        other => unreachable!("no entry-point column {other}"),
    }
}

/// A selected row, as each backend's driver reads column `i`.
pub(crate) trait RowReader {
    fn text(&mut self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&mut self, i: usize) -> Result<Option<i64>, StoreError>;
    fn boolean(&mut self, i: usize) -> Result<bool, StoreError>;
}

/// Builds a stored entry of `kind` from a row selected with its `select`
/// columns; each column at its position, found once per kind ([`Positions`]).
pub(crate) fn entry_from_row(kind: EntryKind, row: &mut dyn RowReader) -> Result<Stored<Entry>, StoreError> {
    let s = sql(kind);
    let at = s.at;
    let corrupt = |e: FieldError| StoreError::Corrupt(e.to_string());
    let required = |row: &mut dyn RowReader, name: &str, i: usize| -> Result<String, StoreError> {
        row.text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("{}.{name} is NULL", s.table)))
    };
    let mut line = Line::default();
    match kind {
        EntryKind::Code => line.code = Some(required(row, "code", at.code)?),
        EntryKind::Rule => {
            line.prefix = Some(required(row, "prefix", at.prefix)?);
            line.count_by = row.text(at.count_by)?;
        }
        EntryKind::Host => {
            line.host = Some(required(row, "host", at.host)?);
            line.unmatched = row.text(at.unmatched)?;
        }
        EntryKind::File => {
            line.host = Some(required(row, "host", at.host)?);
            line.file = Some(required(row, "path", at.path)?);
            line.body = Some(required(row, "body", at.body)?);
        }
    }
    let mut schedule = None;
    if matches!(kind, EntryKind::Code | EntryKind::Rule) {
        line.appid = Some(required(row, "appid", at.appid)?);
        line.path = Some(required(row, "path", at.path)?);
        line.query = Some(required(row, "query", at.query)?);
        line.env_version = Some(required(row, "env_version", at.env_version)?);
        let tags = required(row, "tags", at.tags)?;
        line.tags = tags.split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect();
        line.fallback_url = row.text(at.fallback_url)?;
        line.disabled = row.boolean(at.disabled)?;
        schedule = Some((row.int(at.valid_from)?, row.int(at.valid_until)?));
    }
    let mut entry = line.validate().map_err(corrupt)?;
    // Validity times are stored as UNIX seconds: keep them exactly.
    if let Some((valid_from, valid_until)) = schedule {
        if let Entry::Code(c) = &mut entry {
            (c.schedule.valid_from, c.schedule.valid_until) = (valid_from, valid_until);
        }
        if let Entry::Rule(r) = &mut entry {
            (r.schedule.valid_from, r.schedule.valid_until) = (valid_from, valid_until);
        }
    }
    Ok(Stored {
        entry,
        created_at: row.int(at.created_at)?.unwrap_or(0),
        updated_at: row.int(at.updated_at)?.unwrap_or(0),
    })
}

/// How many codes the store holds (SQLite's; PostgreSQL's store asks for
/// its estimate instead).
pub(crate) const COUNT_CODES: &str = "SELECT COUNT(*) FROM codes";

/// API keys, in id order.
pub(crate) const SELECT_KEYS: &str = "SELECT id, name, role, scopes, secret_hash, previous_hash, previous_until, \
     created_at, expires_at, last_used_at FROM api_keys ORDER BY id";

/// One key (read inside a write, for its audit line).
pub(crate) const SELECT_KEY: &str = "SELECT id, name, role, scopes, secret_hash, previous_hash, previous_until, \
     created_at, expires_at, last_used_at FROM api_keys WHERE id = $1";

/// Creates a key; an id taken already changes nothing (a conflict).
pub(crate) const INSERT_KEY: &str = "INSERT INTO api_keys (id, name, role, scopes, secret_hash, previous_hash, \
     previous_until, expires_at, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL) \
     ON CONFLICT (id) DO NOTHING";

/// Changes a key, if its secret is still the one the change was made
/// from (`$9`): a change racing a rotation or a removal changes nothing.
/// Its creation and last use stay.
pub(crate) const UPDATE_KEY: &str = "UPDATE api_keys SET name = $2, role = $3, scopes = $4, secret_hash = $5, \
     previous_hash = $6, previous_until = $7, expires_at = $8 WHERE id = $1 AND secret_hash = $9";

pub(crate) const DELETE_KEY: &str = "DELETE FROM api_keys WHERE id = $1";

/// When a key was last used; never moves back.
pub(crate) const TOUCH_KEY: &str =
    "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

/// Certificates, in name order.
pub(crate) const SELECT_CERTIFICATES: &str = "SELECT name, chain_pem, key_pem, not_before, not_after, renew_after, \
     issuer, updated_at FROM certificates ORDER BY name";

/// Whether a certificate is stored for a name (read inside a write, for its
/// audit line).
pub(crate) const SELECT_CERTIFICATE_AFTER: &str = "SELECT not_after FROM certificates WHERE name = $1";

pub(crate) const PUT_CERTIFICATE: &str = "INSERT INTO certificates (name, chain_pem, key_pem, not_before, not_after, \
     renew_after, issuer, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET \
     chain_pem = excluded.chain_pem, key_pem = excluded.key_pem, not_before = excluded.not_before, \
     not_after = excluded.not_after, renew_after = excluded.renew_after, issuer = excluded.issuer, \
     updated_at = excluded.updated_at";

pub(crate) const DELETE_CERTIFICATE: &str = "DELETE FROM certificates WHERE name = $1";

pub(crate) const SELECT_ACME_ACCOUNT: &str = "SELECT credentials FROM acme_accounts WHERE directory = $1";

/// Keeps an account unless one is stored for the directory already.
pub(crate) const INSERT_ACME_ACCOUNT: &str = "INSERT INTO acme_accounts (directory, credentials, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (directory) DO NOTHING";

/// Takes or renews the ACME lease for `$1` until `$2`: only if it is free,
/// this holder's already, or lapsed before `$3` (one row changed: taken).
pub(crate) const TAKE_ACME_LEASE: &str = "INSERT INTO acme_lease (id, holder, until_ms) VALUES (1, $1, $2) \
     ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
     WHERE acme_lease.holder = excluded.holder OR acme_lease.until_ms < $3";

/// The scopes column: `{"tags":[…],"hosts":[…],"appids":[…]}`.
pub(crate) fn scopes_json(scopes: &crate::model::access::Scopes) -> String {
    let [tags, hosts, appids] = scopes.lists();
    serde_json::json!({"tags": tags, "hosts": hosts, "appids": appids}).to_string()
}

/// The inverse of [`scopes_json`]; a row that does not parse is corrupt.
pub(crate) fn scopes_of(json: &str) -> Result<crate::model::access::Scopes, super::StoreError> {
    #[derive(serde::Deserialize)]
    struct Lists {
        tags: Vec<String>,
        hosts: Vec<String>,
        appids: Vec<String>,
    }
    let lists: Lists =
        serde_json::from_str(json).map_err(|e| super::StoreError::Corrupt(format!("key scopes: {e}")))?;
    crate::model::access::Scopes::parse(&lists.tags, &lists.hosts, &lists.appids)
        .map_err(|e| super::StoreError::Corrupt(format!("key scopes: {e}")))
}

/// The role column.
pub(crate) fn role_of(name: &str) -> Result<crate::model::access::Role, super::StoreError> {
    crate::model::access::Role::parse(name).map_err(|e| super::StoreError::Corrupt(format!("key role: {e}")))
}

/// One audit line.
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit (at, key_id, key_name, client, action, kind, entry, \
     before, after, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A filter value of an audit query, in the order [`select_audit`] numbers
/// them.
pub(crate) enum AuditParam {
    Int(i64),
    Text(String),
}

/// Audit lines, newest first: the statement with only the filters that
/// are set (so each can use its index; `x IS NULL OR …` cannot on SQLite)
/// and their values, `limit` last.
pub(crate) fn select_audit(query: &crate::replication::audit::Query) -> (String, Vec<AuditParam>) {
    let mut sql = String::from(
        "SELECT id, at, key_id, key_name, client, action, kind, entry, before, after, position FROM audit WHERE TRUE",
    );
    let mut params = Vec::new();
    let mut filter = |sql: &mut String, condition: &str, value: AuditParam| {
        params.push(value);
        sql.push_str(&format!(" AND {condition} ${}", params.len()));
    };
    if let Some(id) = query.before_id {
        filter(&mut sql, "id <", AuditParam::Int(id));
    }
    if let Some(key) = &query.key_id {
        filter(&mut sql, "key_id =", AuditParam::Text(key.clone()));
    }
    if let Some(entry) = &query.entry {
        filter(&mut sql, "entry =", AuditParam::Text(entry.clone()));
    }
    if let Some(from) = query.from_ms {
        filter(&mut sql, "at >=", AuditParam::Int(from));
    }
    if let Some(to) = query.to_ms {
        filter(&mut sql, "at <", AuditParam::Int(to));
    }
    if query.entries_only {
        sql.push_str(" AND kind IN ('code', 'rule')");
    }
    params.push(AuditParam::Int(i64::from(query.limit)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));
    (sql, params)
}

pub(crate) const PRUNE_AUDIT: &str = "DELETE FROM audit WHERE at < $1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table_file::{parse_line, Item};

    /// Reads the values an entry was written with back as a row.
    struct Written<'a>(Vec<Value<'a>>);

    impl RowReader for Written<'_> {
        fn text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
            Ok(match &self.0[i] {
                Value::Text(t) => Some(t.to_string()),
                Value::OptText(t) => t.as_ref().map(|t| t.to_string()),
                other => panic!("column {i} is {other:?}"),
            })
        }
        fn int(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
            Ok(match &self.0[i] {
                Value::Int(n) => Some(*n),
                Value::OptInt(n) => *n,
                other => panic!("column {i} is {other:?}"),
            })
        }
        fn boolean(&mut self, i: usize) -> Result<bool, StoreError> {
            Ok(matches!(self.0[i], Value::Bool(true)))
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_columns() {
        let lines = [
            r#"{"code":"a1","appid":"wx1234567890abcdef","path":"p","query":"x=1","fallback_url":"https://e.com/","valid_from":"2030-01-01T00:00:00Z","valid_until":"2031-01-01T00:00:00Z","disabled":true,"tags":["t","u"]}"#,
            r#"{"prefix":"https://WWW.example.com/a?b=","appid":"wx1234567890abcdef","path":"p"}"#,
            r#"{"host":"www.example.com","unmatched":"https://old.example.com"}"#,
            r#"{"host":"www.example.com"}"#,
            r#"{"host":"www.example.com","file":"/MP_verify_a.txt","body":"a"}"#,
        ];
        for line in lines {
            let Item::Entry(entry) = parse_line(line).unwrap() else {
                panic!()
            };
            let s = sql(entry.kind());
            let values = upsert_values(&entry, 5, 6);
            assert_eq!(values.len(), s.columns.len(), "{line}");
            let back = entry_from_row(entry.kind(), &mut Written(values)).unwrap();
            assert_eq!(
                (&back.entry, back.created_at, back.updated_at),
                (&entry, 5, 6),
                "{line}"
            );
            assert!(s.upsert.contains(&format!("${}", s.columns.len())));
            assert!(!s.update_set.contains("created_at") && !s.update_set.contains(&format!("{} =", s.key)));
        }
    }
}
