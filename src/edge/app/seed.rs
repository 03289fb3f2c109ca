//! The first start: a store that was never initialised gets `--table`, or,
//! for the embedded SQLite store only, the example table built into the
//! binary. A store that has ever held data (or was seeded, even with an
//! empty file) is never seeded again, so deleting every entry and
//! restarting does not bring the demo codes back. `--no-seed` starts a new
//! store empty.

use crate::model::table_file::{self, Item, LineError, Reader, EXAMPLE_TABLE};
use crate::replication::store::{Head, ImportLine, ImportSource, Store, StoreError, WriteMode};
use crate::replication::sync::{state::StateBuilder, Seeded};
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
/// After an import that was the store's first write, also the table of
/// what it wrote, for the follower's first bootstrap (the store then holds
/// exactly the file's lines, and reading a million rows back took longer
/// than building them as they were read).
pub async fn if_new(
    store: &Arc<dyn Store>,
    table: Option<PathBuf>,
    no_seed: bool,
) -> Result<Option<Seeded>, SeedError> {
    if store.initialised().await? {
        if let Some(table) = table {
            tracing::warn!(table = %table.display(), "the store was initialised before; --table is only imported into a new store");
        }
        return Ok(None);
    }
    let source = match table {
        Some(path) => TableSource::File(path),
        None if store.seeds_example() && !no_seed => TableSource::Example,
        None => {
            tracing::info!(store = %store.describe(), "a new store; it starts empty");
            store.mark_initialised().await?;
            return Ok(None);
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
    let gathered = Arc::new(Mutex::new(Gathered {
        bad: None,
        table: StateBuilder::new(),
    }));
    let imported = store.import(WriteMode::Insert, lines(reader, gathered.clone())).await;
    // The reading thread may not have let go of `gathered` yet, but it
    // adds nothing once the import is over: take what it holds.
    let (bad, table) = match gathered.lock() {
        Ok(mut gathered) => (gathered.bad.take(), std::mem::take(&mut gathered.table)),
        // It panicked: build from the store (the import failed anyway).
        Err(_) => (None, StateBuilder::new()),
    };
    let committed = match imported {
        Ok(committed) => committed,
        // An empty table file: nothing to write, but the store is initialised.
        Err(StoreError::NotFound) => {
            store.mark_initialised().await?;
            return Ok(None);
        }
        Err(e) => {
            crate::replication::background::retire(Arc::new(table));
            // The import failed on the file's bad line only if that line's
            // error is what it failed with: the reader runs ahead, and a
            // store error on an earlier line must not be hidden by it.
            return Err(match bad {
                Some((message, why)) if matches!(&e, StoreError::Failed(m) if *m == message) => match why {
                    Bad::Line(error) => SeedError::Line { name, error },
                    Bad::Read(error) => SeedError::Read { name, error },
                },
                _ => e.into(),
            });
        }
    };
    let s = committed.value;
    tracing::info!(table = %name, codes = s.codes, rules = s.rules, hosts = s.hosts, files = s.files,
        elapsed_ms = started.elapsed().as_millis() as u64, "imported into the new store");
    let whole =
        committed.position == 1 && s.generated.is_empty() && table.added() == s.codes + s.rules + s.hosts + s.files;
    if !whole {
        crate::replication::background::retire(Arc::new(table));
        return Ok(None);
    }
    let epoch = match store.head().await {
        Ok(head) => head.epoch,
        // The seed is in: the first table will be read from the store.
        Err(error) => {
            tracing::warn!(%error, "cannot read the store's head after the seed; building the table from the store");
            crate::replication::background::retire(Arc::new(table));
            return Ok(None);
        }
    };
    Ok(Some(Seeded {
        builder: table,
        head: Head {
            epoch,
            position: committed.position,
        },
    }))
}

/// What reading the file gathered beside the lines it gave the import.
struct Gathered {
    /// What stopped the reading, with the message the import was given.
    bad: Option<(String, Bad)>,
    /// Every entry read, in a table.
    table: StateBuilder,
}

/// What stopped the reading of a table file.
enum Bad {
    Line(LineError),
    Read(std::io::Error),
}

/// The file's lines for the import, each also added to the gathered table;
/// the first bad line or read error ends them, and is kept to be reported
/// as it is.
fn lines(reader: Box<dyn BufRead + Send>, gathered: Arc<Mutex<Gathered>>) -> ImportSource {
    let mut reader = Reader::new(reader);
    Box::new(std::iter::from_fn(move || {
        let mut gathered = match gathered.lock() {
            Ok(gathered) => gathered,
            Err(_) => return Some(Err(StoreError::Failed("reading the table file stopped".into()))),
        };
        let (message, why) = match reader.next_item() {
            Ok(None) => return None,
            Ok(Some(Ok((line, item)))) => {
                if let Item::Entry(entry) = &item {
                    gathered.table.add_ref(entry);
                }
                return Some(Ok(ImportLine { line, item }));
            }
            Ok(Some(Err(error))) => (error.to_string(), Bad::Line(error)),
            Err(error) => (error.to_string(), Bad::Read(error)),
        };
        gathered.bad = Some((message.clone(), why));
        Some(Err(StoreError::Failed(message)))
    }))
}

/// `qrlaunch check FILE`: reads the file into a table without a store.
pub fn check_file(source: &TableSource) -> Result<table_file::Loaded, String> {
    let reader = source.reader().map_err(|e| format!("table {}: {e}", source.name()))?;
    table_file::load(reader).map_err(|e| format!("table {}: {e}", source.name()))
}
