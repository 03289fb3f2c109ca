//! Integration tests of the operators' side: the admin API, the durable
//! store and their effect on scans. Each test starts the real `qrlaunch`
//! binary on ephemeral ports with its own data directory and talks HTTP to
//! it over TCP.

mod api;
mod cli;
mod durability;
#[path = "../support/mod.rs"]
mod support;
mod transfer;
