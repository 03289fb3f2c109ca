//! The hyper service: checks each request, routes it, times and counts it.

use super::respond::{self, Body};
use super::server::Mode;
use super::state::ScanState;
use super::{forwarded, resolve, scan};
use crate::model::decide::Target;
use crate::replication::metrics::Route;
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

/// What the scan listener answers, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Readyz,
    Resolve,
    Scan,
}

impl Endpoint {
    /// Which endpoint answers `path`.
    pub fn of(path: &str) -> Endpoint {
        match path {
            "/healthz" => Endpoint::Healthz,
            "/readyz" => Endpoint::Readyz,
            p if p.starts_with("/v1/") => Endpoint::Resolve,
            _ => Endpoint::Scan,
        }
    }

    /// The `route` label of its metrics.
    fn route(self) -> Route {
        match self {
            Endpoint::Healthz => Route::Healthz,
            Endpoint::Readyz => Route::Readyz,
            Endpoint::Resolve => Route::Resolve,
            Endpoint::Scan => Route::Scan,
        }
    }
}

/// One connection's service: the shared state and who is on the other end.
#[derive(Clone, Debug)]
pub struct ScanService {
    state: Arc<ScanState>,
    peer: IpAddr,
    mode: Mode,
    /// The connection came over TLS (`--tls-listen`): its scheme is `https`.
    tls: bool,
}

impl ScanService {
    pub fn new(state: Arc<ScanState>, peer: IpAddr) -> ScanService {
        ScanService::with_mode(state, peer, Mode::Normal)
    }

    /// A service for a connection served in `mode`: a reserve connection
    /// (beyond the connection cap) answers health checks only.
    pub fn with_mode(state: Arc<ScanState>, peer: IpAddr, mode: Mode) -> ScanService {
        ScanService {
            state,
            peer,
            mode,
            tls: false,
        }
    }

    /// The same service for a connection that came over TLS (`tls`): its
    /// requests are `https`.
    pub fn over_tls(self, tls: bool) -> ScanService {
        ScanService { tls, ..self }
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
        let endpoint = Endpoint::of(path);
        let (route, json) = (endpoint.route(), endpoint == Endpoint::Resolve);
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
        let host = match request_host(req) {
            Ok(host) => host,
            Err(message) => {
                return (
                    route,
                    respond::error(json, StatusCode::BAD_REQUEST, "bad_request", message),
                )
            }
        };
        if self.mode == Mode::Reserve && !matches!(endpoint, Endpoint::Healthz | Endpoint::Readyz) {
            return (route, respond::over_capacity(json));
        }
        let response = match endpoint {
            Endpoint::Healthz => respond::text(StatusCode::OK, "ok\n", None),
            Endpoint::Readyz => self.readyz(),
            _ if !self.state.replica.is_bootstrapped() => respond::not_ready(json),
            Endpoint::Resolve if path != "/v1/resolve" => {
                respond::json_error(StatusCode::NOT_FOUND, "not_found", "No such API route.")
            }
            Endpoint::Resolve => self.resolve(req, uri.query().unwrap_or("")),
            Endpoint::Scan => self.scan(req, host, target, path),
        };
        (route, response)
    }

    fn scan<B>(&self, req: &Request<B>, host: &str, target: &str, path: &str) -> Response<Body> {
        let state = &*self.state;
        let options = &state.options;
        let scheme = if self.tls {
            forwarded::Scheme::Tls
        } else {
            forwarded::scheme(req.headers(), self.peer, &options.trusted_proxies, options.assume_https)
        };
        let request = scan::ScanRequest {
            headers: req.headers(),
            peer: self.peer,
            target: Target {
                scheme: scheme.name(),
                host,
                path,
                path_and_query: target,
            },
            scheme,
            now_unix: now_unix(),
        };
        let (response, shaped) = scan::answer(
            &state.replica.load(),
            options,
            &state.metrics,
            state.counts.as_deref(),
            &request,
        );
        state.metrics.resolve(shaped.kind, shaped.outcome);
        response
    }

    fn resolve<B>(&self, req: &Request<B>, query: &str) -> Response<Body> {
        let state = &*self.state;
        let from_wechat = || {
            crate::model::client_class::classify(req.headers().get(hyper::header::USER_AGENT).map(|v| v.as_bytes()))
                == crate::model::client_class::ClientClass::Wechat
        };
        let (response, kind, outcome) = resolve::answer(
            &state.replica.load(),
            &state.options.code_hosts,
            &state.options.cache_control,
            query,
            now_unix(),
            state.counts.as_deref(),
            from_wechat,
        );
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
            response
                .headers_mut()
                .insert(crate::replication::sync::POSITION_HEADER, value);
        }
        response
    }
}

