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

use super::forwarded::Scheme;
use super::pages::{self, Lang, Launch, Problem};
use super::respond::{self, Body};
use super::state::{AnswerMode, ClassSource, ScanOptions, Varies};
use crate::model::client_class::{self, ClientClass};
use crate::model::decide::{decide, https_rule_would_match, Decision, Target};
use crate::model::domain::Availability;
use crate::model::scheme_url::{self, LegacyScan};
use crate::model::table::{Hit, Snapshot};
use crate::replication::metrics::{Kind, Metrics, Outcome};
use crate::replication::stats::ScanCounts;
use hyper::header::{HeaderName, HeaderValue, ACCEPT_LANGUAGE, USER_AGENT};
use hyper::{HeaderMap, Response, StatusCode};
use std::borrow::Cow;
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
    // A trusted cache's background refresh answers no scan (the scan was
    // the stale hit its log reports); with --count-source cache-log, the
    // cache's log counts everything its proxies ask.
    let counts = counts.filter(|_| {
        !options.trusts(req.peer) || (options.count_proxied && !req.headers.contains_key(BACKGROUND_FETCH_HEADER))
    });
    let plain = Varies {
        class: ClassSource::None,
        language: false,
        scheme: options.scheme_from_headers(req.peer),
    };
    let (response, shaped, varies) = match decision {
        Decision::Code(hit) => answer_hit(&hit, Kind::Code, options, metrics, counts, req),
        Decision::Rule(hit) => answer_hit(&hit, Kind::Rule, options, metrics, counts, req),
        Decision::File(body) => (
            respond::file(body, &options.cache.hit),
            shaped(Kind::File, Outcome::Found, None),
            plain,
        ),
        Decision::PassThrough(origin) => {
            let location = format!("{origin}{}", req.target.path_and_query);
            (
                respond::redirect(location, &options.cache.hit, None),
                shaped(Kind::PassThrough, Outcome::Found, None),
                plain,
            )
        }
        Decision::NotFound => {
            if let Some(counts) = counts {
                // `decide` left the normalized URL in KEY.
                KEY.with(|key| {
                    let key = key.borrow();
                    let host = crate::model::url_key::host_of_key(&key);
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
            let page = respond::page(
                StatusCode::NOT_FOUND,
                pages::error(Problem::NotFound, language(req.headers), None),
                Some(&options.cache.miss),
            );
            (
                page,
                shaped(Kind::None, Outcome::NotFound, None),
                Varies {
                    language: true,
                    ..plain
                },
            )
        }
        Decision::BadRequest(message) => {
            // Not cacheable (`no-store`): no keys.
            let page = respond::page(
                StatusCode::BAD_REQUEST,
                pages::error(Problem::BadRequest(message), language(req.headers), None),
                None,
            );
            return (page, shaped(Kind::None, Outcome::BadRequest, None));
        }
    };
    let code = match decision {
        Decision::Code(hit) => hit.code.map(Cow::Borrowed),
        _ => code_candidate(options, req),
    };
    (cacheable(response, req, code.as_deref(), options.vary(varies)), shaped)
}

/// The code a scan of this URL would open if one existed: every answer on
/// a code's URL carries the code's key, so creating the code purges the
/// rule, pass-through or 404 answer cached for it.
fn code_candidate<'r>(options: &ScanOptions, req: &ScanRequest<'r>) -> Option<Cow<'r, str>> {
    let host = crate::model::url_key::strip_default_port(req.scheme.name(), req.target.host);
    let segment = options.code_hosts.segment(host, req.target.path)?;
    crate::model::percent::decode_strict(segment.as_bytes()).ok()
}

