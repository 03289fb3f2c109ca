//! The operators' console: server-rendered pages (askama) at `/console/`
//! on the admin listener, for the people who run campaigns.
//!
//! The console has no rules of its own. Every page and every form is a
//! request to the admin API, made in process ([`Ctx::api`]: the same axum
//! router, the same authentication, role and scope checks, validation,
//! audit lines and error messages), with the key the session signed in
//! with. A field error comes back as the API's `422` and is shown next to
//! its field in the API's words.
//!
//! * [`session`]: sessions (cookie, idle timeout, lifetime, CSRF token);
//! * [`pages`]: the handlers, a module a page;
//! * [`form`]: form fields to the API's JSON, CSV to NDJSON;
//! * [`chart`]: SVG charts drawn here; [`text`]: the words, zh and en.
//!
//! Every answer carries a strict `Content-Security-Policy` (nothing but
//! this origin; no inline script), `no-store` and `frame-ancestors 'none'`; every
//! post must carry the session's CSRF token and, when the browser says
//! where it came from, come from this origin.

pub mod chart;
pub mod form;
pub mod pages;
pub mod session;
pub mod text;

use crate::edge::admin::auth::ClientAddr;
use crate::edge::admin::AdminState;
use crate::edge::api::ErrorBody;
use crate::edge::http::pages::{language, Lang};
use crate::model::access::Need;
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use session::{Session, Sessions, COOKIE};
use std::sync::Arc;
use std::time::Duration;
use text::Text;
use tower::ServiceExt;

/// Settings of the console.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// A session ends this long after sign-in, whatever happens.
    pub lifetime: Duration,
    /// The cookie gets `Secure`: the admin listener speaks TLS, or
    /// `--assume-https` says a proxy in front of it does.
    pub secure_cookie: bool,
}

/// What every console handler shares.
#[derive(Clone)]
pub struct ConsoleState(Arc<Console>);

pub struct Console {
    /// The admin API, called in process.
    api: Router,
    pub admin: AdminState,
    pub sessions: Sessions,
    secure_cookie: bool,
    /// QR zips being made (each is drawn whole in memory).
    pub zips: tokio::sync::Semaphore,
}

impl std::ops::Deref for ConsoleState {
    type Target = Console;

    fn deref(&self) -> &Console {
        &self.0
    }
}

/// The style sheet and the one (optional) script, in the binary.
const CSS: &str = include_str!("../../../templates/console/console.css");
const JS: &str = include_str!("../../../templates/console/console.js");

/// The console's routes over `api` (the admin API router).
pub fn router(api: Router, admin: AdminState, options: &ConsoleOptions) -> Router {
    let state = ConsoleState(Arc::new(Console {
        api,
        admin,
        sessions: Sessions::new(options.idle, options.lifetime),
        secure_cookie: options.secure_cookie,
        zips: tokio::sync::Semaphore::new(2),
    }));
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(pages::overview))
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .route("/console/lang", get(pages::switch_language))
        .route("/console/sign-in", get(pages::sign_in_page).post(pages::sign_in))
        .route("/console/sign-out", post(pages::sign_out))
        .route("/console/codes", get(pages::codes))
        .route("/console/codes/new", get(pages::new_code).post(pages::create_code))
        .route("/console/codes/{code}", get(pages::code))
        .route(
            "/console/codes/{code}/edit",
            get(pages::edit_code).post(pages::save_code),
        )
        .route("/console/codes/{code}/state", post(pages::code_state))
        .route("/console/codes/{code}/delete", post(pages::delete_code))
        .route("/console/codes/{code}/qr", get(pages::code_qr))
        .route("/console/rules", get(pages::rules))
        .route("/console/rules/new", get(pages::new_rule).post(pages::create_rule))
        .route("/console/rule", get(pages::rule))
        .route("/console/rule/edit", get(pages::edit_rule).post(pages::save_rule))
        .route("/console/rule/state", post(pages::rule_state))
        .route("/console/rule/delete", post(pages::delete_rule))
        .route("/console/campaigns", get(pages::campaigns))
        .route("/console/campaigns/{tag}/state", post(pages::campaign_state))
        .route("/console/campaigns/{tag}/qr.zip", get(pages::campaign_zip))
        .route("/console/campaigns/{tag}/counts.csv", get(pages::campaign_csv))
        .route(
            "/console/import",
            get(pages::import_page)
                .post(pages::import)
                .layer(axum::extract::DefaultBodyLimit::max(pages::MAX_UPLOAD + (64 << 10))),
        )
        .route("/console/import/generated.csv", get(pages::generated_csv))
        .route("/console/hosts", get(pages::hosts).post(pages::save_host))
        .route("/console/hosts/delete", post(pages::delete_host))
        .route("/console/hosts/files", post(pages::save_file))
        .route("/console/hosts/files/delete", post(pages::delete_file))
        .route("/console/keys", get(pages::keys).post(pages::create_key))
        .route("/console/keys/{id}/rotate", post(pages::rotate_key))
        .route("/console/keys/{id}/delete", post(pages::delete_key))
        .route("/console/audit", get(pages::audit))
        .route("/console/{*rest}", axum::routing::any(no_page))
        .layer(axum::middleware::from_fn(guard))
        .with_state(state)
}

