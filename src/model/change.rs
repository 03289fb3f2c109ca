//! The change log's vocabulary: positions and what one logged change did.
//! The table, the follower, the purges and the stores all speak it.

use super::domain::{Entry, EntryKey};

/// A place in the change log; `0` before the first write.
pub type Position = i64;

/// What one logged change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Entry),
    /// A tombstone.
    Delete(EntryKey),
    /// Too much changed to log entry by entry (a large import): reload.
    Resync,
    /// The API key with this id was created, changed or removed: nodes
    /// read their keys again. Keys are not in the table.
    Keys(String),
    /// The TLS certificate for this name was stored (an ACME order or a
    /// renewal): nodes read their certificates again. Certificates are not
    /// in the table.
    Certificates(String),
}
