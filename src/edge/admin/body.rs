//! Reading request bodies: with a size cap and a deadline, so a client that
//! stalls holds nothing for long, and JSON with errors that name the field.

use super::error::ApiError;
use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Largest JSON body of a single write.
pub const MAX_JSON: usize = 64 * 1024;

/// Reads a whole body of at most `limit` bytes within `deadline`.
pub async fn read(body: Body, limit: usize, deadline: Duration) -> Result<Bytes, ApiError> {
    let collected = tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await;
    match collected {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the body did not arrive within {deadline:?}"),
        )),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {} KiB", limit / 1024),
        )),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("reading the body failed: {e}"))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Parses JSON, naming the field at fault (`serde_path_to_error`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        // serde_json's position is of no use in a one-object body.
        let message = match text.rfind(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string);
        let field = unknown.or_else(|| {
            let head = path.split(['.', '[']).next().unwrap_or("");
            (!head.is_empty() && head != "?").then(|| head.to_string())
        });
        match (field, inner.classify()) {
            (Some(field), serde_json::error::Category::Data) => ApiError::invalid(&field, message),
            _ => ApiError::bad_request(format!("the body is not valid JSON: {message}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Reads and parses a JSON body of at most [`MAX_JSON`] bytes.
pub async fn json<T: DeserializeOwned>(body: Body, deadline: Duration) -> Result<T, ApiError> {
    parse(&read(body, MAX_JSON, deadline).await?)
}
