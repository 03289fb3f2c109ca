//! The HTTP side: one straight scan path and a few small endpoints.
//!
//! * [`server`]: accept loop, per-connection hyper tasks, graceful shutdown;
//! * [`service`]: the hyper `Service`: checks the request, routes it, times
//!   and counts it;
//! * [`scan`]: `/{code}` and legacy URLs → `302` to the WeChat scheme;
//! * [`resolve`]: `GET /v1/resolve` → JSON entry point;
//! * [`respond`]: response builders (redirect, JSON and HTML errors);
//! * [`forwarded`]: which scheme a request came in on, trusting
//!   `X-Forwarded-Proto` only from configured proxies.
//!
//! Handlers are synchronous: everything they need is in memory, so the
//! service's future is `std::future::Ready` and nothing is boxed per request.

pub mod forwarded;
pub mod resolve;
pub mod respond;
pub mod scan;
pub mod server;
pub mod service;
mod state;

pub use server::{serve, ConnectionOptions, Mode};
pub use service::ScanService;
pub use state::{ScanOptions, ScanState};
