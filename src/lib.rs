//! qrlaunch: a high-throughput QR launch resolver.
//!
//! A phone scans a printed QR code, its browser asks us, and we answer with
//! the way into a WeChat mini program page that suits the client: a `302`
//! to the plaintext URL scheme `weixin://dl/business/?…` for an iPhone, a
//! launch page with a tap target or the QR code for Android, WeChat's own
//! browser and desktops ([`client_class`]). Two kinds of URL are answered:
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
//! * [`qr`]: QR images (SVG, PNG) of URLs;
//! * [`domain`]: validated types (`AppId`, `Code`, `PagePath`, `Entry`, …);
//! * [`client_class`]: which kind of client asked, from its User-Agent;
//! * [`percent`]: strict percent-decoding and URL-component encoding;
//! * [`ndjson`]: the NDJSON table file, one reader for every use;
//! * [`metrics`]: Prometheus metrics with pre-registered handles;
//! * [`config`]: command-line flags and their environment variables;
//! * [`store`]: the durable store (SQLite or PostgreSQL) and its change log;
//! * [`sync`]: the follower that applies the change log to the table;
//! * [`writer`], [`admin`], [`api`]: every change, the admin API on axum,
//!   and the request and answer types it shares with the CLI;
//! * [`purge`]: telling the caches in front what a change made stale;
//! * [`redact`]: URLs without their secrets, for logs;
//! * [`stats`]: scan counts per entry, day and client class, flushed to the store;
//! * [`cli`]: the operator commands (`import`, `export`, `code`, `rule`, `host`);
//! * [`app`]: start-up, seeding, signals, shutdown;
//! * [`background`]: low-priority threads for heavy work;
//! * [`workload`]: seeded synthetic tables for benches and the load test.

pub mod admin;
pub mod api;
pub mod app;
pub mod background;
pub mod cli;
pub mod client_class;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod ndjson;
pub mod percent;
pub mod purge;
pub mod qr;
pub mod redact;
pub mod scheme_url;
pub mod stats;
pub mod store;
pub mod sync;
pub mod table;
pub mod url_key;
pub mod workload;
pub mod writer;
