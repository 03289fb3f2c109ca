//! qrlaunch: a high-throughput QR launch resolver.
//!
//! A phone scans a printed QR code, its browser asks us, and we answer with
//! the way into a WeChat mini program page: a `302` to the plaintext URL
//! scheme `weixin://dl/business/?…`. Two kinds of URL are answered:
//!
//! * **launch codes**, `https://go.example.com/{code}`, matched exactly;
//! * **legacy app-download URLs** already printed on posters, matched by
//!   rules with WeChat's own prefix semantics.
//!
//! The parts, in the order a scan meets them:
//!
//! * [`http`]: the hyper server, request routing and responses (the scan
//!   path), `/v1/resolve`, health and metrics endpoints;
//! * [`url_key`]: the normalized form in which scanned URLs and rule
//!   prefixes are compared;
//! * [`table`]: the immutable in-memory table and the lock-free [`table::LiveTable`]
//!   that publishes it;
//! * [`scheme_url`]: rendering the `weixin://` URL;
//! * [`domain`]: validated types (`AppId`, `Code`, `PagePath`, …);
//! * [`table_file`]: the NDJSON table file;
//! * [`metrics`]: Prometheus metrics with pre-registered handles;
//! * [`config`]: command-line flags and their environment variables;
//! * [`admin`], [`catalog`], [`store`]: the admin API, the single writer,
//!   the durable SQLite store;
//! * [`cli`]: the operator commands (`import`, `export`, `code`, `rule`);
//! * [`background`]: low-priority threads for heavy work;
//! * [`workload`]: seeded synthetic tables for benches and the load test.

pub mod admin;
pub mod app;
pub mod background;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod scheme_url;
pub mod store;
pub mod table;
pub mod table_file;
pub mod url_key;
pub mod workload;
