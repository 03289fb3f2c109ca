//! `GET /v1/resolve?code=CODE` and `GET /v1/resolve?url=URL`: the answer as
//! JSON. Mini program pages call it with the `q` or `scene` they were given
//! (`sdk/miniprogram/`). A `url` goes through the same [`decide`] as a scan
//! of that URL, so the two always agree.
//!
//! `&scan=1` marks a call made for a scan (the landing page after WeChat's
//! own scanner read the code): a found, live entry then counts as a scan of
//! class `wechat-scan`, with the same relaxed atomic add as a camera scan
//! (and, for a rule that counts by a parameter, by its value too), and the
//! answer is `no-store`, so that no cache in front answers (and swallows)
//! the next one. Only calls with WeChat's own User-Agent (`MicroMessenger`,
//! which `wx.request` always sends) count: curl and bots answer the same but
//! count nothing, as their scans count under `other`, outside totals. `&scancode_time=N` is the time WeChat gave the
//! page; a rule's `page_url` carries it, as WeChat would have.

use super::respond::{self, Body};
use crate::model::client_class::CountClass;
use crate::model::decide::{decide, split_url, CodeHosts, Decision};
use crate::model::domain::{Availability, Code};
use crate::model::percent;
use crate::model::scheme_url::{self, LegacyScan};
use crate::model::table::{Hit, Snapshot};
use crate::replication::metrics::{Kind, Outcome};
use crate::replication::stats::ScanCounts;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde::Serialize;

/// The longest `url` accepted, matching the request-target limit.
pub const MAX_URL_LEN: usize = 8192;

/// The JSON answer.
#[derive(Debug, Serialize)]
pub struct Resolved<'a> {
    /// `code`, `rule`, `file` or `pass_through`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    /// The entry point's own query, not encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_version: Option<&'static str>,
    /// What a scan redirects to (for a rule: with `q` and `scancode_time`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme_url: Option<String>,
    /// The page as `wx.redirectTo` takes it: `/path?query`, where the query
    /// is what the page would get had it been opened by `scheme_url` (for
    /// a rule: its query, then `q` and `scancode_time`, as WeChat passes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_url: Option<&'a str>,
    /// The matching rule's prefix, for `kind: rule`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<&'a str>,
    /// Where a scan is sent, for `kind: pass_through`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `q` was shortened to keep WeChat's 512-character query limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub q_truncated: bool,
}

impl<'a> Resolved<'a> {
    fn kind(kind: &'static str) -> Resolved<'a> {
        Resolved {
            kind,
            appid: None,
            path: None,
            query: None,
            env_version: None,
            scheme_url: None,
            page_url: None,
            fallback_url: None,
            prefix: None,
            location: None,
            q_truncated: false,
        }
    }
}

/// How a call asks to be answered, besides what it resolves.
struct Call<'a> {
    cache_control: &'a HeaderValue,
    /// Where a found entry counts as a `wechat-scan` (`&scan=1` from
    /// WeChat, and counting is on).
    counts: Option<&'a ScanCounts>,
    /// A rule's `scancode_time`.
    scancode_time: i64,
    now_unix: i64,
}

/// `Cache-Control` of a counted call: every scan must reach a node.
static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Answers `/v1/resolve?{query}`; `counts` is where this node counts scans
/// (`None`: it does not), `from_wechat` says whether the caller's
/// User-Agent is WeChat's (`&scan=1` counts only then; asked only for those).
pub fn answer(
    table: &Snapshot,
    codes: &CodeHosts,
    cache_control: &HeaderValue,
    query: &str,
    now_unix: i64,
    counts: Option<&ScanCounts>,
    from_wechat: impl FnOnce() -> bool,
) -> (Response<Body>, Kind, Outcome) {
    // Both are plain words or digits: read as they are, not decoded.
    let scan = match percent::raw(query, "scan") {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return bad_request(Kind::None, "`scan` must be 1 (a scan to count) or 0"),
    };
    let scancode_time = match percent::raw(query, "scancode_time").map(str::parse::<i64>) {
        None => now_unix,
        Some(Ok(t)) if (0..=now_unix + 86_400).contains(&t) => t,
        Some(_) => {
            return bad_request(
                Kind::None,
                "`scancode_time` must be UNIX seconds (a whole number, at most a day ahead of this node's clock)",
            )
        }
    };
    let call = Call {
        cache_control: if scan { &NO_STORE } else { cache_control },
        counts: counts.filter(|_| scan && from_wechat()),
        scancode_time,
        now_unix,
    };
    match (percent::get(query, "code"), percent::get(query, "url")) {
        (Some(code), None) => by_code(table, &call, code),
        (None, Some(url)) => by_url(table, codes, &call, url),
        (Some(_), Some(_)) => bad_request(Kind::None, "give either `code` or `url`, not both"),
        (None, None) => bad_request(
            Kind::None,
            "missing parameter: `code` (a launch code) or `url` (a scanned URL)",
        ),
    }
}

fn by_code(
    table: &Snapshot,
    call: &Call<'_>,
    code: Result<String, percent::ParamError>,
) -> (Response<Body>, Kind, Outcome) {
    let code = match code {
        Ok(code) => code,
        Err(e) => return bad_request(Kind::Code, &format!("`code` {}", e.describe())),
    };
    if let Err(e) = code.parse::<Code>() {
        return bad_request(Kind::Code, &e.to_string());
    }
    match table.code(&code) {
        Some(hit) => found(&hit, Kind::Code, call, None, ""),
        None => not_found(Kind::Code, "no such code"),
    }
}

