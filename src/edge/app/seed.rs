//! The first start: a store that was never initialised gets `--table`, or,
//! for the embedded SQLite store only, the example table built into the
//! binary. A store that has ever held data (or was seeded, even with an
//! empty file) is never seeded again, so deleting every entry and
//! restarting does not bring the demo codes back. `--no-seed` starts a new
//! store empty.

use crate::model::table_file::{self, LineError, Reader, EXAMPLE_TABLE};
use crate::replication::store::{ImportLine, ImportSource, Store, StoreError, WriteMode};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where a table file comes from.
#[derive(Debug, Clone)]
pub enum TableSource {
    File(PathBuf),
    Example,
}

impl TableSource {
    pub fn name(&self) -> String {
        match self {
            TableSource::File(path) => path.display().to_string(),
            TableSource::Example => "(embedded examples/table.ndjson)".into(),
        }
    }

    pub fn reader(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        Ok(match self {
            TableSource::File(path) => Box::new(BufReader::with_capacity(1 << 20, File::open(path)?)),
            TableSource::Example => Box::new(EXAMPLE_TABLE.as_bytes()),
        })
    }
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("table {name}: {error}")]
    Line { name: String, error: LineError },
    #[error("table {name}: {error}")]
    Read { name: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seeds the store if it was never initialised; see the module docs.
pub async fn if_new(store: &Arc<dyn Store>, table: Option<PathBuf>, no_seed: bool) -> Result<(), SeedError> {
    if store.initialised().await? {
        if let Some(table) = table {
            tracing::warn!(table = %table.display(), "the store was initialised before; --table is only imported into a new store");
        }
        return Ok(());
    }
    let source = match table {
        Some(path) => TableSource::File(path),
        None if store.seeds_example() && !no_seed => TableSource::Example,
        None => {
            tracing::info!(store = %store.describe(), "a new store; it starts empty");
            return Ok(store.mark_initialised().await?);
        }
    };
    let name = source.name();
    let started = Instant::now();
    let reader = source.reader().map_err(|error| SeedError::Read {
        name: name.clone(),
        error,
    })?;
    // One pass: the lines are checked as they are imported, and the first
    // bad one rolls the import's one transaction back, so a bad file stops
    // the start with its line and field and writes nothing.
    let bad = Arc::new(Mutex::new(None));
    match store.import(WriteMode::Insert, lines(reader, bad.clone())).await {
        Ok(committed) => {
            let s = committed.value;
            tracing::info!(table = %name, codes = s.codes, rules = s.rules, hosts = s.hosts, files = s.files,
                elapsed_ms = started.elapsed().as_millis() as u64, "imported into the new store");
            Ok(())
        }
        // An empty table file: nothing to write, but the store is initialised.
        Err(StoreError::NotFound) => Ok(store.mark_initialised().await?),
        Err(e) => Err(match bad.lock().ok().and_then(|mut bad| bad.take()) {
            Some(Bad::Line(error)) => SeedError::Line { name, error },
            Some(Bad::Read(error)) => SeedError::Read { name, error },
            None => e.into(),
        }),
    }
}

/// What stopped the reading of a table file.
enum Bad {
    Line(LineError),
    Read(std::io::Error),
}

/// The file's lines for the import; the first bad line or read error ends
/// them, and is kept in `bad` to be reported as it is.
fn lines(reader: Box<dyn BufRead + Send>, bad: Arc<Mutex<Option<Bad>>>) -> ImportSource {
    let mut reader = Reader::new(reader);
    Box::new(std::iter::from_fn(move || {
        let (message, why) = match reader.next_item() {
            Ok(None) => return None,
            Ok(Some(Ok((line, item)))) => return Some(Ok(ImportLine { line, item })),
            Ok(Some(Err(error))) => (error.to_string(), Bad::Line(error)),
            Err(error) => (error.to_string(), Bad::Read(error)),
        };
        if let Ok(mut bad) = bad.lock() {
            *bad = Some(why);
        }
        Some(Err(StoreError::Failed(message)))
    }))
}

/// `qrlaunch check FILE`: reads the file into a table without a store.
pub fn check_file(source: &TableSource) -> Result<table_file::Loaded, String> {
    let reader = source.reader().map_err(|e| format!("table {}: {e}", source.name()))?;
    table_file::load(reader).map_err(|e| format!("table {}: {e}", source.name()))
}
