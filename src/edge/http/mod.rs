//! The HTTP side: one straight scan path and a few small endpoints.
//!
//! * [`server`]: accept loop, per-connection hyper tasks, connection caps,
//!   graceful shutdown;
//! * [`service`]: the hyper `Service`: checks the request, routes it, times
//!   and counts it;
//! * [`scan`]: the decision shaped for the client: `302`, launch page, 404/410;
//! * [`pages`]: the launch and error pages (askama templates, zh/en);
//! * [`cache`]: Cache-Control of scan answers (surrogate keys and what a
//!   change purges are core rules: [`crate::model::keys`]);
//! * [`resolve`]: `GET /v1/resolve` → JSON entry point;
//! * [`respond`]: response builders (redirect, JSON and HTML errors);
//! * [`forwarded`]: which scheme a request came in on, trusting
//!   `X-Forwarded-Proto` and `Forwarded` only from configured proxies;
//! * [`qr_cache`]: the launch pages' QR codes, drawn within a CPU budget;
//! * [`metrics_service`]: `/metrics` on its own listener;
//! * [`tls`]: a listener's certificate from PEM files, re-read on `SIGHUP`
//!   (the admin listener's `--admin-tls-cert`).
//!
//! Handlers are synchronous: everything they need is in memory, so the
//! service's future is `std::future::Ready` and nothing is boxed per request.

pub mod cache;
pub mod forwarded;
pub mod metrics_service;
pub mod pages;
pub mod qr_cache;
pub mod resolve;
pub mod respond;
pub mod scan;
pub mod server;
pub mod service;
mod state;
pub mod tls;

pub use metrics_service::MetricsService;
pub use server::{serve, ConnectionOptions, Mode};
pub use service::ScanService;
pub use state::{AnswerMode, ClassSource, ScanOptions, ScanState, Varies};
