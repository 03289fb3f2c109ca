//! A small blocking client of the admin API: token lookup, requests, and
//! turning the API's JSON errors into messages that name the field.

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a command failed; printed as `qrlaunch: {error}`.
#[derive(Debug)]
pub enum CliError {
    /// The admin API could not be reached.
    Unreachable { url: String, reason: String },
    /// No token anywhere.
    NoToken { tried: PathBuf },
    /// The API refused the request: `field` names the culprit when known.
    Api {
        status: u16,
        field: Option<String>,
        message: String,
        lines: Vec<String>,
    },
    /// A local file could not be read or written.
    File { path: PathBuf, reason: String },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Unreachable { url, reason } => {
                write!(
                    f,
                    "cannot reach the admin API at {url}: {reason} (is `qrlaunch serve` running? see --admin-url)"
                )
            }
            CliError::NoToken { tried } => write!(
                f,
                "no admin token: set QRLAUNCH_ADMIN_TOKEN, pass --admin-token-file, or run where {} exists",
                tried.display()
            ),
            CliError::Api {
                status,
                field,
                message,
                lines,
            } => {
                match field {
                    Some(field) => write!(f, "{field}: {message}")?,
                    None => write!(f, "{message} (HTTP {status})")?,
                }
                for line in lines {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            CliError::File { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
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
        let body: serde_json::Value = response.json().unwrap_or_default();
        let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let lines = body
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let line = e.get("line").and_then(|l| l.as_u64()).unwrap_or(0);
                        let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
                        match e.get("field").and_then(|f| f.as_str()) {
                            Some(field) => format!("line {line}: field `{field}`: {message}"),
                            None => format!("line {line}: {message}"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(CliError::Api {
            status,
            field: text("field"),
            message: text("message").unwrap_or_else(|| format!("the admin API answered HTTP {status}")),
            lines,
        })
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
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
