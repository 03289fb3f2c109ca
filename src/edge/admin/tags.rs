//! `GET /admin/v1/tags`: the campaigns, each tag with how many codes and
//! rules carry it.

use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{ErrorBody, TagInfo, TagList};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Every tag a key may see: all of them for a key without scopes, its own
/// tags for a key with tag scopes, none for a key scoped only by host or
/// mini program (a tag's counts would tell of entries outside its scopes).
#[utoipa::path(get, path = "/admin/v1/tags", tag = "stats",
    responses((status = 200, body = TagList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let principal = super::access::current();
    let all = state.writer.store().tags().await?;
    let [tags, _, _] = principal.scopes.lists();
    let unscoped = principal.is_admin() || principal.scopes.is_empty();
    let items = all
        .into_iter()
        .filter(|t| unscoped || tags.contains(&t.tag))
        .map(|t| TagInfo {
            tag: t.tag,
            codes: t.codes,
            rules: t.rules,
        })
        .collect();
    Ok(Json(TagList { items }).into_response())
}
