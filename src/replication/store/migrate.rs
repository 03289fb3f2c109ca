//! Schema migrations of the SQLite store, by `PRAGMA user_version`.
//!
//! The files live in `src/replication/store/migrations/sqlite/`, numbered from 1, and
//! each runs in its own transaction. Databases made by earlier releases
//! (whose schema sqlx's migrator applied, recorded in `_sqlx_migrations`)
//! count as version 1. PostgreSQL's migrations are sqlx's own, in
//! `src/replication/store/migrations/postgres/` (see [`super::postgres`]).

use rusqlite::Connection;

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_entries.sql")),
    (2, include_str!("migrations/sqlite/0002_change_log.sql")),
    (3, include_str!("migrations/sqlite/0003_scan_counts.sql")),
    (4, include_str!("migrations/sqlite/0004_count_by.sql")),
    (5, include_str!("migrations/sqlite/0005_api_keys.sql")),
    (6, include_str!("migrations/sqlite/0006_audit.sql")),
    (7, include_str!("migrations/sqlite/0007_certificates.sql")),
];

/// The schema version this build writes.
pub const SQLITE_VERSION: i64 = SQLITE[SQLITE.len() - 1].0;

/// Brings `conn`'s schema up to [`SQLITE_VERSION`]; refuses a newer one.
pub fn sqlite(conn: &mut Connection) -> Result<(), String> {
    let mut version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if version == 0 && table_exists(conn, "_sqlx_migrations")? && table_exists(conn, "codes")? {
        version = 1;
    }
    if version > SQLITE_VERSION {
        return Err(format!(
            "the database has schema version {version}, newer than this build's {SQLITE_VERSION}: run a newer qrlaunch \
             (migrations only go forward; README \"Upgrades\")"
        ));
    }
    for (number, sql) in SQLITE.iter().filter(|(n, _)| *n > version) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql).map_err(|e| format!("migration {number}: {e}"))?;
        tx.pragma_update(None, "user_version", number)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| format!("migration {number}: {e}"))?;
    }
    Ok(())
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, String> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
    .map_err(|e| e.to_string())
}
