//! Bearer-token authentication of the admin API.
//!
//! The token comes from `QRLAUNCH_ADMIN_TOKEN` or `--admin-token-file`.
//! Without either, an admin API on a loopback address gets a random token
//! written to `DATA_DIR/admin-token` (mode 0600), so a fresh install is
//! usable at once and still never open; on any other address the service
//! refuses to start. Tokens are compared in constant time. On an admin
//! listener that is not loopback, a token shorter than [`MIN_REMOTE_TOKEN`]
//! characters is refused at start: it could be guessed over the network.
//! Failed authentications are limited per client address ([`Throttle`]):
//! past a burst, the address gets `429` until its budget refills.

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

/// The shortest token accepted on an admin listener that is not loopback.
pub const MIN_REMOTE_TOKEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the admin token from {source_name} has {length} characters; on --admin-listen {addr}, which is not a \
         loopback address, it must have at least {MIN_REMOTE_TOKEN} (e.g. `openssl rand -hex 32`)"
    )]
    TooShort {
        source_name: String,
        length: usize,
        addr: SocketAddr,
    },
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
        let (token, source) = AdminToken::pick(env_token, token_file, admin_addr, data_dir)?;
        if !admin_addr.ip().is_loopback() && token.0.chars().count() < MIN_REMOTE_TOKEN {
            let source_name = match &source {
                TokenSource::Env => "QRLAUNCH_ADMIN_TOKEN".to_string(),
                TokenSource::File(path) | TokenSource::Generated(path) => path.display().to_string(),
            };
            return Err(TokenError::TooShort {
                source_name,
                length: token.0.chars().count(),
                addr: admin_addr,
            });
        }
        Ok((token, source))
    }

    fn pick(
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
        // Digests of equal length, compared in constant time: the time
        // taken says nothing about the token, not even its length.
        let digest = |bytes: &[u8]| <sha2::Sha256 as sha2::Digest>::digest(bytes);
        bool::from(digest(presented.trim_ascii()).ct_eq(&digest(self.0.as_bytes())))
    }
}

/// The tokens the admin API accepts: the current one and, each for a grace
/// period after a `SIGHUP` replaced it ([`AdminTokens::replace`]), the
/// ones before (at most [`AdminTokens::KEPT`]), so that scripts and CLIs
/// can move over without a gap. Read on every request without a lock.
#[derive(Debug)]
pub struct AdminTokens {
    accepted: arc_swap::ArcSwap<Accepted>,
}

#[derive(Debug)]
struct Accepted {
    current: AdminToken,
    /// Replaced tokens and until when each is accepted.
    previous: Vec<(AdminToken, std::time::Instant)>,
}

impl AdminTokens {
    pub fn new(token: AdminToken) -> AdminTokens {
        AdminTokens {
            accepted: arc_swap::ArcSwap::from_pointee(Accepted {
                current: token,
                previous: Vec::new(),
            }),
        }
    }

    /// Replaced tokens still in their grace, at most.
    pub const KEPT: usize = 8;

    /// Whether an `Authorization` header value carries an accepted token.
    /// Every token is compared every time, each in constant time, so the
    /// answer takes as long whichever matched.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let accepted = self.accepted.load();
        let now = std::time::Instant::now();
        let mut ok = accepted.current.accepts(authorization);
        for (token, until) in &accepted.previous {
            ok |= token.accepts(authorization) & (now < *until);
        }
        ok
    }

    /// Makes `token` the current one; the token it replaces is accepted for
    /// `grace` more, and those replaced before keep their own grace.
    /// `false` (and nothing changes) when it is the same.
    pub fn replace(&self, token: AdminToken, grace: std::time::Duration) -> bool {
        let accepted = self.accepted.load();
        let same = |a: &AdminToken, b: &AdminToken| bool::from(a.0.as_bytes().ct_eq(b.0.as_bytes()));
        if same(&accepted.current, &token) {
            return false;
        }
        let now = std::time::Instant::now();
        // A grace too long to represent is as good as for ever (a century).
        let until = now
            .checked_add(grace)
            .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400));
        let mut previous: Vec<(AdminToken, std::time::Instant)> = accepted
            .previous
            .iter()
            .filter(|(old, until)| now < *until && !same(old, &token))
            .cloned()
            .collect();
        previous.push((accepted.current.clone(), until));
        if previous.len() > AdminTokens::KEPT {
            previous.remove(0);
        }
        self.accepted.store(std::sync::Arc::new(Accepted {
            current: token,
            previous,
        }));
        true
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

