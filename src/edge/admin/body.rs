//! Reading request bodies: with a size cap and a deadline, so a client that
//! stalls holds nothing for long, and JSON with errors that name the field.

use super::error::{ApiError, ErrorCode};
use crate::model::domain::Line;
use crate::model::table_file::known_field;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use std::time::Duration;

/// Largest JSON body of a single write.
pub const MAX_JSON: usize = 64 * 1024;

/// Reads a whole body of at most `limit` bytes within `deadline`.
pub async fn read(body: Body, limit: usize, deadline: Duration) -> Result<Bytes, ApiError> {
    let collected = tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await;
    match collected {
        Err(_) => Err(ApiError::new(
            ErrorCode::Timeout,
            format!("the body did not arrive within {deadline:?}"),
        )),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("the body is over {} KiB", limit / 1024),
        )),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("reading the body failed: {e}"))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Parses a JSON body into a value; malformed JSON is a `400` with
/// serde_json's own account of where.
pub fn parse_value(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// A table-file line from a JSON object, naming the field at fault: a key
/// that no line has is refused by its name (checked here, against the
/// table file's fields, not read out of serde's message), a value of the
/// wrong type by its path (`serde_path_to_error`).
pub fn line_from_value(value: Value) -> Result<Line, ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    if let Some(unknown) = object.keys().find(|k| known_field(k).is_none()) {
        return Err(ApiError::invalid(unknown, format!("unknown field `{unknown}`")));
    }
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let field = e.path().iter().find_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => known_field(key),
            _ => None,
        });
        let message = e.into_inner().to_string();
        match field {
            Some(field) => ApiError::invalid(field, message),
            None => ApiError::bad_request(format!("the body is not a table-file line: {message}")),
        }
    })
}

/// A table-file line from a JSON body.
pub fn parse(bytes: &[u8]) -> Result<Line, ApiError> {
    line_from_value(parse_value(bytes)?)
}

/// Reads a JSON body of at most [`MAX_JSON`] bytes into a value.
pub async fn json(body: Body, deadline: Duration) -> Result<Value, ApiError> {
    parse_value(&read(body, MAX_JSON, deadline).await?)
}
