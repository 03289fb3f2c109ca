//! Response builders. Error answers are JSON on `/v1/` and a small HTML page
//! elsewhere (a person with a phone sees those); neither is cached.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, RETRY_AFTER, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Response, StatusCode};
use serde::Serialize;

pub type Body = Full<Bytes>;

/// A header value made once (at start-up) and never freed: cloning it for
/// every answer copies a pointer, where a value made from a `String` would
/// bump a reference count that every scan thread shares. `text` must be
/// visible ASCII (configuration: header names, digits).
pub fn lasting(text: String) -> HeaderValue {
    HeaderValue::from_static(Box::leak(text.into_boxed_str()))
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// Headers a scan answer carries at most, so the map is sized once (a
/// growing map re-hashes): content type, cache control, vary, security
/// policy, nosniff, two surrogate-key headers, the client class.
const SCAN_HEADERS: usize = 8;

/// A response whose header map already has room for a scan answer's.
fn sized(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.headers_mut() = hyper::HeaderMap::with_capacity(SCAN_HEADERS);
    response
}

/// `302 Found` to `location`, cacheable as configured, varying on `vary`.
pub fn redirect(location: String, cache_control: &HeaderValue, vary: Option<HeaderValue>) -> Response<Body> {
    let mut response = sized(Body::default());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    // Every byte of `location` is an ASCII character from our own encoder.
    match HeaderValue::try_from(location) {
        Ok(value) => headers.insert(LOCATION, value),
        Err(_) => {
            return html_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "The redirect could not be built.",
            )
        }
    };
    headers.insert(CACHE_CONTROL, cache_control.clone());
    if let Some(vary) = vary {
        headers.insert(VARY, vary);
    }
    response
}

/// What a page may load: nothing from anywhere, its own inline style and
/// script, and `data:` images.
const PAGE_POLICY: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
);
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const VARY_LANGUAGE: HeaderValue = HeaderValue::from_static("Accept-Language");

/// An HTML page from [`super::pages`]: cacheable with `cache_control`, or
/// `no-store` without. It varies on `Accept-Language` (launch pages set
/// their own `Vary`).
pub fn page(status: StatusCode, html: String, cache_control: Option<&HeaderValue>) -> Response<Body> {
    let mut response = sized(Body::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HTML);
    headers.insert(CACHE_CONTROL, cache_control.cloned().unwrap_or(NO_STORE));
    headers.insert(CONTENT_SECURITY_POLICY, PAGE_POLICY);
    headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(VARY, VARY_LANGUAGE);
    response
}

/// A verification file: the stored text as `text/plain`.
pub fn file(body: &str, cache_control: &HeaderValue) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::copy_from_slice(body.as_bytes())));
    response.headers_mut().insert(CONTENT_TYPE, TEXT);
    response.headers_mut().insert(CACHE_CONTROL, cache_control.clone());
    response
}

/// A JSON body with the given status.
pub fn json(status: StatusCode, value: &impl Serialize, cache_control: &HeaderValue) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response.headers_mut().insert(CACHE_CONTROL, cache_control.clone());
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

/// `{"error": kind, "message": …}`; `kind` is `not_found`, `gone`,
/// `bad_request`, `method_not_allowed`, `unavailable` or `uri_too_long`.
pub fn json_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    json(status, &ErrorBody { error: kind, message }, &NO_STORE)
}

/// A small English HTML page for errors outside the scan answer proper.
pub fn html_error(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    let html = super::pages::error(
        super::pages::Problem::Other { title, message },
        super::pages::Lang::En,
        None,
    );
    page(status, html, None)
}

/// An error in the form the route's clients read.
pub fn error(json_route: bool, status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    if json_route {
        json_error(status, kind, message)
    } else {
        html_error(status, status.canonical_reason().unwrap_or("Error"), message)
    }
}

/// `405` with the `Allow` header.
pub fn method_not_allowed(json_route: bool) -> Response<Body> {
    let mut response = error(
        json_route,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Only GET and HEAD are answered here.",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// `503` while the table is still loading.
pub fn not_ready(json_route: bool) -> Response<Body> {
    let mut response = error(
        json_route,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "The table is still loading; try again in a moment.",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `503` on a connection served from the reserve (the listener is full).
pub fn over_capacity(json_route: bool) -> Response<Body> {
    let mut response = error(
        json_route,
        StatusCode::SERVICE_UNAVAILABLE,
        "over_capacity",
        "The server is at its connection limit; try again shortly.",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A plain-text answer (health checks, metrics).
pub fn text(status: StatusCode, body: impl Into<Bytes>, content_type: Option<&'static str>) -> Response<Body> {
    let mut response = Response::new(Body::new(body.into()));
    *response.status_mut() = status;
    let content_type = content_type.map_or(TEXT, HeaderValue::from_static);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    response
}