/// The address an admin request came from, put into its extensions by the
/// listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Failed authentications per client address (an IPv6 client by its /64):
/// a token bucket of [`Throttle::BURST`] attempts refilled at
/// [`Throttle::PER_SECOND`]. Every attempt takes a token *before* the
/// token is checked, under one lock, and a right token gives it back: so
/// concurrent requests cannot slip past the check, and guessing runs at the
/// refill rate at most. While an address is throttled, even the right
/// token gets `429` (or a guess would tell right from wrong by the answer).
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: std::sync::Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_client: std::collections::HashMap<std::net::IpAddr, Bucket>,
    /// When full buckets were last forgotten.
    swept: Option<std::time::Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Throttle {
    /// Attempts allowed in a row.
    pub const BURST: f64 = 10.0;
    /// Attempts allowed per second after the burst.
    pub const PER_SECOND: f64 = 1.0;
    /// Addresses remembered at most. Past it, an address not yet known is
    /// refused (memory stays bounded under attacks from many addresses).
    const MAX_ADDRESSES: usize = 10_000;

    /// Takes an attempt for `client`; `false` when it has none left.
    pub fn begin(&self, client: std::net::IpAddr) -> bool {
        let client = crate::edge::http::server::client_of(client);
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.by_client.len() >= Throttle::MAX_ADDRESSES
            && !buckets.by_client.contains_key(&client)
            && buckets
                .swept
                .is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(1))
        {
            buckets.swept = Some(now);
            buckets.by_client.retain(|_, b| b.refilled(now) < Throttle::BURST);
        }
        if buckets.by_client.len() >= Throttle::MAX_ADDRESSES && !buckets.by_client.contains_key(&client) {
            return false;
        }
        let bucket = buckets.by_client.entry(client).or_insert(Bucket {
            tokens: Throttle::BURST,
            at: now,
        });
        let tokens = bucket.refilled(now);
        let allowed = tokens >= 1.0;
        *bucket = Bucket {
            tokens: if allowed { tokens - 1.0 } else { tokens },
            at: now,
        };
        allowed
    }

    /// Gives back the attempt of a request whose token was right.
    pub fn succeeded(&self, client: std::net::IpAddr) {
        let client = crate::edge::http::server::client_of(client);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = buckets.by_client.get_mut(&client) {
            bucket.tokens = (bucket.tokens + 1.0).min(Throttle::BURST);
        }
    }
}

impl Bucket {
    fn refilled(&self, now: std::time::Instant) -> f64 {
        (self.tokens + now.duration_since(self.at).as_secs_f64() * Throttle::PER_SECOND).min(Throttle::BURST)
    }
}

/// The key a request's `Authorization` header carries: the bootstrap
/// token, or an API key that is valid now. No throttling: see [`check`].
pub fn authenticate(state: &super::AdminState, presented: Option<&[u8]>) -> Option<super::access::Principal> {
    if state.tokens.accepts(presented) {
        return Some(super::access::Principal::bootstrap());
    }
    let value = presented?.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, secret) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    state
        .keys
        .authenticate(secret.trim_ascii(), crate::replication::store::now_ms())
}

/// Why [`check`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address failed too often: `429`, whatever it sent.
    Throttled,
    /// No valid token or key: `401`.
    Unauthorized,
}

/// Authenticates a request from `client` (throttled per address, counted
/// in the metrics): what the admin API and the console's sign-in share.
pub fn check(
    state: &super::AdminState,
    client: Option<std::net::IpAddr>,
    presented: Option<&[u8]>,
) -> Result<super::access::Principal, Refusal> {
    if client.is_some_and(|c| !state.auth_throttle.begin(c)) {
        state.metrics.admin_auth_throttled();
        return Err(Refusal::Throttled);
    }
    match authenticate(state, presented) {
        Some(principal) => {
            if let Some(client) = client {
                state.auth_throttle.succeeded(client);
            }
            Ok(principal)
        }
        None => {
            state.metrics.admin_auth_failure();
            Err(Refusal::Unauthorized)
        }
    }
}

