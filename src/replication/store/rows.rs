//! Columns ⇄ entries, shared by both backends: each backend reads its
//! driver's row into these plain values, and the SQL text is the same.

use super::StoreError;
use crate::model::domain::{Entry, EntryKind, EntryPoint, FieldError, Line, Schedule, Stored, Tags};

/// Per-kind SQL: table, key column, the columns a select returns (the key
/// first) and an upsert with `$n` parameters in column order.
pub(crate) struct KindSql {
    pub table: &'static str,
    pub key: &'static str,
    pub select: &'static str,
    pub upsert: &'static str,
    pub insert_new: &'static str,
    /// The columns of [`upsert_values`], in order, with PostgreSQL array
    /// types for bulk inserts (`UNNEST`).
    pub columns: &'static [(&'static str, &'static str)],
    /// `SET …` of an upsert (what a replace changes).
    pub update_set: &'static str,
}

const POINT_TYPES: [(&str, &str); 11] = [
    ("appid", "text[]"),
    ("path", "text[]"),
    ("query", "text[]"),
    ("env_version", "text[]"),
    ("fallback_url", "text[]"),
    ("valid_from", "int8[]"),
    ("valid_until", "int8[]"),
    ("disabled", "bool[]"),
    ("tags", "text[]"),
    ("created_at", "int8[]"),
    ("updated_at", "int8[]"),
];

const fn code_columns() -> [(&'static str, &'static str); 12] {
    let p = POINT_TYPES;
    [
        ("code", "text[]"),
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        p[10],
    ]
}

const fn rule_columns() -> [(&'static str, &'static str); 13] {
    let p = POINT_TYPES;
    [
        ("prefix_key", "text[]"),
        ("prefix", "text[]"),
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        p[10],
    ]
}

const CODE_COLUMNS: [(&str, &str); 12] = code_columns();
const RULE_COLUMNS: [(&str, &str); 13] = rule_columns();
const POINT_UPDATE: &str = "appid = excluded.appid, path = excluded.path, query = excluded.query, \
    env_version = excluded.env_version, fallback_url = excluded.fallback_url, valid_from = excluded.valid_from, \
    valid_until = excluded.valid_until, disabled = excluded.disabled, tags = excluded.tags, updated_at = excluded.updated_at";

pub(crate) const CODES: KindSql = KindSql {
    table: "codes",
    key: "code",
    select: "code, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, created_at, updated_at",
    upsert: "INSERT INTO codes (code, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (code) DO UPDATE SET appid = excluded.appid, path = excluded.path, query = excluded.query, \
             env_version = excluded.env_version, fallback_url = excluded.fallback_url, valid_from = excluded.valid_from, \
             valid_until = excluded.valid_until, disabled = excluded.disabled, tags = excluded.tags, updated_at = excluded.updated_at",
    insert_new: "INSERT INTO codes (code, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (code) DO NOTHING",
    columns: &CODE_COLUMNS,
    update_set: POINT_UPDATE,
};

pub(crate) const RULES: KindSql = KindSql {
    table: "rules",
    key: "prefix_key",
    select: "prefix_key, prefix, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, created_at, updated_at",
    upsert: "INSERT INTO rules (prefix_key, prefix, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (prefix_key) DO UPDATE SET prefix = excluded.prefix, appid = excluded.appid, path = excluded.path, \
             query = excluded.query, env_version = excluded.env_version, fallback_url = excluded.fallback_url, \
             valid_from = excluded.valid_from, valid_until = excluded.valid_until, disabled = excluded.disabled, \
             tags = excluded.tags, updated_at = excluded.updated_at",
    insert_new: "INSERT INTO rules (prefix_key, prefix, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (prefix_key) DO NOTHING",
    columns: &RULE_COLUMNS,
    update_set: "prefix = excluded.prefix, appid = excluded.appid, path = excluded.path, query = excluded.query, \
        env_version = excluded.env_version, fallback_url = excluded.fallback_url, valid_from = excluded.valid_from, \
        valid_until = excluded.valid_until, disabled = excluded.disabled, tags = excluded.tags, updated_at = excluded.updated_at",
};

