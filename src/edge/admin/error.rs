//! The admin API's error answers: a status and a JSON [`ErrorBody`].

use crate::edge::api::{ErrorBody, LineErrorBody};
use crate::replication::store::StoreError;
use crate::replication::writer::WriteError;
use axum::http::header::{HeaderValue, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Line errors listed in a refused import's answer.
pub const MAX_REPORTED: usize = 100;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: None,
                message: message.into(),
                errors: Vec::new(),
            },
        }
    }

    /// `422` naming the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        e.body.field = Some(field.into());
        e
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// `422` with bad lines of an import.
    pub fn lines(message: impl Into<String>, errors: Vec<LineErrorBody>) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        e.body.errors = errors;
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (self.status, Json(self.body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found("no such entry"),
            StoreError::Conflict => ApiError::conflict("the key exists already"),
            StoreError::Rejected(e) => ApiError::invalid(e.field, e.message),
            StoreError::Conflicts(lines) => {
                let count = lines.len();
                let errors = lines
                    .into_iter()
                    .take(MAX_REPORTED)
                    .map(|line| LineErrorBody {
                        line,
                        field: None,
                        message: "the key exists already (`?mode=insert` only creates)".into(),
                    })
                    .collect();
                ApiError::lines(format!("{count} bad line(s); nothing was imported"), errors)
            }
            StoreError::Unavailable(m) => ApiError::unavailable(format!("the store is unavailable: {m}")),
            e @ (StoreError::Failed(_) | StoreError::Corrupt(_)) => {
                ApiError::internal(format!("{e}; nothing was changed"))
            }
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> ApiError {
        match error {
            WriteError::Store(e) => e.into(),
            WriteError::NotApplied(e) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "not_applied", e.to_string()),
            WriteError::Task(m) => ApiError::internal(m),
        }
    }
}
