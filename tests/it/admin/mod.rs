//! The operators' side: the admin API, the CLI, the durable store and their
//! effect on scans.

mod api;
mod cli;
mod durability;
mod keys;
mod transfer;

/// The table the admin tests start from: their own copy, so editing the
/// embedded example table does not change what they count.
pub const FIXTURE: &str = include_str!("fixture.ndjson");
