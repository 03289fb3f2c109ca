//! Response builders. Error answers are JSON on `/v1/` and a small HTML page
//! elsewhere (a person with a phone sees those); neither is cached.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;

pub type Body = Full<Bytes>;

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// `302 Found` to `location`, cacheable as configured.
pub fn redirect(location: String, cache_control: &HeaderValue) -> Response<Body> {
    let mut response = Response::new(Body::default());
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
                None,
            )
        }
    };
    headers.insert(CACHE_CONTROL, cache_control.clone());
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

/// A small HTML page for a person holding a phone; `fallback` is offered as
/// a link when the entry has one.
pub fn html_error(status: StatusCode, title: &str, message: &str, fallback: Option<&str>) -> Response<Body> {
    let link = fallback
        .map(|url| format!("<p><a href=\"{}\">Continue on the web</a></p>", escape(url)))
        .unwrap_or_default();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body><h1>{title}</h1><p>{}</p>{link}</body></html>\n",
        escape(message),
        title = escape(title),
    );
    let mut response = Response::new(Body::new(Bytes::from(page)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HTML);
    response.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    response
}

/// An error in the form the route's clients read.
pub fn error(json_route: bool, status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    if json_route {
        json_error(status, kind, message)
    } else {
        html_error(status, status.canonical_reason().unwrap_or("Error"), message, None)
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

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_it_echoes() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
