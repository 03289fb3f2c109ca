//! Bearer-token authentication of the admin API.
//!
//! The token comes from `QRLAUNCH_ADMIN_TOKEN` or `--admin-token-file`.
//! Without either, an admin API on a loopback address gets a random token
//! written to `DATA_DIR/admin-token` (mode 0600), so a fresh install is
//! usable at once and still never open; on any other address the service
//! refuses to start. Tokens are compared in constant time.

use rand::distr::{Alphanumeric, SampleString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The accepted token.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

/// Where the token came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env,
    File(PathBuf),
    Generated(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no admin token configured and --admin-listen {0} is not a loopback address: set QRLAUNCH_ADMIN_TOKEN or \
         --admin-token-file, or listen on 127.0.0.1"
    )]
    Required(SocketAddr),
    #[error("--admin-token-file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("--admin-token-file {0}: the file is empty")]
    Empty(PathBuf),
    #[error("writing the generated admin token to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl AdminToken {
    /// Picks the token as described in the module docs.
    pub fn resolve(
        env_token: Option<&str>,
        token_file: Option<&Path>,
        admin_addr: SocketAddr,
        data_dir: &Path,
    ) -> Result<(AdminToken, TokenSource), TokenError> {
        if let Some(token) = env_token.map(str::trim).filter(|t| !t.is_empty()) {
            return Ok((AdminToken(token.to_string()), TokenSource::Env));
        }
        if let Some(path) = token_file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.into(),
                source,
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(TokenError::Empty(path.into()));
            }
            return Ok((AdminToken(token.to_string()), TokenSource::File(path.into())));
        }
        if !admin_addr.ip().is_loopback() {
            return Err(TokenError::Required(admin_addr));
        }
        let path = data_dir.join("admin-token");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            if !existing.trim().is_empty() {
                return Ok((AdminToken(existing.trim().to_string()), TokenSource::Generated(path)));
            }
        }
        let token = Alphanumeric.sample_string(&mut rand::rng(), 40);
        write_private(&path, &token).map_err(|source| TokenError::Write {
            path: path.clone(),
            source,
        })?;
        Ok((AdminToken(token), TokenSource::Generated(path)))
    }

    /// A token given directly (tests, embedding).
    pub fn new(token: impl Into<String>) -> AdminToken {
        AdminToken(token.into())
    }

    /// Whether an `Authorization` header value carries this token. The
    /// scheme name is case-insensitive (RFC 9110 §11.1): `BEARER` works.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else { return false };
        let value = value.trim_ascii();
        let Some(space) = value.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, presented) = value.split_at(space);
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return false;
        }
        bool::from(presented.trim_ascii().ct_eq(self.0.as_bytes()))
    }
}

fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Middleware: refuses requests without the token (`401`, counted), and
/// counts every answer by status.
pub async fn require_token(
    axum::extract::State(state): axum::extract::State<super::AdminState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use axum::response::IntoResponse;
    let presented = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let response = if state.token.accepts(presented) {
        next.run(request).await
    } else {
        state.metrics.admin_auth_failure();
        let mut response = super::error::ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer TOKEN` with the admin token",
        )
        .into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        response
    };
    state.metrics.admin_request(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        let token = AdminToken::new("s3cret");
        assert!(token.accepts(Some(b"Bearer s3cret")));
        assert!(token.accepts(Some(b"BEARER s3cret")));
        assert!(token.accepts(Some(b"bEaReR   s3cret ")));
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearers3cret",
            b"Token s3cret",
            b"Bearer s3cret2",
            b"Basic s3cret",
            b"s3cret",
            b"Bearer ",
        ] {
            assert!(!token.accepts(Some(bad)), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!token.accepts(None));
    }

    #[test]
    fn refuses_an_open_admin_api_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let public: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        assert!(matches!(
            AdminToken::resolve(None, None, public, dir),
            Err(TokenError::Required(_))
        ));
        let (_, source) = AdminToken::resolve(Some("t"), None, public, dir).unwrap();
        assert_eq!(source, TokenSource::Env);
    }
}
