//! A table file straight into a table, with no store: `qrlaunch check`.

use super::parse::Item;
use super::read::{ReadError, Reader};
use crate::model::domain::Entry;
use crate::model::table::{Table, TableBuilder};
use std::io::BufRead;

/// Reads a whole table file into a [`Table`] (no store involved): `qrlaunch
/// check`. Stops at the first bad line; host and file lines are checked
/// and counted but are not part of the scan table.
pub fn load(reader: impl BufRead) -> Result<Loaded, ReadError> {
    let mut reader = Reader::new(reader);
    let mut builder = TableBuilder::new();
    let mut loaded = Loaded::default();
    while let Some(item) = reader.next_item()? {
        let (_, item) = item?;
        match item {
            Item::Entry(entry) => {
                builder.insert(&entry);
                match entry {
                    Entry::Host(_) => loaded.hosts += 1,
                    Entry::File(_) => loaded.files += 1,
                    Entry::Code(_) | Entry::Rule(_) => {}
                }
            }
            Item::Generate(_) => loaded.generated += 1,
        }
    }
    loaded.table = builder.build();
    Ok(loaded)
}

/// What [`load`] read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub table: Table,
    pub hosts: usize,
    pub files: usize,
    /// Code lines without `code`, which an import would give generated codes.
    pub generated: usize,
}
