//! qrlaunch: a high-throughput QR launch resolver.
//!
//! A phone scans a printed QR code, its browser asks us, and we answer with
//! the way into a WeChat mini program page that suits the client: a `302`
//! to the plaintext URL scheme `weixin://dl/business/?…` for an iPhone, a
//! launch page with a tap target or the QR code for Android, WeChat's own
//! browser and desktops. Two kinds of URL are answered:
//!
//! * **launch codes**, `https://go.example.com/{code}`, matched exactly;
//! * **legacy app-download URLs** already printed on posters, matched by
//!   rules with WeChat's own prefix semantics.
//!
//! The crate is three layers, each a folder, each allowed to use only the
//! ones below it (a test in `tests/it/layers.rs` reads every `crate::` path
//! and fails on an arrow upwards):
//!
//! * [`model`], the core rules: validated entries, URL keys and
//!   percent-encoding, client classes, the immutable table, the decision a
//!   URL gets, the change log's vocabulary, surrogate keys, the table file.
//!   It knows nothing of storage, networks or threads.
//! * [`replication`], how a node's table follows the durable store: the
//!   stores (SQLite, PostgreSQL), the follower, the writer, purges, scan
//!   counts, metrics and the low-priority threads that do heavy work.
//! * [`edge`], what the outside world talks to: the scan path (plain
//!   hyper), the admin API (axum), the CLI, flags and the wiring that starts
//!   it all.
//!
//! [`workload`] (seeded synthetic tables for benches and the load test)
//! stands beside them and uses [`model`] only.

pub mod edge;
pub mod model;
pub mod replication;
pub mod workload;