pub(crate) const HOSTS: KindSql = KindSql {
    table: "hosts",
    key: "host",
    select: "host, unmatched, created_at, updated_at",
    upsert: "INSERT INTO hosts (host, unmatched, created_at, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (host) DO UPDATE SET unmatched = excluded.unmatched, updated_at = excluded.updated_at",
    insert_new: "INSERT INTO hosts (host, unmatched, created_at, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (host) DO NOTHING",
    columns: &[("host", "text[]"), ("unmatched", "text[]"), ("created_at", "int8[]"), ("updated_at", "int8[]")],
    update_set: "unmatched = excluded.unmatched, updated_at = excluded.updated_at",
};

pub(crate) const FILES: KindSql = KindSql {
    table: "files",
    key: "file_key",
    select: "file_key, host, path, body, created_at, updated_at",
    upsert: "INSERT INTO files (file_key, host, path, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (file_key) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    insert_new:
        "INSERT INTO files (file_key, host, path, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (file_key) DO NOTHING",
    columns: &[
        ("file_key", "text[]"),
        ("host", "text[]"),
        ("path", "text[]"),
        ("body", "text[]"),
        ("created_at", "int8[]"),
        ("updated_at", "int8[]"),
    ],
    update_set: "body = excluded.body, updated_at = excluded.updated_at",
};

pub(crate) fn sql(kind: EntryKind) -> &'static KindSql {
    match kind {
        EntryKind::Code => &CODES,
        EntryKind::Rule => &RULES,
        EntryKind::Host => &HOSTS,
        EntryKind::File => &FILES,
    }
}

/// Adds one count (the flush of every node adds; none overwrites).
pub(crate) const ADD_COUNT: &str = "INSERT INTO scan_counts (kind, key, day, class, count) VALUES ($1, $2, $3, $4, $5) \
                                    ON CONFLICT (kind, key, day, class) DO UPDATE SET count = scan_counts.count + excluded.count";
pub(crate) const COUNTS_BY_KEY: &str = "SELECT kind, key, day, class, count FROM scan_counts \
                                        WHERE kind = $1 AND key = $2 AND day >= $3 AND day <= $4 ORDER BY key, day, class";
pub(crate) const COUNTS_BY_TAG: &str = "SELECT c.kind, c.key, c.day, c.class, c.count FROM scan_counts c \
                                        JOIN entry_tags t ON t.kind = c.kind AND t.key = c.key \
                                        WHERE c.kind = $1 AND t.tag = $2 AND c.day >= $3 AND c.day <= $4 ORDER BY c.key, c.day, c.class";
pub(crate) const PRUNE_COUNTS: &str = "DELETE FROM scan_counts WHERE day < $1";

/// Takes the next position; the first statement of every write.
pub(crate) const BUMP: &str =
    "UPDATE meta SET position = position + 1, initialised = TRUE WHERE id = 1 RETURNING position";
pub(crate) const HEAD: &str = "SELECT epoch, position FROM meta WHERE id = 1";
pub(crate) const LOG_CHANGE: &str =
    "INSERT INTO changes (position, seq, kind, key, line, committed_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const FEED: &str = "SELECT position, kind, key, line, committed_at FROM changes \
                               WHERE position > $1 AND position <= $2 ORDER BY position, seq";
pub(crate) const OLDEST: &str = "SELECT MIN(position) FROM changes";
pub(crate) const DELETE_TAGS: &str = "DELETE FROM entry_tags WHERE kind = $1 AND key = $2";
pub(crate) const ADD_TAG: &str = "INSERT INTO entry_tags (tag, kind, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// One value bound to a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    OptText(Option<String>),
    OptInt(Option<i64>),
    Int(i64),
    Bool(bool),
}