/// Console paths without a page (never the admin API's JSON answers).
async fn no_page() -> Response {
    plain_error(StatusCode::NOT_FOUND, "no such console page: start at /console/")
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        JS,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

/// The policy of every console answer: this origin only (the one script
/// is a file of the binary, never inline), no plugins, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Refuses posts from other sites, and sets the security headers of every
/// answer.
async fn guard(request: Request, next: axum::middleware::Next) -> Response {
    let mut response =
        if request.method() != Method::GET && request.method() != Method::HEAD && !same_origin(request.headers()) {
            plain_error(StatusCode::FORBIDDEN, "this form was posted from another site")
        } else {
            next.run(request).await
        };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether a post came from this origin, by what the browser says:
/// `Sec-Fetch-Site` (`same-origin`, or `none` for a user's own action) or
/// else `Origin` against `Host`. A client that sends neither (curl, a
/// script) is let through: the CSRF token still has to match.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let host = host.to_str().unwrap_or("-");
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|o| o == host)
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

pub(crate) fn plain_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// The language of a request: the `qrlaunch_lang` cookie (the switch),
/// else `Accept-Language`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| session::cookie(c, LANG_COOKIE));
    match cookie {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ => language(headers.get(header::ACCEPT_LANGUAGE).map(HeaderValue::as_bytes)),
    }
}

/// The language switch's cookie.
pub const LANG_COOKIE: &str = "qrlaunch_lang";

/// A signed-in request: its session, the key it acts with, its language.
pub struct Ctx {
    pub state: ConsoleState,
    pub session: Session,
    /// The session id (from the cookie).
    pub id: String,
    pub principal: crate::edge::admin::access::Principal,
    pub lang: Lang,
    pub t: &'static Text,
    pub client: Option<std::net::IpAddr>,
    /// This request's path and query, for the language switch.
    pub here: String,
}

/// No live session: to the sign-in page.
pub struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        Redirect::to("/console/sign-in").into_response()
    }
}

impl FromRequestParts<ConsoleState> for Ctx {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Ctx, SignInFirst> {
        let id = parts
            .headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(|c| session::cookie(c, COOKIE))
            .map(str::to_string)
            .ok_or(SignInFirst)?;
        let session = state.sessions.get(&id).ok_or(SignInFirst)?;
        // The key is checked again on every request: revoked, expired or
        // rotated past its grace, it ends the session.
        let bearer = format!("Bearer {}", session.secret);
        let Some(principal) = crate::edge::admin::auth::authenticate(&state.admin, Some(bearer.as_bytes())) else {
            state.sessions.end(&id);
            return Err(SignInFirst);
        };
        let lang = lang_of(&parts.headers);
        Ok(Ctx {
            state: state.clone(),
            session,
            id,
            principal,
            lang,
            t: Text::of(lang),
            client: parts.extensions.get::<ClientAddr>().map(|c| c.0),
            here: parts
                .uri
                .path_and_query()
                .map_or("/console/", |p| p.as_str())
                .to_string(),
        })
    }
}

/// What the admin API answered to an in-process request.
pub struct ApiReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The admin API refused: its status and error body.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: StatusCode,
    pub error: ErrorBody,
}

impl Refused {
    /// The message, after the field it names if any.
    pub fn describe(&self) -> String {
        match &self.error.field {
            Some(field) => format!("{field}: {}", self.error.message),
            None => self.error.message.clone(),
        }
    }
}

impl ApiReply {
    /// The body as `T` for a 2xx answer, else what the API said.
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Refused> {
        if !self.status.is_success() {
            return Err(self.refused());
        }
        serde_json::from_slice(&self.body).map_err(|e| Refused {
            status: StatusCode::BAD_GATEWAY,
            error: ErrorBody {
                error: "internal".into(),
                field: None,
                message: format!("the admin API's answer could not be read: {e}"),
                errors: Vec::new(),
            },
        })
    }

    /// `Ok` for a 2xx answer, else what the API said.
    pub fn ok(self) -> Result<ApiReply, Refused> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.refused())
        }
    }

    fn refused(&self) -> Refused {
        let error = serde_json::from_slice(&self.body).unwrap_or_else(|_| ErrorBody {
            error: "internal".into(),
            field: None,
            message: String::from_utf8_lossy(&self.body).chars().take(500).collect(),
            errors: Vec::new(),
        });
        Refused {
            status: self.status,
            error,
        }
    }
}

