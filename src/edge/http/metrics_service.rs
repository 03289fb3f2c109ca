//! The metrics listener (`--metrics-listen`, default `127.0.0.1:9090`):
//! Prometheus scrapes `/metrics` here, never on the scan listener, so a CDN
//! in front of the scan listener has nothing to hide.

use super::respond::{self, Body};
use crate::replication::metrics::{Metrics, Route};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::time::Instant;

/// One metrics connection's service.
#[derive(Clone, Debug)]
pub struct MetricsService {
    metrics: Arc<Metrics>,
}

impl MetricsService {
    pub fn new(metrics: Arc<Metrics>) -> MetricsService {
        MetricsService { metrics }
    }

    pub fn handle<B>(&self, req: &Request<B>) -> Response<Body> {
        let started = Instant::now();
        let response = match (req.method(), req.uri().path()) {
            (&Method::GET | &Method::HEAD, "/metrics") => match self.metrics.render() {
                Some(text) => respond::text(StatusCode::OK, text, Some("text/plain; version=0.0.4; charset=utf-8")),
                None => respond::text(StatusCode::NOT_FOUND, "metrics are disabled\n", None),
            },
            (&Method::GET | &Method::HEAD, "/healthz") => respond::text(StatusCode::OK, "ok\n", None),
            (_, "/metrics" | "/healthz") => respond::method_not_allowed(false),
            _ => respond::text(
                StatusCode::NOT_FOUND,
                "only /metrics and /healthz are served here\n",
                None,
            ),
        };
        self.metrics.request(
            Route::Metrics,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        response
    }
}

impl hyper::service::Service<Request<Incoming>> for MetricsService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        ready(Ok(self.handle(&req)))
    }
}
