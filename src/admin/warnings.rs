//! Warnings on writes that do something the operator may not have meant.

use super::AdminState;
use crate::api::Warning;
use crate::domain::Entry;

/// The warnings a write of `entry` earns, judged against this node's table.
pub fn for_entry(_state: &AdminState, _entry: &Entry) -> Vec<Warning> {
    Vec::new()
}