/// The parameters of [`KindSql::upsert`] for `entry`, with its times.
pub(crate) fn upsert_values(entry: &Entry, created_at: i64, updated_at: i64) -> Vec<Value> {
    use Value::*;
    let point = |values: &mut Vec<Value>, p: &EntryPoint, s: &Schedule, tags: &Tags| {
        values.extend([
            Text(p.appid.to_string()),
            Text(p.path.to_string()),
            Text(p.query.to_string()),
            Text(p.env_version.to_string()),
            OptText(p.fallback_url.as_ref().map(ToString::to_string)),
            OptInt(s.valid_from),
            OptInt(s.valid_until),
            Bool(s.disabled),
            Text(tags.joined()),
        ]);
    };
    let mut values = Vec::with_capacity(13);
    match entry {
        Entry::Code(c) => {
            values.push(Text(c.code.to_string()));
            point(&mut values, &c.entry, &c.schedule, &c.tags);
        }
        Entry::Rule(r) => {
            values.push(Text(r.prefix.key().to_string()));
            values.push(Text(r.prefix.to_string()));
            point(&mut values, &r.entry, &r.schedule, &r.tags);
        }
        Entry::Host(h) => {
            let line = Line::from(entry);
            values.push(Text(h.host.to_string()));
            values.push(OptText(line.unmatched));
        }
        Entry::File(f) => {
            values.push(Text(entry.key().as_str().to_string()));
            values.push(Text(f.host.to_string()));
            values.push(Text(f.path.to_string()));
            values.push(Text(f.body.as_str().to_string()));
        }
    }
    values.push(Int(created_at));
    values.push(Int(updated_at));
    values
}

/// Builds a stored entry from a selected row. `text(i)` and `int(i)` read
/// column `i` of the backend's row.
pub(crate) fn entry_from_row(
    kind: EntryKind,
    text: &mut dyn FnMut(usize) -> Result<Option<String>, StoreError>,
    int: &mut dyn FnMut(usize) -> Result<Option<i64>, StoreError>,
    boolean: &mut dyn FnMut(usize) -> Result<bool, StoreError>,
) -> Result<Stored<Entry>, StoreError> {
    let corrupt = |e: FieldError| StoreError::Corrupt(e.to_string());
    let req = |i: usize, text: &mut dyn FnMut(usize) -> Result<Option<String>, StoreError>| {
        text(i)?.ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    };
    let mut line = Line::default();
    let first_point = match kind {
        EntryKind::Code => {
            line.code = Some(req(0, text)?);
            1
        }
        EntryKind::Rule => {
            line.prefix = Some(req(1, text)?);
            2
        }
        EntryKind::Host => {
            line.host = Some(req(0, text)?);
            line.unmatched = text(1)?;
            2
        }
        EntryKind::File => {
            line.host = Some(req(1, text)?);
            line.file = Some(req(2, text)?);
            line.body = Some(req(3, text)?);
            4
        }
    };
    let times_at = if matches!(kind, EntryKind::Code | EntryKind::Rule) {
        let p = first_point;
        line.appid = Some(req(p, text)?);
        line.path = Some(req(p + 1, text)?);
        line.query = Some(req(p + 2, text)?);
        line.env_version = Some(req(p + 3, text)?);
        line.fallback_url = text(p + 4)?;
        let valid_from = int(p + 5)?;
        let valid_until = int(p + 6)?;
        line.disabled = boolean(p + 7)?;
        let tags = req(p + 8, text)?;
        line.tags = tags.split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect();
        let mut entry = line.validate().map_err(corrupt)?;
        // Times are stored as UNIX seconds; keep them exactly.
        match &mut entry {
            Entry::Code(c) => {
                c.schedule.valid_from = valid_from;
                c.schedule.valid_until = valid_until;
            }
            Entry::Rule(r) => {
                r.schedule.valid_from = valid_from;
                r.schedule.valid_until = valid_until;
            }
            _ => {}
        }
        let at = p + 9;
        return Ok(Stored {
            entry,
            created_at: int(at)?.unwrap_or(0),
            updated_at: int(at + 1)?.unwrap_or(0),
        });
    } else {
        first_point
    };
    let entry = line.validate().map_err(corrupt)?;
    Ok(Stored {
        entry,
        created_at: int(times_at)?.unwrap_or(0),
        updated_at: int(times_at + 1)?.unwrap_or(0),
    })
}