/// Route layer (it runs once a route matched, so it knows the route's
/// template): `403` unless the key's role allows the route.
pub async fn require_role(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    match super::access::check_route(&super::access::current(), request.method(), &path) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// Middleware: refuses requests without a valid token or key (`401`,
/// counted; `429` for an address that failed too often), runs the rest of
/// the request as the key it carries, and counts every answer by status.
pub async fn require_token(
    axum::extract::State(state): axum::extract::State<super::AdminState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
    use axum::response::IntoResponse;
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let presented = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let response = match check(&state, client, presented) {
        Err(Refusal::Throttled) => {
            let mut response = super::error::ApiError::new(
                super::error::ErrorCode::TooManyFailures,
                "too many failed authentications from this address; wait and try again with the right token",
            )
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            response
        }
        Ok(principal) => {
            let actor = crate::replication::audit::Actor {
                key_id: principal.id.clone(),
                key_name: principal.name.clone(),
                client: client.map(|c| c.to_string()),
            };
            crate::replication::audit::scope(actor, super::access::scope(principal, next.run(request))).await
        }
        Err(Refusal::Unauthorized) => {
            let mut response = super::error::ApiError::new(
                super::error::ErrorCode::Unauthorized,
                "send `Authorization: Bearer TOKEN` with the admin token or an API key",
            )
            .into_response();
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            response
        }
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
    fn a_replaced_token_is_accepted_for_its_grace_only() {
        let tokens = AdminTokens::new(AdminToken::new("old-token"));
        assert!(!tokens.replace(AdminToken::new("old-token"), std::time::Duration::from_secs(60)));
        assert!(tokens.replace(AdminToken::new("new-token"), std::time::Duration::from_secs(60)));
        assert!(tokens.accepts(Some(b"Bearer new-token")));
        assert!(tokens.accepts(Some(b"Bearer old-token")), "within the grace");
        assert!(!tokens.accepts(Some(b"Bearer other")));
        // A second replacement keeps the first one's grace.
        assert!(tokens.replace(AdminToken::new("third-token"), std::time::Duration::ZERO));
        assert!(tokens.accepts(Some(b"Bearer third-token")));
        assert!(tokens.accepts(Some(b"Bearer old-token")), "its own grace still runs");
        assert!(!tokens.accepts(Some(b"Bearer new-token")), "a zero grace ends at once");
        // Going back to a token in its grace makes it current, not doubled.
        assert!(tokens.replace(AdminToken::new("old-token"), std::time::Duration::ZERO));
        assert!(tokens.accepts(Some(b"Bearer old-token")));
        assert!(!tokens.accepts(Some(b"Bearer third-token")));
        // A grace past what time can hold does not end it at once.
        assert!(tokens.replace(AdminToken::new("fourth-token"), std::time::Duration::MAX));
        assert!(tokens.accepts(Some(b"Bearer old-token")));
    }

    #[test]
    fn failures_past_the_burst_are_throttled_per_address() {
        let throttle = Throttle::default();
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..Throttle::BURST as usize {
            assert!(throttle.begin(a));
        }
        assert!(!throttle.begin(a), "past the burst");
        assert!(throttle.begin(b), "another address");
        // A right token gives its attempt back.
        for _ in 0..50 {
            assert!(throttle.begin(b));
            throttle.succeeded(b);
        }
        // One IPv6 client is one /64.
        for i in 0..Throttle::BURST as usize {
            assert!(throttle.begin(format!("2001:db8::{i:x}").parse().unwrap()));
        }
        assert!(!throttle.begin("2001:db8::ffff".parse().unwrap()));
    }

    #[test]
    fn a_short_token_is_refused_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let public: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        let short = "x".repeat(MIN_REMOTE_TOKEN - 1);
        let error = AdminToken::resolve(Some(&short), None, public, dir.path()).unwrap_err();
        assert!(matches!(error, TokenError::TooShort { length: 31, .. }), "{error}");
        assert!(!error.to_string().contains(&short), "the token is not in the message");
        let long = "x".repeat(MIN_REMOTE_TOKEN);
        assert!(AdminToken::resolve(Some(&long), None, public, dir.path()).is_ok());
        let loopback: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        assert!(AdminToken::resolve(Some("t"), None, loopback, dir.path()).is_ok());
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
        let (_, source) = AdminToken::resolve(Some(&"t".repeat(40)), None, public, dir).unwrap();
        assert_eq!(source, TokenSource::Env);
    }
}