fn answer_hit(
    hit: &Hit<'_>,
    kind: Kind,
    options: &ScanOptions,
    metrics: &Metrics,
    counts: Option<&ScanCounts>,
    req: &ScanRequest<'_>,
) -> (Response<Body>, Shaped, Varies) {
    let fallback = hit.profile.key.fallback_url.as_ref().map(|u| u.as_str());
    let availability = hit.availability(req.now_unix);
    let scheme = options.scheme_from_headers(req.peer);
    if availability != Availability::Live {
        let page = pages::error(Problem::Gone(availability), language(req.headers), fallback);
        let shaped = Shaped {
            kind,
            outcome: Outcome::Gone,
            class: None,
        };
        let response = respond::page(StatusCode::GONE, page, Some(&lifetime(hit, options, req.now_unix)));
        let varies = Varies {
            class: ClassSource::None,
            language: true,
            scheme,
        };
        return (response, shaped, varies);
    }
    if counts.is_some() {
        crate::model::table::prefetch_counts(hit.counts);
    }
    let (class, from_header) = client(options, req);
    if let Some(counts) = counts {
        if let Some(cell) = hit.counts.get(class.index()) {
            cell.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // A rule that counts by a parameter also counts by its value.
        if let (Some(param), Some(rule)) = (&hit.profile.key.count_by, hit.prefix_key) {
            counts.add_value(
                rule,
                param.as_str(),
                req.target.path_and_query,
                crate::model::client_class::CountClass::Client(class),
            );
        }
    }
    let scanned = (kind == Kind::Rule).then(|| req.target.url(req.scheme.name()));
    let legacy = scanned.as_deref().map(|url| LegacyScan {
        url,
        scancode_time: req.now_unix,
    });
    let rendered = scheme_url::render(hit, legacy);
    let scancode_time = rendered.scancode_time;
    if rendered.truncated {
        metrics.query_truncated();
    }
    let shaped = Shaped {
        kind,
        outcome: Outcome::Found,
        class: Some(class),
    };
    let cache_control = lifetime(hit, options, req.now_unix);
    let mode = options.answers[class];
    let varies = Varies {
        class: if from_header {
            ClassSource::Header
        } else {
            ClassSource::UserAgent
        },
        language: mode == AnswerMode::Page,
        scheme,
    };
    let mut response = match mode {
        AnswerMode::Redirect => respond::redirect(rendered.url, &cache_control, None),
        AnswerMode::Page => {
            // The QR code of a code's page is the code's own URL, whatever
            // query the request carried (each query would be another image
            // to draw); a rule's is the scanned URL, which the mini program
            // receives as `q`.
            let qr_url = match (scanned, hit.code) {
                (Some(url), _) => url,
                (None, Some(code)) => code_url(options, req, code),
                (None, None) => req.target.url_without_query(req.scheme.name()),
            };
            let page = pages::launch(&Launch {
                class,
                lang: language(req.headers),
                scheme_url: &rendered.url,
                qr_url: &qr_url,
                fallback_url: fallback,
                qr_codes: &options.qr_codes,
                scancode_time,
            });
            if !page.complete {
                metrics.page_qr_busy();
            }
            // A page without its QR code (the node was busy drawing) is
            // not kept by any cache.
            respond::page(StatusCode::OK, page.html, page.complete.then_some(&cache_control))
        }
    };
    response.headers_mut().insert(CLASS_HEADER, class.header_value());
    if let Some(time) = scancode_time {
        // Where a cache finds the time to replace with the time of the
        // request it answers (deploy/varnish/qrlaunch.vcl).
        response
            .headers_mut()
            .insert(SCANCODE_TIME_HEADER, HeaderValue::from(time));
    }
    (response, shaped, varies)
}

/// A code's canonical URL on the host it was scanned on: the host as
/// stored (lower case, no default port), the base path, the code encoded
/// one way. Every spelling of the same code draws the same QR code.
fn code_url(options: &ScanOptions, req: &ScanRequest<'_>, code: &str) -> String {
    let scheme = req.scheme.name();
    let host = crate::model::url_key::strip_default_port(scheme, req.target.host).to_ascii_lowercase();
    let base = options.code_hosts.base_path(&host);
    format!("{scheme}://{host}{base}{}", crate::model::percent::encoded(code))
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

    /// The URL without its query.
    pub fn url_without_query(&self, scheme: &str) -> String {
        format!("{scheme}://{}{}", self.host, self.path)
    }
}

/// The response header naming the client class an answer was made for.
pub const CLASS_HEADER: HeaderName = HeaderName::from_static("qrlaunch-class");
/// On a legacy answer: the `scancode_time` in its scheme URL, for a cache
/// that serves it later to replace with the time of that later scan.
pub const SCANCODE_TIME_HEADER: HeaderName = HeaderName::from_static("qrlaunch-scancode-time");
/// Sent by a trusted cache when it refreshes a stale answer in the
/// background (Varnish's `bereq.is_bgfetch`): no scan waits on it, so it is
/// not counted (the cache's log reports the stale hit that was the scan).
pub const BACKGROUND_FETCH_HEADER: HeaderName = HeaderName::from_static("qrlaunch-background-fetch");
/// The surrogate-key headers: Fastly's and others', and Varnish xkey's.
const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
const XKEY: HeaderName = HeaderName::from_static("xkey");

/// Adds `Surrogate-Key` and `xkey` (what a cache purges this answer by)
/// and `Vary` (what else it depends on). `code` is as stored (decoded).
fn cacheable(
    mut response: Response<Body>,
    req: &ScanRequest<'_>,
    code: Option<&str>,
    vary: Option<HeaderValue>,
) -> Response<Body> {
    let host = crate::model::url_key::strip_default_port(req.scheme.name(), req.target.host);
    let keys = KEYS.with(|buf| crate::model::keys::answer_keys(&mut buf.borrow_mut(), host, code));
    let headers = response.headers_mut();
    if let Some(keys) = keys {
        headers.insert(SURROGATE_KEY, keys.clone());
        headers.insert(XKEY, keys);
    }
    match vary {
        Some(vary) => headers.insert(hyper::header::VARY, vary),
        None => headers.remove(hyper::header::VARY),
    };
    response
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::domain::{Entry, EntryKey, EntryKind};
    use crate::model::table_file::{parse_line, Item};
    use crate::replication::store::Change;
    use crate::replication::sync::state::{StateBuilder, TableState};
    use std::collections::BTreeSet;

    /// The table every answer below is made from.
    const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"code/spring24"}
{"code":"gone1","appid":"wx1234567890abcdef","path":"code/gone","disabled":true}
{"prefix":"https://app.shop.com/download","appid":"wx1234567890abcdef","path":"rule/download"}
{"host":"app.shop.com","unmatched":"https://old.shop.com"}
{"host":"app.shop.com","file":"/MP_verify_x.txt","body":"verified"}"#;

    fn entry(line: &str) -> Entry {
        match parse_line(line).unwrap() {
            Item::Entry(entry) => entry,
            Item::Generate(_) => panic!("a line without a code: {line}"),
        }
    }

    fn state() -> TableState {
        let mut builder = StateBuilder::new();
        for line in TABLE.lines() {
            builder.add(entry(line));
        }
        builder.finish("epoch".into(), 1, None)
    }

    /// The answer to `url` from `snapshot`, in a few words (status, where
    /// it leads, the body), and the keys it was tagged with.
    fn answer_of(snapshot: &Snapshot, url: &str) -> (String, BTreeSet<String>) {
        let options = ScanOptions::default();
        let target = crate::model::decide::split_url(url).unwrap();
        let headers = HeaderMap::new();
        let request = ScanRequest {
            headers: &headers,
            peer: "192.0.2.1".parse().unwrap(),
            target,
            scheme: Scheme::Assumed,
            now_unix: 1_800_000_000,
        };
        let (response, _) = answer(snapshot, &options, &Metrics::disabled(), None, &request);
        let text = |name| {
            response
                .headers()
                .get(name)
                .map_or(String::new(), |v: &HeaderValue| v.to_str().unwrap().to_string())
        };
        let body = {
            use http_body_util::BodyExt;
            let bytes = futures_util::FutureExt::now_or_never(response.body().clone().collect())
                .unwrap()
                .unwrap()
                .to_bytes();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let seen = format!("{} {} {body}", response.status().as_u16(), text("location"));
        let keys = text("xkey")
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        (seen, keys)
    }

    /// Every kind of cacheable answer, by a URL that gets it.
    const ANSWERS: &[(&str, &str)] = &[
        ("code", "https://go.example.com/spring24"),
        ("gone", "https://go.example.com/gone1"),
        ("rule", "https://app.shop.com/download?src=box"),
        ("pass-through", "https://app.shop.com/about.txt"),
        ("file", "https://app.shop.com/MP_verify_x.txt"),
        ("404", "https://go.example.com/lost"),
    ];

    /// Every kind of change, by name.
    fn changes() -> Vec<(&'static str, Change)> {
        let code = |code: &str| {
            entry(&format!(
                r#"{{"code":"{code}","appid":"wx1234567890abcdef","path":"new/{code}"}}"#
            ))
        };
        vec![
            ("put code spring24", Change::Put(code("spring24"))),
            (
                "delete code spring24",
                Change::Delete(EntryKey::from_parts(EntryKind::Code, "spring24".into())),
            ),
            ("enable code gone1", Change::Put(code("gone1"))),
            ("put code download", Change::Put(code("download"))),
            ("put code about.txt", Change::Put(code("about.txt"))),
            ("put code MP_verify_x.txt", Change::Put(code("MP_verify_x.txt"))),
            ("put code lost", Change::Put(code("lost"))),
            (
                "put rule download",
                Change::Put(entry(
                    r#"{"prefix":"https://app.shop.com/download","appid":"wx1234567890abcdef","path":"rule/new"}"#,
                )),
            ),
            (
                "put rule about",
                Change::Put(entry(
                    r#"{"prefix":"https://app.shop.com/about.txt","appid":"wx1234567890abcdef","path":"rule/about"}"#,
                )),
            ),
            (
                "delete rule download",
                Change::Delete(EntryKey::from_parts(
                    EntryKind::Rule,
                    crate::model::url_key::normalize_absolute("https://app.shop.com/download").unwrap(),
                )),
            ),
            (
                "put host",
                Change::Put(entry(r#"{"host":"app.shop.com","unmatched":"https://new.shop.com"}"#)),
            ),
            (
                "delete host",
                Change::Delete(EntryKey::from_parts(EntryKind::Host, "app.shop.com".into())),
            ),
            (
                "put file",
                Change::Put(entry(
                    r#"{"host":"app.shop.com","file":"/MP_verify_x.txt","body":"again"}"#,
                )),
            ),
            (
                "put file about",
                Change::Put(entry(r#"{"host":"app.shop.com","file":"/about.txt","body":"a file"}"#)),
            ),
            (
                "delete file",
                Change::Delete(EntryKey::of(&entry(
                    r#"{"host":"app.shop.com","file":"/MP_verify_x.txt","body":"verified"}"#,
                ))),
            ),
        ]
    }

    /// Which changes alter which answers: each pair must be purged by the
    /// keys the answer carries. One line an answer kind; the test below
    /// checks this list against what the table really answers.
    const MUST_PURGE: &[(&str, &[&str])] = &[
        ("code", &["put code spring24", "delete code spring24"]),
        ("gone", &["enable code gone1"]),
        (
            "rule",
            &["put code download", "put rule download", "delete rule download"],
        ),
        (
            "pass-through",
            &[
                "put code about.txt",
                "put rule about",
                "put host",
                "delete host",
                "put file about",
            ],
        ),
        ("file", &["put file", "delete file"]),
        ("404", &["put code lost"]),
    ];

    #[test]
    fn every_answer_carries_the_key_of_every_change_that_alters_it() {
        let mut altered: Vec<(&str, Vec<&str>)> = Vec::new();
        let mut unpurged = Vec::new();
        for &(kind, url) in ANSWERS {
            let (before, keys) = answer_of(&state().snapshot(), url);
            let mut by: Vec<&str> = Vec::new();
            for (name, change) in changes() {
                let mut changed = state();
                changed.apply(2, [change.clone()]);
                let (after, _) = answer_of(&changed.snapshot(), url);
                if after == before {
                    continue;
                }
                by.push(name);
                let purged: BTreeSet<String> = crate::model::keys::keys_of([&change])
                    .iter()
                    .map(|k| k.to_string())
                    .collect();
                if purged.is_disjoint(&keys) {
                    unpurged.push(format!(
                        "{kind} ({url}, keys {keys:?}) is altered by `{name}`, which purges {purged:?}"
                    ));
                }
            }
            altered.push((kind, by));
        }
        assert!(unpurged.is_empty(), "{}", unpurged.join("\n"));
        let listed: Vec<(&str, Vec<&str>)> = MUST_PURGE.iter().map(|(k, c)| (*k, c.to_vec())).collect();
        assert_eq!(altered, listed, "MUST_PURGE no longer says what alters what");
    }
}
