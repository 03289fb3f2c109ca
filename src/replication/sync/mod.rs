//! How a node's in-memory table follows the store.
//!
//! Every committed change, made on this node or any other, reaches the
//! table the same way: the [`follower`] reads the store's change log in
//! position order and applies it to a [`state::TableState`], which
//! publishes a new snapshot into the [`Replica`] that scans read. An admin
//! write answers `2xx` only once this node's table has applied the write's
//! position ([`Replica::wait_applied`]): read-your-write on every node that
//! took the write, and the same road for everything else.
//!
//! * [`replica`]: the live table plus how current it is (readiness, lag);
//! * [`state`]: base table + overlay + hosts at one position, and how a
//!   batch of changes is applied (pure, tested against a plain map);
//! * [`follower`]: the task: bootstrap from a snapshot, catch up, wait for
//!   wake-ups or a poll tick, resync on a gap, a new epoch or a log that no
//!   longer reaches back.

pub mod follower;
pub mod replica;
pub mod state;

pub use follower::{Follower, FollowerOptions, Seeded};
pub use replica::{NotApplied, Replica, SyncStatus};

/// The response header that names a change-log position: on `/readyz`
/// (this node's table) and on admin writes (the write's own position).
pub const POSITION_HEADER: &str = "qrlaunch-position";
