//! `GET /v1/resolve?code=CODE` and `GET /v1/resolve?url=URL`: the answer as
//! JSON. Mini program pages call it with the `q` they were given. A `url`
//! goes through the same [`decide`] as a scan of that URL, so the two
//! always agree.

use super::respond::{self, Body};
use crate::model::decide::{decide, split_url, CodeHosts, Decision};
use crate::model::domain::{Availability, Code};
use crate::model::percent;
use crate::model::scheme_url::{self, LegacyScan};
use crate::model::table::{Hit, Snapshot};
use crate::replication::metrics::{Kind, Outcome};
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
            fallback_url: None,
            prefix: None,
            location: None,
            q_truncated: false,
        }
    }
}

pub fn answer(
    table: &Snapshot,
    codes: &CodeHosts,
    cache_control: &HeaderValue,
    query: &str,
    now_unix: i64,
) -> (Response<Body>, Kind, Outcome) {
    match (percent::get(query, "code"), percent::get(query, "url")) {
        (Some(code), None) => by_code(table, cache_control, code, now_unix),
        (None, Some(url)) => by_url(table, codes, cache_control, url, now_unix),
        (Some(_), Some(_)) => bad_request(Kind::None, "give either `code` or `url`, not both"),
        (None, None) => bad_request(
            Kind::None,
            "missing parameter: `code` (a launch code) or `url` (a scanned URL)",
        ),
    }
}

fn by_code(
    table: &Snapshot,
    cache_control: &HeaderValue,
    code: Result<String, percent::ParamError>,
    now_unix: i64,
) -> (Response<Body>, Kind, Outcome) {
    let code = match code {
        Ok(code) => code,
        Err(e) => return bad_request(Kind::Code, &format!("`code` {}", e.describe())),
    };
    if let Err(e) = code.parse::<Code>() {
        return bad_request(Kind::Code, &e.to_string());
    }
    match table.code(&code) {
        Some(hit) => found(&hit, Kind::Code, cache_control, None, now_unix),
        None => not_found(Kind::Code, "no such code"),
    }
}

fn by_url(
    table: &Snapshot,
    codes: &CodeHosts,
    cache_control: &HeaderValue,
    url: Result<String, percent::ParamError>,
    now_unix: i64,
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
        Decision::Code(hit) => found(&hit, Kind::Code, cache_control, None, now_unix),
        Decision::Rule(hit) => {
            let legacy = LegacyScan {
                url: &url,
                scancode_time: now_unix,
            };
            found(&hit, Kind::Rule, cache_control, Some(legacy), now_unix)
        }
        Decision::File(_) => (
            respond::json(StatusCode::OK, &Resolved::kind("file"), cache_control),
            Kind::File,
            Outcome::Found,
        ),
        Decision::PassThrough(origin) => {
            let mut body = Resolved::kind("pass_through");
            body.location = Some(format!("{origin}{}", target.path_and_query));
            (
                respond::json(StatusCode::OK, &body, cache_control),
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

fn found(
    hit: &Hit<'_>,
    kind: Kind,
    cache_control: &HeaderValue,
    legacy: Option<LegacyScan<'_>>,
    now_unix: i64,
) -> (Response<Body>, Kind, Outcome) {
    let availability = hit.availability(now_unix);
    if availability != Availability::Live {
        let response = respond::json_error(StatusCode::GONE, "gone", gone_message(availability));
        return (response, kind, Outcome::Gone);
    }
    let profile = &hit.profile.key;
    let rendered = scheme_url::render(hit, legacy);
    let body = Resolved {
        kind: if kind == Kind::Rule { "rule" } else { "code" },
        appid: Some(profile.appid.as_str()),
        path: Some(profile.path.as_str()),
        query: Some(hit.query),
        env_version: Some(profile.env_version.as_str()),
        scheme_url: Some(rendered.url),
        fallback_url: profile.fallback_url.as_ref().map(|u| u.as_str()),
        prefix: hit.prefix,
        location: None,
        q_truncated: rendered.truncated,
    };
    (
        respond::json(StatusCode::OK, &body, cache_control),
        kind,
        Outcome::Found,
    )
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
