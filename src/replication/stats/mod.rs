//! Scan counts: how many times each entry was scanned, per UTC day and
//! client class, and how many 404s each host answered.
//!
//! The scan path adds to counters inside the tables (see
//! [`crate::model::table::CountSink`]): one relaxed atomic add, no lock, no
//! allocation. [`ScanCounts`] is where counts wait for the store: the
//! flusher drains the live tables into it every `--stats-flush` (and at
//! each UTC midnight, so a day's counts stay that day's), a table that is
//! replaced drains itself into it, and the flusher then *adds* what waits to
//! the store in one transaction. Nodes sharing a store add their own counts,
//! so totals sum across a fleet. A clean stop flushes everything; a SIGKILL
//! loses at most one flush interval.

//!
//! * [`days`]: day numbers and dates;
//! * [`pending`]: [`ScanCounts`], where counts wait for the store;
//! * [`flusher`]: moving them to the store, on a timer and at stop.

pub mod days;
pub mod flusher;
pub mod pending;

pub use days::{date_string, day_of, parse_date, Days};
pub use flusher::{flush, run_flusher};
pub use pending::{CountKey, ScanCounts, MAX_VALUES, MAX_VALUE_LEN, NO_VALUE, OTHER_HOSTS, OTHER_VALUE};
