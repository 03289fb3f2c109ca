//! How a node's table follows the durable store, and the machinery a node
//! runs beside its scans. Uses [`crate::model`] only, never
//! `crate::edge` (a test enforces it).
//!
//! * [`audit`]: who changed what: the actor of a write, and the lines the
//!   store writes with each change;
//! * [`store`]: the durable store (SQLite or PostgreSQL) and its
//!   commit-ordered change log;
//! * [`sync`]: the follower that applies the change log to the table, and
//!   the replica scans read;
//! * [`writer`]: every admin write: commit, then wait until applied here;
//! * [`purge`]: telling the caches in front what a change made stale,
//!   after it is live;
//! * [`stats`]: scan counts per entry, day and client class, flushed to the
//!   store;
//! * [`metrics`]: Prometheus metrics with pre-registered handles;
//! * [`background`]: low-priority threads for heavy work, and where old
//!   tables are freed;
//! * [`redact`]: URLs without their secrets, for logs;
//! * [`roots`]: CA certificates HTTPS clients trust beside the platform's.

pub mod audit;
pub mod background;
pub mod metrics;
pub mod purge;
pub mod redact;
pub mod roots;
pub mod stats;
pub mod store;
pub mod sync;
pub mod writer;
