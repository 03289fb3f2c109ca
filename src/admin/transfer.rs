//! Bulk transfer: `POST /admin/v1/import` and `GET /admin/v1/export`, both
//! NDJSON in the table file format, both streamed.
//!
//! An import is one transaction: lines are parsed as they arrive and written
//! in batches; on the first bad line writing stops, parsing goes on to
//! report up to [`MAX_REPORTED`] errors, and the transaction is rolled back.
//! Only a fully valid body is committed, after which the table is rebuilt
//! from the store while scans keep reading the previous snapshot.

use super::reply::{self, AdminBody, Reply};
use super::AdminState;
use crate::catalog::CatalogError;
use crate::http::params;
use crate::store::{to_line, ImportCounts, Store, WriteMode};
use crate::table_file::{parse_line, TableEntry};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use std::sync::Arc;

/// Errors listed in a failed import's answer.
pub const MAX_REPORTED: usize = 100;
/// Longest accepted line.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Serialize)]
struct LineError {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    message: String,
}

#[derive(Serialize)]
struct Rejected {
    error: &'static str,
    message: String,
    /// The first errors, by line number.
    errors: Vec<LineError>,
}

#[derive(Serialize)]
struct Imported {
    mode: &'static str,
    lines: usize,
    codes: u64,
    rules: u64,
}

pub async fn import(state: &AdminState, query: &str, content_type: Option<&HeaderValue>, body: Incoming) -> Reply {
    let mode = match params::get(query, "mode") {
        None => WriteMode::Upsert,
        Some(Ok(m)) if m == "upsert" => WriteMode::Upsert,
        Some(Ok(m)) if m == "insert" => WriteMode::Insert,
        Some(_) => return reply::bad_request("`mode` must be `upsert` (the default) or `insert`"),
    };
    let ndjson = content_type
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/x-ndjson" || v == "application/ndjson");
    if !ndjson {
        return reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the table file with `Content-Type: application/x-ndjson`",
        );
    }
    let outcome = state.catalog.import(move |store| run_import(store, mode, body)).await;
    match outcome {
        Ok(Ok(imported)) => reply::json(StatusCode::OK, &imported),
        Ok(Err(reply)) => reply,
        Err(e) => super::entries::catalog_error(e),
    }
}

/// Reads the body into one import transaction; `Err` holds the reply for a
/// rejected import (nothing committed).
async fn run_import(
    store: Arc<dyn Store>,
    mode: WriteMode,
    mut body: Incoming,
) -> Result<(Result<Imported, Reply>, Option<ImportCounts>), CatalogError> {
    let mut import = store.begin_import(mode).await?;
    let mut errors: Vec<LineError> = Vec::new();
    let mut error_count = 0usize;
    let mut pending: Vec<u8> = Vec::new();
    let mut line_number = 0usize;
    let mut finished = false;
    while !finished {
        let chunk = match body.frame().await {
            Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
            Some(Err(e)) => {
                let rejected = reply::bad_request(&format!("reading the body failed: {e}; nothing was imported"));
                return Ok((Err(rejected), None));
            }
            None => {
                finished = true;
                Bytes::new()
            }
        };
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n').map(|i| start + i) {
            line_number += 1;
            let line = &pending[start..end];
            take_line(&mut *import, line_number, line, &mut errors, &mut error_count).await?;
            start = end + 1;
        }
        pending.drain(..start);
        if finished && !pending.is_empty() {
            line_number += 1;
            let line = std::mem::take(&mut pending);
            take_line(&mut *import, line_number, &line, &mut errors, &mut error_count).await?;
        } else if pending.len() > MAX_LINE {
            line_number += 1;
            record(
                &mut errors,
                &mut error_count,
                line_number,
                None,
                format!("the line is longer than {MAX_LINE} bytes"),
            );
            pending.clear();
            // Skip the rest of this line.
            while let Some(Ok(frame)) = body.frame().await {
                let data = frame.into_data().unwrap_or_default();
                if let Some(i) = data.iter().position(|&b| b == b'\n') {
                    pending.extend_from_slice(&data[i + 1..]);
                    break;
                }
            }
        }
    }
    if error_count == 0 {
        import.flush().await?;
        for &line in import.conflicts() {
            let message = "the key exists already (`?mode=insert` only creates)".to_string();
            record(&mut errors, &mut error_count, line, None, message);
        }
    }
    if error_count > 0 {
        errors.sort_by_key(|e| e.line);
        errors.truncate(MAX_REPORTED);
        let rejected = Rejected {
            error: "invalid",
            message: format!("{error_count} bad line(s); nothing was imported"),
            errors,
        };
        return Ok((Err(reply::json(StatusCode::UNPROCESSABLE_ENTITY, &rejected)), None));
    }
    let counts = import.commit().await?;
    let mode = if mode == WriteMode::Insert { "insert" } else { "upsert" };
    let imported = Imported {
        mode,
        lines: line_number,
        codes: counts.codes,
        rules: counts.rules,
    };
    Ok((Ok(imported), Some(counts)))
}

async fn take_line(
    import: &mut dyn crate::store::Import,
    number: usize,
    raw: &[u8],
    errors: &mut Vec<LineError>,
    error_count: &mut usize,
) -> Result<(), CatalogError> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let Ok(text) = std::str::from_utf8(raw) else {
        record(errors, error_count, number, None, "the line is not valid UTF-8".into());
        return Ok(());
    };
    if text.trim().is_empty() {
        return Ok(());
    }
    match parse_line(text) {
        Ok(entry) if *error_count == 0 => import.add(number, entry).await?,
        Ok(_) => {}
        Err(crate::table_file::LineError::Field(e)) => record(errors, error_count, number, Some(e.field), e.message),
        Err(e) => record(errors, error_count, number, None, e.to_string()),
    }
    Ok(())
}

fn record(errors: &mut Vec<LineError>, count: &mut usize, line: usize, field: Option<&'static str>, message: String) {
    *count += 1;
    if errors.len() < MAX_REPORTED {
        errors.push(LineError { line, field, message });
    }
}

/// Streams the whole table as NDJSON, codes then rules, as of one moment.
pub fn export(state: &AdminState) -> Reply {
    let (entries_tx, entries_rx) = tokio::sync::mpsc::channel::<TableEntry>(1024);
    let catalog = state.catalog.clone();
    tokio::spawn(async move {
        if let Err(error) = catalog.store().export(entries_tx).await {
            tracing::error!(%error, "export failed part-way");
        }
    });
    let stream = futures_util::stream::unfold(entries_rx, |mut entries| async move {
        let entry = entries.recv().await?;
        let mut line = serde_json::to_vec(&to_line(&entry)).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::io::Error>(Frame::data(Bytes::from(line))), entries))
    });
    let body: AdminBody = StreamBody::new(stream).boxed_unsync();
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    response
}