/// Largest admin API answer the console reads (an audit page, a tag's
/// statistics).
const MAX_API_ANSWER: usize = 64 << 20;

impl Ctx {
    /// Whether the key may write (editor, admin).
    pub fn can_write(&self) -> bool {
        self.principal.role.may(Need::Write)
    }

    pub fn is_admin(&self) -> bool {
        self.principal.is_admin()
    }

    /// Calls the admin API as this session's key. `body` is JSON unless
    /// `content_type` says otherwise.
    pub async fn api(&self, method: Method, uri: &str, body: Option<(Body, &'static str)>) -> ApiReply {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.session.secret));
        if let Some((_, content_type)) = &body {
            request = request.header(header::CONTENT_TYPE, *content_type);
        }
        let request = request.body(body.map_or_else(Body::empty, |(b, _)| b));
        let Ok(mut request) = request else {
            return internal_reply("the console built a request the admin API cannot take");
        };
        if let Some(client) = self.client {
            request.extensions_mut().insert(ClientAddr(client));
        }
        let Ok(response) = self.state.api.clone().oneshot(request).await;
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, MAX_API_ANSWER).await {
            Ok(body) => ApiReply {
                status: parts.status,
                headers: parts.headers,
                body,
            },
            Err(_) => internal_reply("the admin API's answer was too large for the console"),
        }
    }

    /// `GET` of JSON.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, uri: &str) -> Result<T, Refused> {
        self.api(Method::GET, uri, None).await.json()
    }

    /// A request with a JSON body.
    pub async fn send(&self, method: Method, uri: &str, json: &serde_json::Value) -> ApiReply {
        let body = Body::from(serde_json::to_vec(json).unwrap_or_default());
        self.api(method, uri, Some((body, "application/json"))).await
    }

    /// The frame of every page: the navigation for this key.
    pub fn frame(&self, heading: impl Into<String>) -> Frame {
        Frame {
            t: self.t,
            heading: heading.into(),
            nav: Some(Nav {
                who: self.principal.name.clone(),
                role: self.principal.role.as_str(),
                csrf: self.session.csrf.to_string(),
                can_write: self.can_write(),
                admin: self.is_admin(),
                switch: format!(
                    "/console/lang?to={}&back={}",
                    self.t.other_lang,
                    crate::model::percent::encoded(&self.here)
                ),
            }),
        }
    }
}

fn internal_reply(message: &str) -> ApiReply {
    ApiReply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: HeaderMap::new(),
        body: Bytes::from(
            serde_json::to_vec(&ErrorBody {
                error: "internal".into(),
                field: None,
                message: message.into(),
                errors: Vec::new(),
            })
            .unwrap_or_default(),
        ),
    }
}

/// What the base template shows around a page.
pub struct Frame {
    pub t: &'static Text,
    pub heading: String,
    pub nav: Option<Nav>,
}

pub struct Nav {
    pub who: String,
    pub role: &'static str,
    pub csrf: String,
    pub can_write: bool,
    pub admin: bool,
    /// The link that switches the language and comes back here.
    pub switch: String,
}

/// A posted form of a signed-in session whose CSRF token matched: the
/// fields in order (a name may repeat).
pub struct Posted {
    pub ctx: Ctx,
    pub fields: form::Fields,
}

/// A post without the session's CSRF token (or with another one).
pub struct BadToken;

impl IntoResponse for BadToken {
    fn into_response(self) -> Response {
        plain_error(
            StatusCode::FORBIDDEN,
            "this form's security token is missing or out of date: reload the page and try again",
        )
    }
}

/// Largest form body (everything but an import).
const MAX_FORM: usize = 256 << 10;

impl FromRequest<ConsoleState> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &ConsoleState) -> Result<Posted, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| plain_error(StatusCode::PAYLOAD_TOO_LARGE, "this form is too large"))?;
        let fields = form::Fields::parse(&bytes);
        if !fields.get("csrf").is_some_and(|t| ctx.session.csrf_matches(t)) {
            return Err(BadToken.into_response());
        }
        Ok(Posted { ctx, fields })
    }
}

/// A page as HTML.
pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "a console page could not be rendered");
            plain_error(StatusCode::INTERNAL_SERVER_ERROR, "this page could not be rendered")
        }
    }
}

/// The cookie that starts (or, with `None`, ends) a session.
pub fn session_cookie(state: &ConsoleState, id: Option<&str>) -> HeaderValue {
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let value = match id {
        Some(id) => format!("{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}
