//! What the outside world talks to, on top of [`crate::model`] and
//! [`crate::replication`].
//!
//! * [`http`]: the scan path on plain hyper (`/{code}`, legacy URLs,
//!   `/v1/resolve`, health), the metrics listener;
//! * [`admin`]: the admin API on axum, with its OpenAPI document;
//! * [`console`]: the operators' web pages at `/console/`, a client of
//!   the admin API in the same process;
//! * [`api`]: the request and answer types the admin API shares with the
//!   CLI and the tests;
//! * [`cli`]: the operator commands, clients of the admin API;
//! * [`wechat`]: WeChat's server API (access token, mini program codes),
//!   for the admin API;
//! * [`acme`]: certificates for the TLS scan listener from an ACME server;
//! * [`config`]: command-line flags and their environment variables;
//! * [`app`]: start-up, seeding, signals, shutdown: the wiring.

pub mod acme;
pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod http;
pub mod ingest;
pub mod wechat;