/// The host a request is for (RFC 9112 §3.2): the authority of an
/// absolute-form target wins over `Host`; otherwise exactly one `Host`
/// header, holding a host name or address and an optional port.
fn request_host<B>(req: &Request<B>) -> Result<&str, &'static str> {
    let host = match req.uri().authority() {
        Some(authority) => {
            if authority.as_str().contains('@') {
                return Err("The request target must not carry user information.");
            }
            authority.as_str()
        }
        None => {
            let mut hosts = req.headers().get_all(HOST).iter();
            let Some(first) = hosts.next() else {
                return Err("The Host header is missing.");
            };
            if hosts.next().is_some() {
                return Err("The request has more than one Host header.");
            }
            first.to_str().map_err(|_| "The Host header is not valid.")?
        }
    };
    if valid_host(host) {
        Ok(host)
    } else {
        Err("The Host header is not valid.")
    }
}

/// `name[:port]` or `[v6]:port`, as a request may name a host.
pub fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                let port = match after {
                    "" => None,
                    p => match p.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return false,
                    },
                };
                (v6, port)
            }
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_rfc_9112_has_them() {
        let request = |target: &str, hosts: &[&str]| {
            let mut builder = Request::builder().uri(target);
            for host in hosts {
                builder = builder.header(HOST, *host);
            }
            builder.body(()).unwrap()
        };
        let cases: &[(&str, &[&str], Result<&str, ()>)] = &[
            ("/a", &["go.example.com"], Ok("go.example.com")),
            ("/a", &["go.example.com:8080"], Ok("go.example.com:8080")),
            ("/a", &["[::1]:8080"], Ok("[::1]:8080")),
            ("/a", &["127.0.0.1"], Ok("127.0.0.1")),
            ("/a", &[], Err(())),
            ("/a", &["a.com", "b.com"], Err(())),
            ("/a", &[""], Err(())),
            ("/a", &["a b"], Err(())),
            ("/a", &["a.com/x"], Err(())),
            ("/a", &["a.com:80x"], Err(())),
            ("/a", &["[::1"], Err(())),
            (
                "http://abs.example.com/a",
                &["other.example.com"],
                Ok("abs.example.com"),
            ),
            ("http://abs.example.com:81/a", &[], Ok("abs.example.com:81")),
            ("http://u@abs.example.com/a", &["abs.example.com"], Err(())),
        ];
        for (target, hosts, want) in cases {
            let req = request(target, hosts);
            let got = request_host(&req).map_err(drop);
            assert_eq!(got, *want, "{target} {hosts:?}");
        }
    }
}

/// Requests answered in process, on `ScanService::handle`: the endpoints,
/// the request checks and the answers a table gives, one line a case. The
/// end-to-end tests in `tests/it/scan/` keep to what needs a socket.
#[cfg(test)]
mod endpoint_cases {
    use super::*;
    use crate::edge::http::respond::Body;
    use crate::model::table_file::{parse_line, Item};
    use crate::replication::metrics::Metrics;
    use crate::replication::sync::state::StateBuilder;

    const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42"}
{"code":"a!b","appid":"wx1234567890abcdef","path":"pages/bang/index"}
{"code":"off","appid":"wx1234567890abcdef","path":"pages/off/index","disabled":true,"fallback_url":"https://example.com/over"}
{"prefix":"http://www.example.com/app/download","appid":"wx1234567890abcdef","path":"pages/download/index"}
{"host":"www.example.com","unmatched":"https://old.example.com"}
{"host":"www.example.com","file":"/MP_verify_x.txt","body":"verified"}"#;

