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
    /// The admin API could not be reached (or its certificate was refused).
    #[error("cannot reach the admin API at {url}: {reason} (is `qrlaunch serve` running? see --admin-url, and --ca-file for a private CA)")]
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

/// Where the token is: `env` (`QRLAUNCH_ADMIN_TOKEN`), else `file`, else
/// `data_dir/admin-token` (what a loopback server generates).
pub struct Token<'a> {
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub data_dir: &'a Path,
}

/// How the token travels: `https://` with the platform's roots and
/// `ca_file`'s; `http://` only to loopback unless `allow_plain_http`.
pub struct Transport<'a> {
    pub ca_file: Option<&'a Path>,
    pub allow_plain_http: bool,
}

impl AdminClient {
    pub fn new(base: &str, token: Token<'_>, transport: Transport<'_>) -> Result<AdminClient, CliError> {
        check_transport(base, transport.allow_plain_http)?;
        let token = match (token.env.map(str::trim).filter(|t| !t.is_empty()), token.file) {
            (Some(token), _) => token.to_string(),
            (None, Some(path)) => read_token(path)?,
            (None, None) => {
                let path = token.data_dir.join("admin-token");
                if !path.exists() {
                    return Err(CliError::NoToken { tried: path });
                }
                read_token(&path)?
            }
        };
        let mut builder = Client::builder()
            .timeout(None::<Duration>)
            .connect_timeout(Duration::from_secs(5));
        if base.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) {
            // Plain HTTP was allowed because it stays on this host (or the
            // operator said so): an HTTP_PROXY from the environment would
            // carry the token across the network in clear text after all.
            builder = builder.no_proxy();
        }
        if let Some(path) = transport.ca_file {
            let roots = crate::replication::roots::read(path).map_err(|message| CliError::Usage {
                field: "--ca-file".into(),
                message: message.trim_start_matches("--ca-file ").to_string(),
            })?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let http = builder.build().map_err(|e| CliError::Unreachable {
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

/// Refuses a URL that is neither `https://` nor `http://` to loopback
/// (unless allowed): the token would cross a network in clear text.
fn check_transport(base: &str, allow_plain_http: bool) -> Result<(), CliError> {
    let usage = |message: String| CliError::Usage {
        field: "--admin-url".into(),
        message,
    };
    let url = url::Url::parse(base).map_err(|e| usage(format!("{base:?} is not a URL: {e}")))?;
    let loopback = crate::replication::roots::is_loopback(&url);
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback || allow_plain_http => Ok(()),
        "http" => Err(usage(format!(
            "http:// to {} would send the admin token in clear text; use https:// (the node's \
             --admin-tls-cert, or a TLS proxy in front), or pass --allow-plain-http on a network you trust",
            url.host_str().unwrap_or_default()
        ))),
        other => Err(usage(format!("{other}:// is not http:// or https://"))),
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

#[cfg(test)]
mod tests {
    use super::check_transport;

    #[test]
    fn the_token_never_crosses_a_network_in_clear_text_unless_allowed() {
        for fine in [
            "https://admin.example.com",
            "http://127.0.0.1:8081",
            "http://[::1]:8081",
            "http://localhost:8081",
            "HTTP://LOCALHOST:8081",
        ] {
            assert!(check_transport(fine, false).is_ok(), "{fine}");
        }
        let refused = check_transport("http://10.0.0.5:8081", false).unwrap_err().to_string();
        assert!(refused.starts_with("--admin-url: http:// to 10.0.0.5"), "{refused}");
        assert!(check_transport("http://10.0.0.5:8081", true).is_ok());
        assert!(check_transport("ftp://10.0.0.5", true).is_err());
        assert!(check_transport("not a url", true).is_err());
    }
}
