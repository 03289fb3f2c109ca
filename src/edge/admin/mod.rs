//! The admin API: its own listener (default `127.0.0.1:8081`), never on the
//! scan port; ordinary CRUD on axum, with the OpenAPI document generated
//! from the handlers (utoipa) and served at `/admin/v1/openapi.json`.
//!
//! * [`auth`]: the bearer token and the middleware that checks it;
//! * [`codes`], [`rules`], [`hosts`]: the routes of each kind of entry,
//!   over the shared logic in [`entries`];
//! * [`transfer`]: NDJSON import (spooled, then all or nothing) and export;
//!   [`backup`]: a consistent copy of a SQLite store;
//! * [`qr`]: QR images of codes; [`stats`]: scan counts; [`tags`]: the
//!   campaigns; [`ingest`]: cache logs as scan counts;
//! * [`body`]: reading bodies with size caps and deadlines, JSON errors that
//!   name the field; [`error`]: every error answer;
//! * [`warnings`]: what a write should tell the operator.
//!
//! All writes go through [`crate::replication::writer::Writer`]: a `2xx` means committed
//! and applied to this node's table.

pub mod access;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod body;
pub mod codes;
pub mod entries;
pub mod error;
pub mod hosts;
pub mod ingest;
pub mod keys;
pub mod qr;
pub mod rules;
pub mod stats;
pub mod tags;
pub mod transfer;
pub mod warnings;
pub mod wxacode;

use crate::replication::metrics::Metrics;
use crate::replication::writer::Writer;
use auth::AdminToken;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::ApiError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Settings of the admin API.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// How long a client may take to send a body (and, for an import, the
    /// longest pause between two parts of it); also how long an export may
    /// wait for a client that stopped reading.
    pub body_timeout: Duration,
    /// Where imports are spooled before they are written.
    pub spool_dir: PathBuf,
    /// Where launch codes answer (`--public-url`), for warnings.
    pub code_hosts: crate::model::decide::CodeHosts,
    /// The `--public-url`s: the first is what QR images encode.
    pub public_urls: Vec<String>,
    /// This node's scan listener (`http://127.0.0.1:8080`), what QR images
    /// encode without a `--public-url`.
    pub scan_base: String,
    /// The days scans are counted in (`--stats-time-zone`).
    pub days: crate::replication::stats::Days,
    /// Who counts scans a cache answered (`--count-source`).
    pub count_source: crate::edge::config::CountSource,
    /// Days of counts the store keeps (`--stats-keep-days`): older log
    /// lines are refused.
    pub keep_days: i32,
    /// WeChat's API, for mini program codes (`--wechat-appid`).
    pub wechat: Option<Arc<crate::edge::wechat::Wechat>>,
}

/// What every admin handler shares; cheap to clone.
#[derive(Clone)]
pub struct AdminState(Arc<AdminInner>);

pub struct AdminInner {
    pub writer: Writer,
    /// The accepted bearer tokens (replaced on `SIGHUP`).
    pub tokens: auth::AdminTokens,
    /// The API keys, as this node last read them from the store.
    pub keys: Arc<access::KeyRing>,
    pub metrics: Arc<Metrics>,
    pub options: AdminOptions,
    /// At most this many exports at once: each holds a database connection.
    pub exports: Arc<tokio::sync::Semaphore>,
    /// This node's pending scan counts (`None` with `--no-stats`).
    pub counts: Option<Arc<crate::replication::stats::ScanCounts>>,
    /// Failed authentications per client address.
    pub auth_throttle: auth::Throttle,
    /// Ingest batches waiting (at most [`ingest::MAX_WAITING`]).
    pub ingest_queue: Arc<tokio::sync::Semaphore>,
    /// One ingest batch counted at a time.
    pub ingest_turn: tokio::sync::Semaphore,
    /// One backup at a time: each holds a store reader and a full copy on
    /// disk while it downloads.
    pub backups: Arc<tokio::sync::Semaphore>,
}

impl std::ops::Deref for AdminState {
    type Target = AdminInner;

    fn deref(&self) -> &AdminInner {
        &self.0
    }
}

impl AdminState {
    pub fn new(
        writer: Writer,
        token: AdminToken,
        metrics: Arc<Metrics>,
        options: AdminOptions,
        counts: Option<Arc<crate::replication::stats::ScanCounts>>,
    ) -> AdminState {
        AdminState(Arc::new(AdminInner {
            writer,
            tokens: auth::AdminTokens::new(token),
            keys: Arc::default(),
            metrics,
            options,
            exports: Arc::new(tokio::sync::Semaphore::new(2)),
            counts,
            auth_throttle: auth::Throttle::default(),
            ingest_queue: Arc::new(tokio::sync::Semaphore::new(ingest::MAX_WAITING + 1)),
            ingest_turn: tokio::sync::Semaphore::new(1),
            backups: Arc::new(tokio::sync::Semaphore::new(1)),
        }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "qrlaunch admin API",
        description = "Codes, rules, host settings and verification files of a qrlaunch node. Every request needs `Authorization: Bearer TOKEN`: the admin token or an API key, whose role (admin, editor, viewer) and scopes (tags, hosts, appids) decide what it may do (`403` otherwise). A 2xx write is committed and applied to this node's table."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "codes", description = "Launch codes"),
        (name = "rules", description = "Legacy URL rules"),
        (name = "hosts", description = "Taken-over hosts: unmatched URLs and verification files"),
        (name = "transfer", description = "NDJSON import and export"),
        (name = "stats", description = "Scan counts by day and client class"),
        (name = "keys", description = "API keys: roles and scopes (admin keys only)"),
        (name = "audit", description = "Who changed what"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The routes and the OpenAPI document generated from them.
fn routes() -> (Router<AdminState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(codes::list, codes::create, codes::patch_tagged))
        .routes(routes!(codes::get, codes::put, codes::patch, codes::delete))
        .routes(routes!(
            rules::get,
            rules::create,
            rules::put,
            rules::patch,
            rules::delete
        ))
        .routes(routes!(hosts::list))
        .routes(routes!(hosts::get, hosts::put, hosts::delete))
        .routes(routes!(hosts::get_files, hosts::put_file, hosts::delete_file))
        .routes(routes!(transfer::import))
        .routes(routes!(transfer::export))
        .routes(routes!(backup::backup))
        .routes(routes!(qr::code))
        .routes(routes!(wxacode::code))
        .routes(routes!(stats::code))
        .routes(routes!(stats::rule))
        .routes(routes!(stats::host))
        .routes(routes!(stats::tag))
        .routes(routes!(tags::list))
        .routes(routes!(tags::patch))
        .routes(routes!(ingest::ingest))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::get, keys::patch, keys::delete))
        .routes(routes!(keys::rotate))
        .routes(routes!(audit::list))
        .split_for_parts()
}

/// The OpenAPI 3.1 document of this API, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The admin API as a router, ready to serve.
pub fn router(state: AdminState) -> Router {
    let (routes, api) = routes();
    let document: Arc<str> = api.to_pretty_json().unwrap_or_default().into();
    routes
        .route(
            "/admin/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    let mut response = document.to_string().into_response();
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    response
                }
            }),
        )
        .route_layer(axum::middleware::from_fn(auth::require_role))
        .fallback(no_route)
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state)
}

async fn no_route() -> Response {
    ApiError::not_found("no such admin route; see /admin/v1/openapi.json").into_response()
}

async fn not_allowed() -> Response {
    ApiError::new(
        error::ErrorCode::MethodNotAllowed,
        "this route does not answer this method; see /admin/v1/openapi.json",
    )
    .into_response()
}
