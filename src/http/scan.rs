//! The scan path's answer: the [`decide`](super::decide) decision, shaped
//! for the client that asked.
//!
//! A live code or rule answers each client class as configured
//! (`--answer-CLASS redirect|page`): a `302` to the WeChat scheme, or a
//! launch page ([`super::pages`]). Disabled or out-of-window entries answer
//! `410` with the entry's fallback link; unknown URLs `404`, or a `302` to
//! the host's pass-through origin; verification files are served as
//! `text/plain`. Every answer says what it varies on. No allocation on the
//! way to a code's `302` except the `Location` value itself.

use super::decide::{decide, https_rule_would_match, Decision, Target};
use super::forwarded::Scheme;
use super::pages::{self, Lang, Launch, Problem};
use super::respond::{self, Body};
use super::state::{AnswerMode, ScanOptions};
use crate::client_class::{self, ClientClass};
use crate::domain::Availability;
use crate::metrics::{Kind, Metrics, Outcome};
use crate::scheme_url::{self, LegacyScan};
use crate::stats::ScanCounts;
use crate::table::{Hit, Snapshot};
use hyper::header::{HeaderName, HeaderValue, ACCEPT_LANGUAGE, USER_AGENT};
use hyper::{HeaderMap, Response, StatusCode};
use std::cell::RefCell;
use std::net::IpAddr;

thread_local! {
    /// Reused buffers for the normalized request URL and the surrogate
    /// keys, so answers do not allocate for them.
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(256));
    static KEYS: RefCell<String> = RefCell::new(String::with_capacity(128));
}

/// A scan to answer.
pub struct ScanRequest<'a> {
    pub headers: &'a HeaderMap,
    pub peer: IpAddr,
    pub target: Target<'a>,
    /// How the scheme was learned: a trusted proxy's header, the operator's
    /// `--assume-https`, or the listener's own `http`.
    pub scheme: Scheme,
    pub now_unix: i64,
}

/// How the answer was shaped, for metrics and scan counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shaped {
    pub kind: Kind,
    pub outcome: Outcome,
    pub class: Option<ClientClass>,
}

pub fn answer(
    table: &Snapshot,
    options: &ScanOptions,
    metrics: &Metrics,
    counts: Option<&ScanCounts>,
    req: &ScanRequest<'_>,
) -> (Response<Body>, Shaped) {
    let decision = KEY.with(|key| decide(table, &options.code_hosts, &req.target, &mut key.borrow_mut()));
    let shaped = |kind, outcome, class| Shaped { kind, outcome, class };
    match decision {
        Decision::Code(hit) => answer_hit(&hit, Kind::Code, options, metrics, counts.is_some(), req),
        Decision::Rule(hit) => answer_hit(&hit, Kind::Rule, options, metrics, counts.is_some(), req),
        Decision::File(body) => (
            cacheable(respond::file(body, &options.cache.hit), req, None),
            shaped(Kind::File, Outcome::Found, None),
        ),
        Decision::PassThrough(origin) => {
            let location = format!("{origin}{}", req.target.path_and_query);
            (
                cacheable(respond::redirect(location, &options.cache.hit, None), req, None),
                shaped(Kind::PassThrough, Outcome::Found, None),
            )
        }
        Decision::NotFound => {
            if let Some(counts) = counts {
                // `decide` left the normalized URL in KEY.
                KEY.with(|key| {
                    let key = key.borrow();
                    let host = crate::url_key::host_of_key(&key);
                    if !table.count_not_found(host) {
                        counts.count_not_found_elsewhere(host);
                    }
                });
            }
            if req.scheme == Scheme::Listener
                && KEY.with(|key| https_rule_would_match(table, &req.target, &mut key.borrow_mut()))
            {
                metrics.https_rule_missed();
                tracing::debug!(
                    host = req.target.host,
                    path = req.target.path_and_query,
                    peer = %req.peer,
                    "404: an https rule would match, but the request came over http from a peer whose \
                     X-Forwarded-Proto is not trusted (see --trusted-proxy and --assume-https)"
                );
            }
            let lang = language(req.headers);
            // A code-shaped path carries the code's key: creating the code
            // purges the cached 404.
            let code = single_segment(req.target.path).and_then(|c| crate::percent::decode_strict(c.as_bytes()).ok());
            let page = respond::page(
                StatusCode::NOT_FOUND,
                pages::error(Problem::NotFound, lang, None),
                Some(&options.cache.miss),
            );
            (
                cacheable(page, req, code.as_deref()),
                shaped(Kind::None, Outcome::NotFound, None),
            )
        }
        Decision::BadRequest(message) => {
            let lang = language(req.headers);
            (
                respond::page(
                    StatusCode::BAD_REQUEST,
                    pages::error(Problem::BadRequest(message), lang, None),
                    None,
                ),
                shaped(Kind::None, Outcome::BadRequest, None),
            )
        }
    }
}

