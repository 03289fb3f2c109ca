//! Backups of a SQLite store: checking a copy and putting one back.
//!
//! The copy itself is made by the running node
//! ([`super::StartUp::backup_into`], `GET /admin/v1/backup`): `VACUUM INTO`
//! in one read transaction, so it is the store at one commit (entries,
//! hosts, files, counts, keys, audit, the change-log position), made
//! without stopping writes (WAL readers never block the writer; SQLite's
//! page-by-page backup API would start over at every write the node
//! makes), and by the node because its exclusive lock keeps other
//! processes out of the file. [`inspect`] checks a copy; [`restore`] puts
//! one into a data directory that has no store, with a new epoch (taking
//! the directory's lock, so that no node runs there, is the caller's job).

use super::migrate::SQLITE_VERSION;
use super::sqlite::DB_FILE;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupInfo {
    /// The change-log position it was taken at.
    pub position: i64,
    /// The store's identity; a restored store gets a new one, so that
    /// nothing takes it for the database it was copied from.
    pub epoch: String,
    pub schema_version: i64,
    pub codes: i64,
    pub rules: i64,
    pub bytes: u64,
}

fn read_info(conn: &Connection, bytes: u64) -> Result<BackupInfo, String> {
    let count = |table: &str| -> Result<i64, String> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    let (epoch, position) = conn
        .query_row("SELECT epoch, position FROM meta WHERE id = 1", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(|e| format!("not a qrlaunch store ({e})"))?;
    Ok(BackupInfo {
        position,
        epoch,
        schema_version: conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| e.to_string())?,
        codes: count("codes")?,
        rules: count("rules")?,
        bytes,
    })
}

/// Checks a copy (SQLite's integrity check, a qrlaunch store, a schema
/// this build knows) and says what it holds.
pub fn inspect(file: &Path) -> Result<BackupInfo, String> {
    let bytes = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let copy = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("{}: not a SQLite database ({e})", file.display()))?;
    if integrity != "ok" {
        return Err(format!("{}: the copy is damaged ({integrity})", file.display()));
    }
    let info = read_info(&copy, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    if info.schema_version > SQLITE_VERSION {
        return Err(format!(
            "{}: schema version {}, newer than this build's {SQLITE_VERSION}: use a newer qrlaunch",
            file.display(),
            info.schema_version
        ));
    }
    Ok(info)
}

/// Left in the data directory by [`restore`], until the node that starts
/// there first serves the store: it then purges the caches in front
/// (they hold answers from before the restore) and removes the file once
/// the purge was delivered.
pub const RESTORED_MARKER: &str = "qrlaunch.db.restored";

/// Puts the backup `from` into `data_dir`, which must hold no store.
pub fn restore(from: &Path, data_dir: &Path) -> Result<BackupInfo, String> {
    let info = inspect(from)?;
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let target = data_dir.join(DB_FILE);
    if target.exists() {
        return Err(format!(
            "{} holds a store already: restore into a new directory (or move {} away first)",
            data_dir.display(),
            target.display()
        ));
    }
    // Written beside its place, given a new epoch, synced, then renamed:
    // never a half file under the store's name.
    let partial = data_dir.join(format!("{DB_FILE}.restoring"));
    std::fs::copy(from, &partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    let epoch = new_epoch(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    for stale in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data_dir.join(format!("{DB_FILE}{stale}")));
    }
    let marker = data_dir.join(RESTORED_MARKER);
    std::fs::write(&marker, format!("{epoch}\n"))
        .and_then(|()| std::fs::File::open(&marker)?.sync_all())
        .map_err(|e| format!("{}: {e}", marker.display()))?;
    std::fs::rename(&partial, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    Ok(BackupInfo { epoch, ..info })
}

/// Gives a restored copy an epoch of its own: whatever followed the store
/// it was taken from (a node, a cache's purges) must not take the restored
/// one for the same database a few positions back.
fn new_epoch(file: &Path) -> Result<String, rusqlite::Error> {
    use rand::distr::{Alphanumeric, SampleString};
    let epoch = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let conn = Connection::open(file)?;
    conn.execute("UPDATE meta SET epoch = ?1 WHERE id = 1", [&epoch])?;
    // Back out of WAL so the copy is one file again.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(epoch)
}
