//! `GET /v1/resolve?code=CODE` and `GET /v1/resolve?url=URL`: the entry
//! point as JSON. Mini program pages call it with the `q` they were given.

use super::respond::{self, Body};
use super::scan::gone_message;
use crate::domain::{Availability, Code};
use crate::metrics::{Kind, Outcome};
use crate::percent as params;
use crate::scheme_url::{self, LegacyScan};
use crate::table::{Hit, Snapshot};
use crate::url_key;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde::Serialize;

/// The longest `url` accepted, matching the request-target limit.
pub const MAX_URL_LEN: usize = 8192;

/// The JSON answer.
#[derive(Debug, Serialize)]
pub struct Resolved<'a> {
    /// `code` or `rule`.
    pub kind: &'static str,
    pub appid: &'a str,
    pub path: &'a str,
    /// The entry point's own query, not encoded.
    pub query: &'a str,
    pub env_version: &'static str,
    /// What a scan redirects to (for a rule: with `q` and `scancode_time`).
    pub scheme_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_url: Option<&'a str>,
    /// The matching rule's prefix, for `kind: rule`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<&'a str>,
}

pub fn answer(
    table: &Snapshot,
    cache_control: &HeaderValue,
    query: &str,
    now_unix: i64,
) -> (Response<Body>, Kind, Outcome) {
    match (params::get(query, "code"), params::get(query, "url")) {
        (Some(code), None) => by_code(table, cache_control, code, now_unix),
        (None, Some(url)) => by_url(table, cache_control, url, now_unix),
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
    code: Result<String, params::ParamError>,
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
        Some(hit) => found(&hit, "code", cache_control, None, now_unix),
        None => not_found(Kind::Code, "no such code"),
    }
}

fn by_url(
    table: &Snapshot,
    cache_control: &HeaderValue,
    url: Result<String, params::ParamError>,
    now_unix: i64,
) -> (Response<Body>, Kind, Outcome) {
    let url = match url.map(decode_again_if_encoded) {
        Ok(Ok(url)) => url,
        Ok(Err(e)) | Err(e) => return bad_request(Kind::Rule, &format!("`url` {}", e.describe())),
    };
    if url.len() > MAX_URL_LEN {
        return bad_request(Kind::Rule, &format!("`url` must be at most {MAX_URL_LEN} bytes"));
    }
    let key = match url_key::normalize_absolute(&url) {
        Ok(key) => key,
        Err(rule) => return bad_request(Kind::Rule, &format!("field `url`: {rule}")),
    };
    match table.rule(&key) {
        Some(hit) => {
            let legacy = LegacyScan {
                url: &url,
                scancode_time: now_unix,
            };
            found(&hit, "rule", cache_control, Some(legacy), now_unix)
        }
        None => not_found(Kind::Rule, "no rule matches this URL"),
    }
}

/// WeChat hands a page `q` already encoded; a page that encodes it once more
/// for the query string sends `url=https%253A…`, which decodes to
/// `https%3A…`. Such a value is decoded a second time: no absolute URL starts
/// that way.
fn decode_again_if_encoded(url: String) -> Result<String, params::ParamError> {
    let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
    if lower.starts_with("http%3a") || lower.starts_with("https%3a") {
        params::decode_strict(url.as_bytes()).map(|u| u.into_owned())
    } else {
        Ok(url)
    }
}

fn found(
    hit: &Hit<'_>,
    kind_label: &'static str,
    cache_control: &HeaderValue,
    legacy: Option<LegacyScan<'_>>,
    now_unix: i64,
) -> (Response<Body>, Kind, Outcome) {
    let kind = if legacy.is_some() { Kind::Rule } else { Kind::Code };
    let availability = hit.availability(now_unix);
    if availability != Availability::Live {
        let response = respond::json_error(StatusCode::GONE, "gone", gone_message(availability));
        return (response, kind, Outcome::Gone);
    }
    let profile = &hit.profile.key;
    let body = Resolved {
        kind: kind_label,
        appid: profile.appid.as_str(),
        path: profile.path.as_str(),
        query: hit.query,
        env_version: profile.env_version.as_str(),
        scheme_url: scheme_url::render(hit, legacy),
        fallback_url: profile.fallback_url.as_ref().map(|u| u.as_str()),
        prefix: hit.prefix,
    };
    (
        respond::json(StatusCode::OK, &body, cache_control),
        kind,
        Outcome::Found,
    )
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