fn answer_hit(
    hit: &Hit<'_>,
    kind: Kind,
    options: &ScanOptions,
    metrics: &Metrics,
    count: bool,
    req: &ScanRequest<'_>,
) -> (Response<Body>, Shaped) {
    let fallback = hit.profile.key.fallback_url.as_ref().map(|u| u.as_str());
    let availability = hit.availability(req.now_unix);
    if availability != Availability::Live {
        let page = pages::error(Problem::Gone(availability), language(req.headers), fallback);
        let shaped = Shaped {
            kind,
            outcome: Outcome::Gone,
            class: None,
        };
        let response = respond::page(StatusCode::GONE, page, Some(&lifetime(hit, options, req.now_unix)));
        return (cacheable(response, req, hit.code), shaped);
    }
    if count {
        crate::table::prefetch_counts(hit.counts);
    }
    let (class, from_header) = client(options, req);
    if count {
        if let Some(cell) = hit.counts.get(class.index()) {
            cell.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let scanned = (kind == Kind::Rule).then(|| req.target.url(req.scheme.name()));
    let legacy = scanned.as_deref().map(|url| LegacyScan {
        url,
        scancode_time: req.now_unix,
    });
    let rendered = scheme_url::render(hit, legacy);
    if rendered.truncated {
        metrics.query_truncated();
    }
    let shaped = Shaped {
        kind,
        outcome: Outcome::Found,
        class: Some(class),
    };
    let cache_control = lifetime(hit, options, req.now_unix);
    let response = match options.answers[class.index()] {
        AnswerMode::Redirect => respond::redirect(rendered.url, &cache_control, Some(options.vary(from_header, false))),
        AnswerMode::Page => {
            let scanned_url = match scanned {
                Some(url) => url,
                None => req.target.url(req.scheme.name()),
            };
            let page = pages::launch(&Launch {
                class,
                lang: language(req.headers),
                scheme_url: &rendered.url,
                scanned_url: &scanned_url,
                fallback_url: fallback,
                qr_codes: &options.qr_codes,
            });
            respond::page(StatusCode::OK, page, Some(&cache_control)).with_vary(options.vary(from_header, true))
        }
    };
    let mut response = cacheable(response, req, hit.code);
    response
        .headers_mut()
        .insert(CLASS_HEADER, CLASS_VALUES[class.index()].clone());
    (response, shaped)
}

/// The client class: a trusted proxy's header when configured and sent,
/// else the User-Agent. `true` when it came from the header.
fn client(options: &ScanOptions, req: &ScanRequest<'_>) -> (ClientClass, bool) {
    if let Some(name) = &options.client_header {
        if options.trusts(req.peer) {
            if let Some(class) = req.headers.get(name).and_then(|v| ClientClass::parse(v.as_bytes())) {
                return (class, true);
            }
        }
    }
    let ua = req.headers.get(USER_AGENT).map(HeaderValue::as_bytes);
    (client_class::classify_remembered(ua), false)
}

fn language(headers: &HeaderMap) -> Lang {
    pages::language(headers.get(ACCEPT_LANGUAGE).map(HeaderValue::as_bytes))
}

impl Target<'_> {
    /// The URL as the phone asked for it.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}{}", self.host, self.path_and_query)
    }
}

/// The response header naming the client class an answer was made for.
pub const CLASS_HEADER: HeaderName = HeaderName::from_static("qrlaunch-class");
/// The surrogate-key headers: Fastly's and others', and Varnish xkey's.
const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
const XKEY: HeaderName = HeaderName::from_static("xkey");
const CLASS_VALUES: [HeaderValue; 6] = [
    HeaderValue::from_static("ios"),
    HeaderValue::from_static("android"),
    HeaderValue::from_static("wechat"),
    HeaderValue::from_static("inapp"),
    HeaderValue::from_static("desktop"),
    HeaderValue::from_static("other"),
];

/// Adds `Surrogate-Key` and `xkey`: what a cache purges this answer by.
/// `code` is as stored (decoded).
fn cacheable(mut response: Response<Body>, req: &ScanRequest<'_>, code: Option<&str>) -> Response<Body> {
    let host = crate::url_key::strip_default_port(req.scheme.name(), req.target.host);
    let keys = KEYS.with(|buf| super::cache::answer_keys(&mut buf.borrow_mut(), host, code));
    if let Some(keys) = keys {
        let headers = response.headers_mut();
        headers.insert(SURROGATE_KEY, keys.clone());
        headers.insert(XKEY, keys);
    }
    response
}

/// The last path segment, if it could be a code.
fn single_segment(path: &str) -> Option<&str> {
    let segment = path.rsplit('/').next()?;
    (!segment.is_empty() && segment.len() <= 96).then_some(segment)
}

/// The Cache-Control of an entry's answer: the configured lifetimes, cut
/// short when the entry's validity window opens or closes sooner (no cache
/// may serve a launch after `valid_until`, nor a 410 after `valid_from`).
fn lifetime(hit: &Hit<'_>, options: &ScanOptions, now: i64) -> HeaderValue {
    let schedule = hit.profile.key.schedule;
    let next_change = [schedule.valid_from, schedule.valid_until]
        .into_iter()
        .flatten()
        .filter(|&t| t > now)
        .min();
    let l = options.lifetimes;
    match next_change {
        Some(at) if at - now < i64::from(l.s_maxage.max(l.max_age)) => {
            let left = at - now;
            let value = format!("public, max-age={}, s-maxage={left}", left.min(i64::from(l.max_age)));
            HeaderValue::try_from(value).unwrap_or_else(|_| options.cache.hit.clone())
        }
        _ => options.cache.hit.clone(),
    }
}

/// Adds a `Vary` header to a response.
trait WithVary {
    fn with_vary(self, vary: HeaderValue) -> Self;
}

impl WithVary for Response<Body> {
    fn with_vary(mut self, vary: HeaderValue) -> Self {
        self.headers_mut().insert(hyper::header::VARY, vary);
        self
    }
}
