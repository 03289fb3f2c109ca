//! `/admin/v1/codes…`: launch codes, named by their path segment.

use super::entries::{self, Listing};
use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{BulkAnswer, ErrorBody, Page, StoredEntry};
use crate::model::domain::{Code, EntryKey, EntryKind, FieldError, Line};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

/// The code named by the path, validated.
pub fn key(path: Result<Path<String>, PathRejection>) -> Result<EntryKey, ApiError> {
    let Path(segment) =
        path.map_err(|e| ApiError::invalid("code", format!("the code in the path is not valid: {e}")))?;
    let code: Code = segment
        .parse()
        .map_err(|e: FieldError| ApiError::invalid(e.field, e.message))?;
    Ok(EntryKey::Code(code.to_string()))
}

/// Lists codes in code order; `?tag=` keeps only those with the tag.
#[utoipa::path(get, path = "/admin/v1/codes", tag = "codes",
    params(
        ("limit" = Option<u32>, Query, description = "1-1000, default 100"),
        ("after" = Option<String>, Query, description = "the `next` of the previous page"),
        ("tag" = Option<String>, Query, description = "only codes with this tag"),
        ("starts" = Option<String>, Query, description = "only codes that start with this text"),
        ("appid" = Option<String>, Query, description = "only codes that open this mini program"),
    ),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    entries::list(
        &state,
        EntryKind::Code,
        Listing::from_query(query.as_deref().unwrap_or(""))?,
    )
    .await
}

/// Creates a code; without `code` the server generates one (7 base62
/// characters from a CSPRNG).
#[utoipa::path(post, path = "/admin/v1/codes", tag = "codes", request_body = Line,
    responses((status = 201, body = StoredEntry), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(State(state): State<AdminState>, body: Body) -> Result<Response, ApiError> {
    entries::create(&state, EntryKind::Code, body).await
}

/// Changes every code with `?tag=` in one transaction (a JSON merge patch).
#[utoipa::path(patch, path = "/admin/v1/codes", tag = "codes",
    params(("tag" = String, Query, description = "the codes to change")),
    request_body(content = Object, description = "a JSON merge patch, e.g. {\"disabled\":true}"),
    responses((status = 200, body = BulkAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_tagged(
    State(state): State<AdminState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(tag) = entries::tag_param(query.as_deref().unwrap_or(""))? else {
        return Err(ApiError::invalid("tag", "`?tag=` names the codes to change"));
    };
    entries::patch_tagged(&state, vec![EntryKind::Code], tag, body).await
}

#[utoipa::path(get, path = "/admin/v1/codes/{code}", tag = "codes",
    params(("code" = String, Path)),
    responses((status = 200, body = StoredEntry), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    entries::get(&state, key(code)?).await
}

/// Creates (`201`) or replaces (`200`) the code.
#[utoipa::path(put, path = "/admin/v1/codes/{code}", tag = "codes", params(("code" = String, Path)), request_body = Line,
    responses((status = 200, body = StoredEntry), (status = 201, body = StoredEntry), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    entries::put(&state, key(code)?, body).await
}

/// A JSON merge patch: fields present replace, `null` removes an optional one.
#[utoipa::path(patch, path = "/admin/v1/codes/{code}", tag = "codes", params(("code" = String, Path)),
    request_body(content = Object, description = "a JSON merge patch, e.g. {\"disabled\":true}"),
    responses((status = 200, body = StoredEntry), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    entries::patch(&state, key(code)?, body).await
}

#[utoipa::path(delete, path = "/admin/v1/codes/{code}", tag = "codes", params(("code" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    entries::delete(&state, key(code)?).await
}
