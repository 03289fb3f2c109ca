//! The admin API: its own listener (default `127.0.0.1:8081`), never on the
//! scan port. Every request needs `Authorization: Bearer TOKEN`.
//!
//! * [`auth`]: where the token comes from and how it is checked;
//! * [`entries`]: single codes and rules (create, read, replace, patch,
//!   delete, list);
//! * [`transfer`]: NDJSON import (all or nothing) and export;
//! * [`reply`]: JSON answers and errors;
//! * `openapi.json`: the machine-readable description, served at
//!   `/admin/v1/openapi.json`.
//!
//! All writes go through [`crate::catalog::Catalog`], which commits to the
//! store before the live table changes and before the answer is sent.

pub mod auth;
// Handlers return a ready `Response` as their error; it is large, but the
// admin path is cold and boxing it would only add noise.
#[allow(clippy::result_large_err)]
pub mod entries;
pub mod reply;
#[allow(clippy::result_large_err)]
pub mod transfer;

use crate::catalog::Catalog;
use crate::http::AppState;
use auth::AdminToken;
use entries::Kind;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use reply::Reply;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What admin handlers share.
pub struct AdminState {
    pub catalog: Arc<Catalog>,
    pub token: AdminToken,
    /// The scan side's state, for its metrics.
    pub app: Arc<AppState>,
}

/// One admin connection's service.
#[derive(Clone)]
pub struct AdminService {
    state: Arc<AdminState>,
}

impl AdminService {
    pub fn new(state: Arc<AdminState>) -> AdminService {
        AdminService { state }
    }
}

impl hyper::service::Service<Request<Incoming>> for AdminService {
    type Response = Reply;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            let response = handle(&state, req).await;
            state.app.metrics.admin_request(response.status().as_u16());
            Ok(response)
        })
    }
}

async fn handle(state: &AdminState, req: Request<Incoming>) -> Reply {
    if !state
        .token
        .accepts(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))
    {
        state.app.metrics.admin_auth_failure();
        let mut response = reply::error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer TOKEN` with the admin token",
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let method = &parts.method;
    match path {
        "/admin/v1/openapi.json" if method == Method::GET => {
            let mut response = reply::empty(StatusCode::OK);
            *response.body_mut() = reply::full(OPENAPI);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        "/admin/v1/import" if method == Method::POST => {
            transfer::import(state, query, parts.headers.get(CONTENT_TYPE), body).await
        }
        "/admin/v1/export" if method == Method::GET => transfer::export(state),
        "/admin/v1/openapi.json" | "/admin/v1/export" => not_allowed("GET"),
        "/admin/v1/import" => not_allowed("POST"),
        "/admin/v1/codes" => collection(state, Kind::Code, method, query, body).await,
        "/admin/v1/rules" => match entries::key_from_request(Kind::Rule, None, query) {
            Err(reply) => reply,
            Ok(Some(key)) => item(state, key, method, body).await,
            Ok(None) => collection(state, Kind::Rule, method, query, body).await,
        },
        p => match p
            .strip_prefix("/admin/v1/codes/")
            .filter(|s| !s.is_empty() && !s.contains('/'))
        {
            Some(segment) => match entries::key_from_request(Kind::Code, Some(segment), query) {
                Ok(Some(key)) => item(state, key, method, body).await,
                Ok(None) => reply::not_found("no such admin route"),
                Err(reply) => reply,
            },
            None => reply::not_found("no such admin route; see /admin/v1/openapi.json"),
        },
    }
}

async fn collection(state: &AdminState, kind: Kind, method: &Method, query: &str, body: Incoming) -> Reply {
    match *method {
        Method::GET => entries::list(state, kind, query).await,
        Method::POST => entries::create(state, kind, body).await,
        _ => not_allowed("GET, POST"),
    }
}

async fn item(state: &AdminState, key: crate::table::EntryKey, method: &Method, body: Incoming) -> Reply {
    match *method {
        Method::GET => entries::get(state, &key).await,
        Method::PUT => entries::put(state, &key, body).await,
        Method::PATCH => entries::patch(state, &key, body).await,
        Method::DELETE => entries::delete(state, key).await,
        _ => not_allowed("GET, PUT, PATCH, DELETE"),
    }
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut response = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("allowed: {allow}"),
    );
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}
