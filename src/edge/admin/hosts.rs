//! `/admin/v1/hosts…`: what happens on a taken-over legacy host to URLs no
//! rule matches, and the verification files served there.

use super::body;
use super::entries::{self, Listing};
use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{ErrorBody, Page, StoredEntry};
use crate::model::domain::{
    Entry, EntryKey, EntryKind, FieldError, FileBody, FileKey, FilePath, HostName, Line, VerificationFile,
};
use crate::model::percent;
use crate::replication::store::ListQuery;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

fn host(path: Result<Path<String>, PathRejection>) -> Result<HostName, ApiError> {
    let Path(host) = path.map_err(|e| ApiError::invalid("host", format!("the host in the path is not valid: {e}")))?;
    host.parse()
        .map_err(|e: FieldError| ApiError::invalid(e.field, e.message))
}

fn file_path(query: &Option<String>) -> Result<Option<FilePath>, ApiError> {
    match percent::get(query.as_deref().unwrap_or(""), "path") {
        None => Ok(None),
        Some(Err(e)) => Err(ApiError::invalid("file", format!("`path` {}", e.describe()))),
        Some(Ok(path)) => path
            .parse()
            .map(Some)
            .map_err(|e: FieldError| ApiError::invalid(e.field, e.message)),
    }
}

/// Hosts with settings, in host order.
#[utoipa::path(get, path = "/admin/v1/hosts", tag = "hosts",
    params(("limit" = Option<u32>, Query), ("after" = Option<String>, Query)),
    responses((status = 200, body = Page)))]
pub async fn list(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    entries::list(
        &state,
        EntryKind::Host,
        Listing::from_query(query.as_deref().unwrap_or(""))?,
    )
    .await
}

#[utoipa::path(get, path = "/admin/v1/hosts/{host}", tag = "hosts", params(("host" = String, Path)),
    responses((status = 200, body = StoredEntry), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    entries::get(&state, EntryKey::Host(host(path)?.to_string())).await
}

/// Sets where URLs no rule matches go: `{"unmatched":"https://origin…"}`
/// (a `302` to the same path and query there), or `{}` for `404`.
#[utoipa::path(put, path = "/admin/v1/hosts/{host}", tag = "hosts", params(("host" = String, Path)), request_body = Line,
    responses((status = 200, body = StoredEntry), (status = 201, body = StoredEntry), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    entries::put(&state, EntryKey::Host(host(path)?.to_string()), body).await
}

#[utoipa::path(delete, path = "/admin/v1/hosts/{host}", tag = "hosts", params(("host" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    entries::delete(&state, EntryKey::Host(host(path)?.to_string())).await
}

/// With `?path=`: that file. Without: every file on the host.
#[utoipa::path(get, path = "/admin/v1/hosts/{host}/files", tag = "hosts",
    params(("host" = String, Path), ("path" = Option<String>, Query, description = "the file's path, like /MP_verify_abc.txt")),
    responses((status = 200, body = StoredEntry), (status = 200, body = Page), (status = 404, body = ErrorBody)))]
pub async fn get_files(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let host = host(path)?;
    match file_path(&query)? {
        Some(file) => entries::get(&state, EntryKey::File(FileKey::new(&host, &file))).await,
        None => {
            // A host has a handful of files: one page holds them all.
            let after = format!("{host}/");
            let rows = state
                .writer
                .store()
                .list(ListQuery {
                    kind: EntryKind::File,
                    after: Some(after.clone()),
                    limit: entries::MAX_LIMIT,
                    tag: None,
                })
                .await?;
            let items = rows
                .iter()
                .filter(|s| matches!(&s.entry, Entry::File(f) if f.host == host))
                .map(StoredEntry::new)
                .collect();
            Ok(Json(Page { items, next: None }).into_response())
        }
    }
}

/// Stores a verification file: the body is the file's text (at most 1 KiB).
#[utoipa::path(put, path = "/admin/v1/hosts/{host}/files", tag = "hosts",
    params(("host" = String, Path), ("path" = String, Query)),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = StoredEntry), (status = 201, body = StoredEntry), (status = 422, body = ErrorBody)))]
pub async fn put_file(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let host = host(path)?;
    let file = file_path(&query)?.ok_or_else(|| ApiError::invalid("file", "`?path=/name.txt` names the file"))?;
    let bytes = body::read(body, FileBody::MAX_BYTES, state.options.body_timeout).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("body", "the file must be UTF-8 text"))?;
    let body: FileBody = text
        .parse()
        .map_err(|e: FieldError| ApiError::invalid(e.field, e.message))?;
    let entry = Entry::File(VerificationFile { host, path: file, body });
    let committed = state
        .writer
        .put(entry, crate::replication::store::WriteMode::Upsert)
        .await?;
    let status = if committed.value.created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    };
    let answer = StoredEntry::new(&committed.value.stored);
    Ok(entries::with_position(
        (status, Json(answer)).into_response(),
        committed.position,
    ))
}

#[utoipa::path(delete, path = "/admin/v1/hosts/{host}/files", tag = "hosts",
    params(("host" = String, Path), ("path" = String, Query)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_file(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let host = host(path)?;
    let file = file_path(&query)?.ok_or_else(|| ApiError::invalid("file", "`?path=/name.txt` names the file"))?;
    entries::delete(&state, EntryKey::File(FileKey::new(&host, &file))).await
}