fn by_url(
    table: &Snapshot,
    codes: &CodeHosts,
    call: &Call<'_>,
    url: Result<String, percent::ParamError>,
) -> (Response<Body>, Kind, Outcome) {
    let url = match url.map(decode_again_if_encoded) {
        Ok(Ok(url)) => url,
        Ok(Err(e)) | Err(e) => return bad_request(Kind::Rule, &format!("`url` {}", e.describe())),
    };
    if url.len() > MAX_URL_LEN {
        return bad_request(Kind::Rule, &format!("`url` must be at most {MAX_URL_LEN} bytes"));
    }
    let target = match split_url(&url) {
        Ok(target) => target,
        Err(rule) => return bad_request(Kind::Rule, &format!("field `url`: {rule}")),
    };
    let mut key = String::with_capacity(url.len() + 8);
    match decide(table, codes, &target, &mut key) {
        Decision::Code(hit) => found(&hit, Kind::Code, call, None, ""),
        Decision::Rule(hit) => {
            let legacy = LegacyScan {
                url: &url,
                scancode_time: call.scancode_time,
            };
            found(&hit, Kind::Rule, call, Some(legacy), target.path_and_query)
        }
        Decision::File(_) => (
            respond::json(StatusCode::OK, &Resolved::kind("file"), call.cache_control),
            Kind::File,
            Outcome::Found,
        ),
        Decision::PassThrough(origin) => {
            let mut body = Resolved::kind("pass_through");
            body.location = Some(format!("{origin}{}", target.path_and_query));
            (
                respond::json(StatusCode::OK, &body, call.cache_control),
                Kind::PassThrough,
                Outcome::Found,
            )
        }
        Decision::NotFound => not_found(Kind::Rule, "no code or rule matches this URL"),
        Decision::BadRequest(message) => bad_request(Kind::None, message),
    }
}

/// WeChat hands a page `q` already encoded; a page that encodes it once more
/// for the query string sends `url=https%253A…`, which decodes to
/// `https%3A…`. Such a value is decoded a second time: no absolute URL starts
/// that way.
fn decode_again_if_encoded(url: String) -> Result<String, percent::ParamError> {
    let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
    if lower.starts_with("http%3a") || lower.starts_with("https%3a") {
        percent::decode_strict(url.as_bytes()).map(|u| u.into_owned())
    } else {
        Ok(url)
    }
}

/// The `410` answer: why, and where people without the mini program go.
#[derive(Debug, Serialize)]
struct Gone<'a> {
    error: &'static str,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_url: Option<&'a str>,
}

/// `scanned` is the path and query of the URL resolved (`""` for a code).
fn found(
    hit: &Hit<'_>,
    kind: Kind,
    call: &Call<'_>,
    legacy: Option<LegacyScan<'_>>,
    scanned: &str,
) -> (Response<Body>, Kind, Outcome) {
    let profile = &hit.profile.key;
    let availability = hit.availability(call.now_unix);
    if availability != Availability::Live {
        let body = Gone {
            error: "gone",
            message: gone_message(availability),
            fallback_url: profile.fallback_url.as_ref().map(|u| u.as_str()),
        };
        let response = respond::json(StatusCode::GONE, &body, &NO_STORE);
        return (response, kind, Outcome::Gone);
    }
    if call.counts.is_some() {
        // The counter is almost never in cache: fetch it while the answer
        // is built, add once it is.
        crate::model::table::prefetch_counts(hit.counts);
    }
    let mut page_url = String::with_capacity(2 + profile.path.as_str().len() + scheme_url::MAX_QUERY);
    page_url.push('/');
    page_url.push_str(profile.path.as_str());
    page_url.push('?');
    let rendered = scheme_url::render_with_page_query(hit, legacy, &mut page_url);
    if page_url.ends_with('?') {
        page_url.pop();
    }
    let body = Resolved {
        kind: if kind == Kind::Rule { "rule" } else { "code" },
        appid: Some(profile.appid.as_str()),
        path: Some(profile.path.as_str()),
        query: Some(hit.query),
        env_version: Some(profile.env_version.as_str()),
        scheme_url: Some(rendered.url),
        page_url: Some(page_url),
        fallback_url: profile.fallback_url.as_ref().map(|u| u.as_str()),
        prefix: hit.prefix,
        location: None,
        q_truncated: rendered.truncated,
    };
    let response = respond::json(StatusCode::OK, &body, call.cache_control);
    if let Some(counts) = call.counts {
        if let Some(cell) = CountClass::WechatScan.cell().and_then(|i| hit.counts.get(i)) {
            cell.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // A rule that counts by a parameter also counts by its value.
        if let (Some(param), Some(rule)) = (&profile.count_by, hit.prefix_key) {
            counts.add_value(rule, param.as_str(), scanned, CountClass::WechatScan);
        }
    }
    (response, kind, Outcome::Found)
}

/// Why an entry answers `410`, for JSON clients.
pub fn gone_message(availability: Availability) -> &'static str {
    match availability {
        Availability::Disabled => "This QR code has been switched off.",
        Availability::NotYetValid => "This QR code is not active yet.",
        Availability::Expired | Availability::Live => "This QR code has expired.",
    }
}

fn bad_request(kind: Kind, message: &str) -> (Response<Body>, Kind, Outcome) {
    (
        respond::json_error(StatusCode::BAD_REQUEST, "bad_request", message),
        kind,
        Outcome::BadRequest,
    )
}

fn not_found(kind: Kind, message: &str) -> (Response<Body>, Kind, Outcome) {
    (
        respond::json_error(StatusCode::NOT_FOUND, "not_found", message),
        kind,
        Outcome::NotFound,
    )
}
