//! `GET /admin/v1/tags`: the campaigns, each tag with how many codes and
//! rules carry it.

use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{ErrorBody, TagInfo, TagList};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Every tag a key may see: all of them for a key without scopes, its own
/// tags for a key scoped by tags alone, none for a key with host or mini
/// program scopes (a tag's counts would tell of entries outside them).
#[utoipa::path(get, path = "/admin/v1/tags", tag = "stats",
    responses((status = 200, body = TagList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let principal = super::access::current();
    let all = state.writer.store().tags().await?;
    let [tags, hosts, appids] = principal.scopes.lists();
    let unscoped = principal.is_admin() || principal.scopes.is_empty();
    let by_tags_alone = hosts.is_empty() && appids.is_empty();
    let items = all
        .into_iter()
        .filter(|t| unscoped || (by_tags_alone && tags.contains(&t.tag)))
        .map(|t| TagInfo {
            tag: t.tag,
            codes: t.codes,
            rules: t.rules,
        })
        .collect();
    Ok(Json(TagList { items }).into_response())
}

/// A JSON merge patch of every code and rule with the tag, in one
/// transaction: all of them or, when one is refused (outside the key's
/// scopes, invalid after the patch), none.
#[utoipa::path(patch, path = "/admin/v1/tags/{tag}", tag = "stats",
    params(("tag" = String, Path)),
    request_body = Object,
    responses((status = 200, body = crate::edge::api::BulkAnswer), (status = 404, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AdminState>,
    tag: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let axum::extract::Path(tag) = tag.map_err(|e| ApiError::invalid("tag", e.to_string()))?;
    let tag: crate::model::domain::Tag = tag
        .parse()
        .map_err(|e: crate::model::domain::FieldError| ApiError::invalid("tag", e.message))?;
    super::entries::patch_tagged(
        &state,
        vec![
            crate::model::domain::EntryKind::Code,
            crate::model::domain::EntryKind::Rule,
        ],
        tag,
        body,
    )
    .await
}
