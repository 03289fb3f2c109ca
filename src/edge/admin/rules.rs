//! `/admin/v1/rules…`: legacy URL rules, named by `?prefix=URL` (its
//! normalized form is the key: two spellings of one prefix are one rule).

use super::entries::{self, Listing};
use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{BulkAnswer, ErrorBody, StoredEntry};
use crate::model::domain::{EntryKey, EntryKind, FieldError, Line, RulePrefix};
use crate::model::percent;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;

/// The rule named by `?prefix=`, if any.
fn key(query: &Option<String>) -> Result<Option<EntryKey>, ApiError> {
    match percent::get(query.as_deref().unwrap_or(""), "prefix") {
        None => Ok(None),
        Some(Err(e)) => Err(ApiError::invalid("prefix", format!("`prefix` {}", e.describe()))),
        Some(Ok(prefix)) => {
            let prefix: RulePrefix = prefix
                .parse()
                .map_err(|e: FieldError| ApiError::invalid(e.field, e.message))?;
            Ok(Some(EntryKey::Rule(prefix.key().to_string())))
        }
    }
}

fn required(query: &Option<String>) -> Result<EntryKey, ApiError> {
    key(query)?.ok_or_else(|| ApiError::invalid("prefix", "`?prefix=URL` names the rule"))
}

/// With `?prefix=`: that rule. Without: the rules in key order (`limit`,
/// `after`, `tag` as for codes).
#[utoipa::path(get, path = "/admin/v1/rules", tag = "rules",
    params(
        ("prefix" = Option<String>, Query, description = "the rule's prefix URL"),
        ("limit" = Option<u32>, Query), ("after" = Option<String>, Query), ("tag" = Option<String>, Query),
        ("starts" = Option<String>, Query, description = "only rules whose normalized prefix starts with this text"),
        ("appid" = Option<String>, Query, description = "only rules that open this mini program"),
    ),
    responses((status = 200, body = StoredEntry), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    match key(&query)? {
        Some(key) => entries::get(&state, key).await,
        None => {
            entries::list(
                &state,
                EntryKind::Rule,
                Listing::from_query(query.as_deref().unwrap_or(""))?,
            )
            .await
        }
    }
}

#[utoipa::path(post, path = "/admin/v1/rules", tag = "rules", request_body = Line,
    responses((status = 201, body = StoredEntry), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(State(state): State<AdminState>, body: Body) -> Result<Response, ApiError> {
    entries::create(&state, EntryKind::Rule, body).await
}

#[utoipa::path(put, path = "/admin/v1/rules", tag = "rules",
    params(("prefix" = String, Query)), request_body = Line,
    responses((status = 200, body = StoredEntry), (status = 201, body = StoredEntry), (status = 422, body = ErrorBody)))]
pub async fn put(State(state): State<AdminState>, RawQuery(query): RawQuery, body: Body) -> Result<Response, ApiError> {
    entries::put(&state, required(&query)?, body).await
}

/// With `?prefix=`: a JSON merge patch of that rule. With `?tag=`: of every
/// rule with the tag, in one transaction.
#[utoipa::path(patch, path = "/admin/v1/rules", tag = "rules",
    params(("prefix" = Option<String>, Query), ("tag" = Option<String>, Query)),
    request_body(content = Object, description = "a JSON merge patch"),
    responses((status = 200, body = StoredEntry), (status = 200, body = BulkAnswer), (status = 404, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AdminState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    match key(&query)? {
        Some(key) => entries::patch(&state, key, body).await,
        None => match entries::tag_param(query.as_deref().unwrap_or(""))? {
            Some(tag) => entries::patch_tagged(&state, vec![EntryKind::Rule], tag, body).await,
            None => Err(ApiError::invalid(
                "prefix",
                "`?prefix=URL` names the rule (or `?tag=` a set of rules)",
            )),
        },
    }
}

#[utoipa::path(delete, path = "/admin/v1/rules", tag = "rules", params(("prefix" = String, Query)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    entries::delete(&state, required(&query)?).await
}
