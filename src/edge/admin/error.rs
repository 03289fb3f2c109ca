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

/// What went wrong, as the `error` field of every error answer says it;
/// each code has its one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    /// The key's role or scopes do not allow this.
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Timeout,
    Conflict,
    TooLarge,
    UnsupportedMediaType,
    Invalid,
    TooManyFailures,
    /// Other work of the kind is in progress; retry shortly.
    Busy,
    Internal,
    Unavailable,
    NotApplied,
    InsufficientStorage,
    /// This node is not set up for the request (e.g. no `--wechat-appid`).
    NotConfigured,
    /// A service this node asked (WeChat's API) refused or failed.
    Upstream,
    /// A service this node asked (WeChat's API) says: too many requests.
    RateLimited,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooManyFailures => "too_many_failures",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotApplied => "not_applied",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::NotConfigured => "not_configured",
            ErrorCode::Upstream => "upstream",
            ErrorCode::RateLimited => "rate_limited",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyFailures | ErrorCode::Busy => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotApplied => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::NotConfigured => StatusCode::CONFLICT,
            ErrorCode::Upstream => StatusCode::BAD_GATEWAY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: code.status(),
            body: ErrorBody {
                error: code.as_str().into(),
                field: None,
                message: message.into(),
                errors: Vec::new(),
            },
        }
    }

    /// `422` naming the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(ErrorCode::Invalid, message);
        e.body.field = Some(field.into());
        e
    }

    /// `403`: the key may not do this; the message says what was missing.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }

    /// `422` with bad lines of an import.
    pub fn lines(message: impl Into<String>, errors: Vec<LineErrorBody>) -> ApiError {
        let mut e = ApiError::new(ErrorCode::Invalid, message);
        e.body.errors = errors;
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = if self.body.error == ErrorCode::RateLimited.as_str() {
            Some("60")
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE || self.body.error == ErrorCode::Busy.as_str() {
            Some("1")
        } else {
            None
        };
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(seconds));
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
            WriteError::NotApplied(e) => ApiError::new(ErrorCode::NotApplied, e.to_string()),
            WriteError::Task(m) => ApiError::internal(m),
        }
    }
}
