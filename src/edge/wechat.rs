//! WeChat's server API, for mini program codes ("sun codes"): the stable
//! access token (`POST /cgi-bin/stable_token`) and `getwxacodeunlimit`
//! (`POST /wxa/getwxacodeunlimit`), as documented at
//! developers.weixin.qq.com. Used by `GET /admin/v1/codes/{code}/wxacode`.
//!
//! * The token is cached until a minute before its `expires_in`. When
//!   WeChat says it is invalid (`40001`, `40014`, `42001`), a token another
//!   request got meanwhile is used; else the stable token is asked for
//!   again, and only if WeChat hands back the refused one is it forced
//!   (`force_refresh`: WeChat allows a few a day, and each one invalidates
//!   every other holder's token). One request at a time fetches it.
//! * WeChat allows 5,000 `getwxacodeunlimit` calls a minute per mini
//!   program: a token bucket here keeps this node under it, and WeChat's
//!   own `45009` is retried with backoff (0.5, 1, 2 s) before it is given
//!   back as `429`.
//! * The secret is read from `--wechat-secret-file` for every token
//!   request (so it can be replaced without a restart) and never logged:
//!   request errors are reported without their URL, which carries the
//!   token.
//!
//! WeChat cannot be reached from the tests: they run against a stand-in
//! written from the documentation (`tests/it/wechat.rs`).

use crate::model::domain::EnvVersion;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// WeChat's API.
pub const DEFAULT_API: &str = "https://api.weixin.qq.com";

/// `getwxacodeunlimit` calls WeChat allows a mini program a minute.
pub const PER_MINUTE: u32 = 5_000;

/// How this node talks to WeChat.
#[derive(Debug, Clone)]
pub struct WechatConfig {
    /// `https://api.weixin.qq.com`, or a stand-in for tests.
    pub api: String,
    /// The mini program whose codes are made (and whose landing page they open).
    pub appid: String,
    /// The file holding its AppSecret.
    pub secret_file: PathBuf,
    /// The page a code opens, with `scene` = the launch code.
    pub landing_page: String,
    /// `check_path`: WeChat refuses a page the published version lacks.
    pub check_path: bool,
    /// Which version of the mini program a code opens.
    pub env_version: EnvVersion,
    /// Extra CA certificates (`--ca-file`).
    pub roots: Vec<reqwest::Certificate>,
}

/// What went wrong, in words for the merchant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    /// WeChat's rate limit, still hit after backing off.
    #[error(
        "WeChat's rate limit (errcode 45009: at most {PER_MINUTE} codes a minute, and a daily quota); try again later"
    )]
    RateLimited,
    /// The landing page is not in the published mini program.
    #[error("WeChat refused the landing page `{0}` (errcode 41030: no such page in the published mini program); publish it, or set --wxacode-check-path false while it is in development")]
    InvalidPage(String),
    /// The appid or the secret is wrong, or this server's address is not allowed.
    #[error("WeChat refused the credentials of {appid} (errcode {errcode}: {errmsg}); check --wechat-appid, --wechat-secret-file and the mini program's IP allowlist")]
    Credentials {
        appid: String,
        errcode: i64,
        errmsg: String,
    },
    /// Any other error WeChat answered.
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    /// WeChat could not be reached, or answered something that is not its API.
    #[error("WeChat's API could not be reached: {0}")]
    Unreachable(String),
    /// The secret file could not be read.
    #[error("--wechat-secret-file {path}: {reason}")]
    Secret { path: String, reason: String },
}

/// A mini program code to make.
#[derive(Debug, Clone, Serialize)]
struct UnlimitedRequest<'a> {
    scene: &'a str,
    page: &'a str,
    check_path: bool,
    env_version: &'static str,
    width: u32,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

struct Token {
    value: String,
    renew_at: Instant,
}

/// A token bucket: `PER_MINUTE` calls a minute, refilled continuously.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The WeChat client of a node: one token, one bucket.
pub struct Wechat {
    config: WechatConfig,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
    bucket: Mutex<Bucket>,
}

impl std::fmt::Debug for Wechat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wechat")
            .field("api", &self.config.api)
            .field("appid", &self.config.appid)
            .finish_non_exhaustive()
    }
}

/// WeChat's answers that say the token is no longer good.
fn token_invalid(errcode: i64) -> bool {
    matches!(errcode, 40001 | 40014 | 42001)
}

/// WeChat's answers about the appid, the secret or the caller's address.
fn credentials_refused(errcode: i64) -> bool {
    matches!(errcode, 40013 | 40125 | 40164 | 40243 | 41002 | 41004 | 89503)
}

