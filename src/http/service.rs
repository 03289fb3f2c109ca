//! The hyper service: checks each request, routes it, times and counts it.

use super::respond::{self, Body};
use super::state::ScanState;
use super::{resolve, scan};
use crate::metrics::Route;
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Longest request target (path and query) answered; longer gets `414`.
pub const MAX_TARGET_LEN: usize = 8 * 1024;

/// One connection's service: the shared state and who is on the other end.
#[derive(Clone, Debug)]
pub struct ScanService {
    state: Arc<ScanState>,
    peer: IpAddr,
}

impl ScanService {
    pub fn new(state: Arc<ScanState>, peer: IpAddr) -> ScanService {
        ScanService { state, peer }
    }

    /// Answers one request. Generic over the body, which is never read, so
    /// benches can drive it without a socket.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Body> {
        let metrics = &self.state.metrics;
        let started = metrics.enabled().then(Instant::now);
        let (route, response) = self.route(req);
        if let Some(started) = started {
            metrics.request(route, response.status().as_u16(), started.elapsed().as_secs_f64());
        }
        response
    }

    fn route<B>(&self, req: &Request<B>) -> (Route, Response<Body>) {
        let uri = req.uri();
        let path = uri.path();
        let (route, json) = match path {
            "/healthz" => (Route::Healthz, false),
            "/readyz" => (Route::Readyz, false),
            "/metrics" => (Route::Metrics, false),
            p if p.starts_with("/v1/") => (Route::Resolve, true),
            _ => (Route::Scan, false),
        };
        let target = uri.path_and_query().map_or(path, |pq| pq.as_str());
        if target.len() > MAX_TARGET_LEN {
            let message = "The request target is longer than 8 KiB.";
            return (
                route,
                respond::error(json, StatusCode::URI_TOO_LONG, "uri_too_long", message),
            );
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return (route, respond::method_not_allowed(json));
        }
        let host = match req.headers().get(HOST).map(|h| h.to_str()) {
            Some(Ok(host)) if !host.is_empty() => host,
            Some(_) => {
                return (
                    route,
                    respond::error(
                        json,
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "The Host header is not valid.",
                    ),
                )
            }
            None => match uri.authority() {
                Some(authority) => authority.as_str(),
                None => {
                    return (
                        route,
                        respond::error(
                            json,
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            "The Host header is missing.",
                        ),
                    )
                }
            },
        };
        let response = match route {
            Route::Healthz => respond::text(StatusCode::OK, "ok\n", None),
            Route::Readyz => self.readyz(),
            Route::Metrics => match self.state.metrics.render() {
                Some(text) => respond::text(StatusCode::OK, text, Some("text/plain; version=0.0.4; charset=utf-8")),
                None => respond::text(StatusCode::NOT_FOUND, "metrics are disabled\n", None),
            },
            _ if !self.state.replica.is_bootstrapped() => respond::not_ready(json),
            Route::Resolve if path != "/v1/resolve" => {
                respond::json_error(StatusCode::NOT_FOUND, "not_found", "No such API route.")
            }
            Route::Resolve => self.resolve(uri.query().unwrap_or("")),
            Route::Scan => self.scan(req, host, target, path),
        };
        (route, response)
    }

    fn scan<B>(&self, req: &Request<B>, host: &str, target: &str, path: &str) -> Response<Body> {
        let state = &*self.state;
        let request = scan::ScanRequest {
            headers: req.headers(),
            peer: self.peer,
            trusted_proxies: &state.options.trusted_proxies,
            host,
            target,
            path,
            now_unix: now_unix(),
        };
        let (response, kind, outcome) = scan::answer(&state.replica.load(), &state.options.cache_control, &request);
        state.metrics.resolve(kind, outcome);
        response
    }

    /// `200 ready` once the table is built and not behind the store by more
    /// than `--max-lag`; `503` otherwise. The body says where it stands.
    fn readyz(&self) -> Response<Body> {
        let status = self.state.replica.status();
        let (code, word) = match (status.bootstrapped, self.state.is_ready()) {
            (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "loading"),
            (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "lagging"),
            (true, true) => (StatusCode::OK, "ready"),
        };
        let body = format!(
            "{word}\nposition: {}\nstore_position: {}\nlag_ms: {}\n",
            status.applied,
            status.store_head,
            status.lag().as_millis()
        );
        let mut response = respond::text(code, body, None);
        if let Ok(value) = hyper::header::HeaderValue::try_from(status.applied.to_string()) {
            response.headers_mut().insert(crate::sync::POSITION_HEADER, value);
        }
        response
    }

    fn resolve(&self, query: &str) -> Response<Body> {
        let state = &*self.state;
        let (response, kind, outcome) =
            resolve::answer(&state.replica.load(), &state.options.cache_control, query, now_unix());
        state.metrics.resolve(kind, outcome);
        response
    }
}

impl hyper::service::Service<Request<Incoming>> for ScanService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        ready(Ok(self.handle(&req)))
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
