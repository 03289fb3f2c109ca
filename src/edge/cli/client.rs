//! A small blocking client of the admin API: token lookup, requests, and
//! turning the API's JSON errors into messages that name the field.

use crate::edge::api::ErrorBody;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a command failed; printed as `qrlaunch: {error}`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The admin API could not be reached.
    #[error("cannot reach the admin API at {url}: {reason} (is `qrlaunch serve` running? see --admin-url)")]
    Unreachable { url: String, reason: String },
    /// No token anywhere.
    #[error("no admin token: set QRLAUNCH_ADMIN_TOKEN, pass --admin-token-file, or run where {} exists", .tried.display())]
    NoToken { tried: PathBuf },
    /// The API refused the request: `field` names the culprit when known.
    #[error("{}", api_message(*.status, .field.as_deref(), .message, .lines))]
    Api {
        status: u16,
        field: Option<String>,
        message: String,
        lines: Vec<String>,
    },
    /// A local file could not be read or written.
    #[error("{}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    /// A command-line value is wrong.
    #[error("{field}: {message}")]
    Usage { field: String, message: String },
    /// The answer was not what the API promises.
    #[error("the admin API answered something unexpected: {0}")]
    Answer(String),
}

fn api_message(status: u16, field: Option<&str>, message: &str, lines: &[String]) -> String {
    let mut text = match field {
        Some(field) => format!("{field}: {message}"),
        None => format!("{message} (HTTP {status})"),
    };
    for line in lines {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

/// Where the admin API is and how to authenticate.
pub struct AdminClient {
    base: String,
    token: String,
    http: Client,
}

impl AdminClient {
    /// The token comes from `env_token`, else `token_file`, else
    /// `data_dir/admin-token` (what a loopback server generates).
    pub fn new(
        base: &str,
        env_token: Option<&str>,
        token_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<AdminClient, CliError> {
        let token = match (env_token.map(str::trim).filter(|t| !t.is_empty()), token_file) {
            (Some(token), _) => token.to_string(),
            (None, Some(path)) => read_token(path)?,
            (None, None) => {
                let path = data_dir.join("admin-token");
                if !path.exists() {
                    return Err(CliError::NoToken { tried: path });
                }
                read_token(&path)?
            }
        };
        let http = Client::builder()
            .timeout(None::<Duration>)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CliError::Unreachable {
                url: base.into(),
                reason: e.to_string(),
            })?;
        Ok(AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends and returns a successful response, or the API's error.
    pub fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let Ok(body) = serde_json::from_str::<ErrorBody>(&text) else {
            return Err(CliError::Api {
                status,
                field: None,
                message: format!("the admin API answered HTTP {status}: {}", text.trim()),
                lines: Vec::new(),
            });
        };
        let lines = body
            .errors
            .iter()
            .map(|e| match &e.field {
                Some(field) => format!("line {}: field `{field}`: {}", e.line, e.message),
                None => format!("line {}: {}", e.line, e.message),
            })
            .collect();
        Err(CliError::Api {
            status,
            field: body.field,
            message: body.message,
            lines,
        })
    }

    /// Sends and parses a JSON answer.
    pub fn json<T: serde::de::DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        let text = self
            .send(request)?
            .text()
            .map_err(|e| CliError::Answer(root_cause(&e)))?;
        serde_json::from_str(&text).map_err(|e| CliError::Answer(format!("{e}: {text}")))
    }
}

fn read_token(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::File {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::File {
            path: path.into(),
            reason: "the token file is empty".into(),
        });
    }
    Ok(token.to_string())
}

/// The innermost error, which is the one that says what happened.
pub fn root_cause(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