impl Wechat {
    pub fn new(config: WechatConfig) -> Result<Wechat, String> {
        let http = crate::replication::roots::client_builder(&config.roots)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot build the WeChat client: {e}"))?;
        Ok(Wechat {
            config,
            http,
            token: Mutex::new(None),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(PER_MINUTE),
                at: Instant::now(),
            }),
        })
    }

    pub fn config(&self) -> &WechatConfig {
        &self.config
    }

    /// The mini program code (an image: JPEG, or what WeChat sends) that
    /// opens the landing page with `scene`, and its content type.
    pub async fn unlimited_code(&self, scene: &str, width: u32) -> Result<(Bytes, String), WechatError> {
        let body = UnlimitedRequest {
            scene,
            page: &self.config.landing_page,
            check_path: self.config.check_path,
            env_version: self.config.env_version.as_str(),
            width,
        };
        let mut refreshed = false;
        let mut backoff = Duration::from_millis(500);
        loop {
            self.take_turn().await;
            let token = self.token(false).await?;
            match self.call_unlimited(&token, &body).await? {
                Ok(image) => return Ok(image),
                Err(e) if token_invalid(e.errcode) && !refreshed => {
                    tracing::info!(
                        errcode = e.errcode,
                        "WeChat refused the access token; getting a new one"
                    );
                    refreshed = true;
                    self.replace_refused(&token).await?;
                }
                Err(e) if e.errcode == 45009 => {
                    if backoff > Duration::from_secs(2) {
                        return Err(WechatError::RateLimited);
                    }
                    tracing::warn!(
                        wait_ms = backoff.as_millis() as u64,
                        "WeChat's rate limit (45009); backing off"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) if e.errcode == 41030 => return Err(WechatError::InvalidPage(self.config.landing_page.clone())),
                Err(e) if credentials_refused(e.errcode) => {
                    return Err(WechatError::Credentials {
                        appid: self.config.appid.clone(),
                        errcode: e.errcode,
                        errmsg: e.errmsg,
                    })
                }
                Err(e) => {
                    return Err(WechatError::Api {
                        errcode: e.errcode,
                        errmsg: e.errmsg,
                    })
                }
            }
        }
    }

    /// One `getwxacodeunlimit` call: the image, or WeChat's error answer.
    async fn call_unlimited(
        &self,
        token: &str,
        body: &UnlimitedRequest<'_>,
    ) -> Result<Result<(Bytes, String), ErrorAnswer>, WechatError> {
        let url = format!("{}/wxa/getwxacodeunlimit", self.config.api);
        let response = self
            .http
            .post(url)
            .query(&[("access_token", token)])
            .json(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = response.bytes().await.map_err(unreachable)?;
        // WeChat answers an error as JSON (with status 200); an image otherwise.
        if content_type.starts_with("application/json") || content_type.starts_with("text/") || bytes.starts_with(b"{")
        {
            return match serde_json::from_slice::<ErrorAnswer>(&bytes) {
                Ok(e) if e.errcode != 0 => Ok(Err(e)),
                _ => Err(WechatError::Unreachable(format!(
                    "getwxacodeunlimit answered {status} with {} bytes that are neither an image nor an error",
                    bytes.len()
                ))),
            };
        }
        if !status.is_success() || bytes.is_empty() {
            return Err(WechatError::Unreachable(format!("getwxacodeunlimit answered {status}")));
        }
        let content_type = if content_type.starts_with("image/") {
            content_type
        } else {
            "image/jpeg".to_string()
        };
        Ok(Ok((bytes, content_type)))
    }

    /// The access token: the cached one, or a new one (`force`: even if
    /// WeChat still holds a valid one, after it refused that).
    async fn token(&self, force: bool) -> Result<String, WechatError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| !force && t.renew_at > Instant::now()) {
            return Ok(token.value.clone());
        }
        let secret = self.secret()?;
        let url = format!("{}/cgi-bin/stable_token", self.config.api);
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": self.config.appid,
            "secret": secret,
            "force_refresh": force,
        });
        let response = self.http.post(url).json(&body).send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            WechatError::Unreachable(format!(
                "stable_token answered {status} with something that is not its JSON"
            ))
        })?;
        match (answer.access_token, answer.errcode) {
            (Some(value), 0) if !value.is_empty() => {
                let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(7200));
                let renew_at = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
                *cached = Some(Token {
                    value: value.clone(),
                    renew_at,
                });
                tracing::info!(appid = %self.config.appid, expires_in_s = lifetime.as_secs(), "WeChat access token obtained");
                Ok(value)
            }
            (_, errcode) if credentials_refused(errcode) => Err(WechatError::Credentials {
                appid: self.config.appid.clone(),
                errcode,
                errmsg: answer.errmsg,
            }),
            (_, 45009) => Err(WechatError::RateLimited),
            (_, errcode) => Err(WechatError::Api {
                errcode,
                errmsg: answer.errmsg,
            }),
        }
    }

    /// A token in place of `refused`: one another request got meanwhile,
    /// else the stable token asked for again, forced only when WeChat still
    /// hands back the refused one.
    async fn replace_refused(&self, refused: &str) -> Result<(), WechatError> {
        {
            let mut cached = self.token.lock().await;
            match cached.as_ref() {
                Some(t) if t.value != refused => return Ok(()),
                Some(_) => *cached = None,
                None => {}
            }
        }
        if self.token(false).await? == refused {
            self.token(true).await?;
        }
        Ok(())
    }

    fn secret(&self) -> Result<String, WechatError> {
        let path = &self.config.secret_file;
        let fail = |reason: String| WechatError::Secret {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(fail("the file is empty".into()));
        }
        Ok(secret.to_string())
    }

    /// Waits for a turn under [`PER_MINUTE`].
    async fn take_turn(&self) {
        let rate = f64::from(PER_MINUTE) / 60.0;
        loop {
            let wait = {
                let mut bucket = self.bucket.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
                bucket.tokens = (bucket.tokens + refill).min(f64::from(PER_MINUTE));
                bucket.at = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request error without its URL (which carries the access token).
fn unreachable(error: reqwest::Error) -> WechatError {
    WechatError::Unreachable(error.without_url().to_string())
}
