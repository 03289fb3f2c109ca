//! Admin API responses: JSON bodies, JSON errors, streamed NDJSON.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// The admin API's body: a whole buffer or a stream (export).
pub type AdminBody = UnsyncBoxBody<Bytes, std::io::Error>;

pub type Reply = Response<AdminBody>;

pub fn full(bytes: impl Into<Bytes>) -> AdminBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn empty(status: StatusCode) -> Reply {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: &'a str,
}

/// `{"error": kind, "message": …}`.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Reply {
    json(
        status,
        &ErrorBody {
            error: kind,
            field: None,
            message,
        },
    )
}

/// `422` `{"error":"invalid","field":…,"message":…}`.
pub fn invalid(field: &str, message: &str) -> Reply {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ErrorBody {
            error: "invalid",
            field: Some(field),
            message,
        },
    )
}

pub fn not_found(message: &str) -> Reply {
    error(StatusCode::NOT_FOUND, "not_found", message)
}

pub fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub fn internal(message: &str) -> Reply {
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}