    /// `(method, target, Host, status, what the answer holds)`: the text
    /// must appear in `Location`, else in the body.
    const ENDPOINT_CASES: &[(&str, &str, &str, u16, &str)] = &[
        ("GET", "/healthz", "a", 200, "ok"),
        ("GET", "/readyz", "a", 200, "ready"),
        ("HEAD", "/spring24", "go.example.com", 302, "path=pages/promo/index"),
        ("GET", "/spring24", "go.example.com", 302, "query=id%3D42"),
        (
            "GET",
            "/spring24?utm=x",
            "go.example.com",
            302,
            "path=pages/promo/index",
        ),
        ("GET", "/a%21b", "go.example.com", 302, "pages/bang/index"),
        ("GET", "/a!b", "go.example.com", 302, "pages/bang/index"),
        ("GET", "/Spring24", "go.example.com", 404, ""),
        ("GET", "/off", "go.example.com", 410, "https://example.com/over"),
        ("GET", "/%ff", "go.example.com", 400, ""),
        (
            "GET",
            "/app/download?channel=9",
            "www.example.com",
            302,
            "pages/download/index",
        ),
        (
            "GET",
            "/app/download?channel=9",
            "www.example.com",
            302,
            "q%3Dhttp%253A%252F%252Fwww.example.com",
        ),
        (
            "GET",
            "/elsewhere",
            "www.example.com",
            302,
            "https://old.example.com/elsewhere",
        ),
        ("GET", "/MP_verify_x.txt", "www.example.com", 200, "verified"),
        ("GET", "/v1/resolve?code=spring24", "a", 200, "\"kind\":\"code\""),
        ("GET", "/v1/resolve?code=nope", "a", 404, "not_found"),
        ("GET", "/v1/other", "a", 404, "No such API route"),
        ("POST", "/spring24", "a", 405, ""),
        ("GET", "/spring24", "a b", 400, ""),
        ("GET", "http://u@abs.example.com/spring24", "a", 400, ""),
    ];

    fn service() -> ScanService {
        let state = ScanState::serving_snapshot(snapshot(), Metrics::disabled(), Default::default());
        ScanService::new(Arc::new(state), "192.0.2.1".parse().unwrap())
    }

    fn snapshot() -> crate::model::table::Snapshot {
        let mut builder = StateBuilder::new();
        for line in TABLE.lines() {
            match parse_line(line).unwrap() {
                Item::Entry(entry) => builder.add(entry),
                Item::Generate(_) => panic!("{line}"),
            }
        }
        builder.finish("epoch".into(), 1, None).snapshot()
    }

    fn body_text(response: &Response<Body>) -> String {
        use http_body_util::BodyExt;
        let bytes = futures_util::FutureExt::now_or_never(response.body().clone().collect())
            .expect("a full body is ready")
            .expect("an infallible body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Who counts a scan: not the node for a trusted cache's background
    /// refresh, nor (with `--count-source cache-log`) for anything a
    /// trusted proxy asks; always for any other address.
    #[test]
    fn who_counts_a_scan_depends_on_the_peer_and_the_count_source() {
        use crate::model::table::CountSink;
        #[derive(Default)]
        struct Total(std::sync::atomic::AtomicU64);
        impl CountSink for Total {
            fn add(
                &self,
                _: crate::model::domain::EntryKind,
                _: &str,
                _: crate::model::client_class::CountClass,
                n: u64,
            ) {
                self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let cases = [
            (true, "127.0.0.1", false, 1),
            (true, "127.0.0.1", true, 0),
            (true, "192.0.2.1", true, 1),
            (false, "127.0.0.1", false, 0),
            (false, "192.0.2.1", false, 1),
        ];
        for (count_proxied, peer, background, want) in cases {
            let mut options = crate::edge::http::ScanOptions::new(60, vec!["127.0.0.0/8".parse().unwrap()]);
            options.count_proxied = count_proxied;
            let counts = Arc::new(crate::replication::stats::ScanCounts::new(
                Vec::<String>::new(),
                crate::replication::stats::Days::utc(),
            ));
            let state =
                Arc::new(ScanState::serving_snapshot(snapshot(), Metrics::disabled(), options).with_counts(counts));
            let service = ScanService::new(state.clone(), peer.parse().unwrap());
            let mut request = Request::builder().uri("/spring24").header(HOST, "go.example.com");
            if background {
                request = request.header(scan::BACKGROUND_FETCH_HEADER, "1");
            }
            assert_eq!(service.handle(&request.body(()).unwrap()).status(), 302);
            let total = Total::default();
            state.replica.load().drain_counts(&total);
            assert_eq!(
                total.0.into_inner(),
                want,
                "count_proxied {count_proxied}, peer {peer}, background {background}"
            );
        }
    }

    #[test]
    fn every_case_answers_as_written() {
        let service = service();
        let mut wrong = Vec::new();
        for &(method, target, host, status, holds) in ENDPOINT_CASES {
            let request = Request::builder()
                .method(method)
                .uri(target)
                .header(HOST, host)
                .body(())
                .unwrap();
            let response = service.handle(&request);
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .map(|v| v.to_str().unwrap().to_string());
            let seen = location.unwrap_or_else(|| body_text(&response));
            if response.status().as_u16() != status || !seen.contains(holds) {
                wrong.push(format!(
                    "{method} {target} (Host {host}): expected {status} holding {holds:?}, got {} {seen:.200}",
                    response.status().as_u16()
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
