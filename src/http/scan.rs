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
use hyper::header::{HeaderValue, ACCEPT_LANGUAGE, USER_AGENT};
use hyper::{HeaderMap, Response, StatusCode};
use std::cell::RefCell;
use std::net::IpAddr;

thread_local! {
    /// Reused buffers for the normalized request URL, so lookups do not
    /// allocate a key per request.
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(256));
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
            respond::file(body, &options.cache_control),
            shaped(Kind::File, Outcome::Found, None),
        ),
        Decision::PassThrough(origin) => {
            let location = format!("{origin}{}", req.target.path_and_query);
            (
                respond::redirect(location, &options.cache_control, None),
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
            (
                respond::page(StatusCode::NOT_FOUND, pages::error(Problem::NotFound, lang, None), None),
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
        return (respond::page(StatusCode::GONE, page, None), shaped);
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
    let response = match options.answers[class.index()] {
        AnswerMode::Redirect => respond::redirect(
            rendered.url,
            &options.cache_control,
            Some(options.vary(from_header, false)),
        ),
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
            });
            respond::page(StatusCode::OK, page, Some(&options.cache_control)).with_vary(options.vary(from_header, true))
        }
    };
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
    (client_class::classify(ua), false)
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
