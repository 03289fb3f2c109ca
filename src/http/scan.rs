//! The scan path: `/{code}` or a legacy URL → `302` to the WeChat scheme.
//!
//! Order: a single path segment that is a known code wins; otherwise the
//! request's URL (scheme, `Host`, path and query) is matched against the
//! rules; otherwise `404`. An entry that is disabled or outside its validity
//! window answers `410`. No allocation on the way to a code's answer except
//! the `Location` value itself.

use super::forwarded;
use super::respond::{self, Body};
use crate::domain::Availability;
use crate::metrics::{Kind, Outcome};
use crate::percent::decode_strict;
use crate::scheme_url::{self, LegacyScan};
use crate::table::{Hit, Snapshot};
use crate::url_key;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Response, StatusCode};
use ipnet::IpNet;
use std::cell::RefCell;
use std::net::IpAddr;

thread_local! {
    /// Reused buffer for the normalized request URL, so rule lookups do not
    /// allocate a key per request.
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(256));
}

/// A scan to answer.
pub struct ScanRequest<'a> {
    /// Request headers, for the scheme (see [`super::forwarded`]); only
    /// consulted when the URL is matched against rules.
    pub headers: &'a HeaderMap,
    pub peer: IpAddr,
    pub trusted_proxies: &'a [IpNet],
    /// The `Host` header as sent.
    pub host: &'a str,
    /// Path and query as sent.
    pub target: &'a str,
    /// The path alone.
    pub path: &'a str,
    pub now_unix: i64,
}

/// Longest percent-encoded form of a 32-character code.
const MAX_ENCODED_CODE: usize = 3 * 32;

pub fn answer(table: &Snapshot, cache_control: &HeaderValue, req: &ScanRequest<'_>) -> (Response<Body>, Kind, Outcome) {
    let mut bad_escape = false;
    if let Some(segment) = single_segment(req.path) {
        let decoded = decode_strict(segment.as_bytes());
        bad_escape = decoded.is_err();
        if let Some(hit) = decoded.ok().and_then(|code| table.code(&code)) {
            return answer_hit(&hit, Kind::Code, cache_control, req, None);
        }
    }
    let scheme = forwarded::scheme(req.headers, req.peer, req.trusted_proxies);
    let matched = KEY.with(|key| {
        let mut key = key.borrow_mut();
        url_key::write_request_key(&mut key, scheme, req.host, req.target).map(|()| table.rule(&key))
    });
    match matched {
        Ok(Some(hit)) => {
            let url = format!("{scheme}://{}{}", req.host, req.target);
            let legacy = LegacyScan {
                url: &url,
                scancode_time: req.now_unix,
            };
            answer_hit(&hit, Kind::Rule, cache_control, req, Some(legacy))
        }
        Err(url_key::InvalidHost) => bad_request("The Host header does not name a host."),
        Ok(None) if bad_escape => bad_request("The path has an invalid percent-encoding or is not UTF-8 once decoded."),
        Ok(None) => (
            respond::html_error(
                StatusCode::NOT_FOUND,
                "Not found",
                "This QR code is not known here.",
                None,
            ),
            Kind::None,
            Outcome::NotFound,
        ),
    }
}

fn answer_hit(
    hit: &Hit<'_>,
    kind: Kind,
    cache_control: &HeaderValue,
    req: &ScanRequest<'_>,
    legacy: Option<LegacyScan<'_>>,
) -> (Response<Body>, Kind, Outcome) {
    match hit.availability(req.now_unix) {
        Availability::Live => (
            respond::redirect(scheme_url::render(hit, legacy), cache_control),
            kind,
            Outcome::Found,
        ),
        gone => {
            let fallback = hit.profile.key.fallback_url.as_ref().map(|u| u.as_str());
            let page = respond::html_error(StatusCode::GONE, "No longer available", gone_message(gone), fallback);
            (page, kind, Outcome::Gone)
        }
    }
}

/// Why an entry answers `410`, for people and for JSON clients.
pub fn gone_message(availability: Availability) -> &'static str {
    match availability {
        Availability::Disabled => "This QR code has been switched off.",
        Availability::NotYetValid => "This QR code is not active yet.",
        Availability::Expired | Availability::Live => "This QR code has expired.",
    }
}

fn bad_request(message: &str) -> (Response<Body>, Kind, Outcome) {
    (
        respond::html_error(StatusCode::BAD_REQUEST, "Bad request", message, None),
        Kind::None,
        Outcome::BadRequest,
    )
}

/// `abc` for `/abc`; `None` for `/`, `/a/b` or anything too long to be a code.
fn single_segment(path: &str) -> Option<&str> {
    let segment = path.strip_prefix('/')?;
    (!segment.is_empty() && segment.len() <= MAX_ENCODED_CODE && !segment.contains('/')).then_some(segment)
}
