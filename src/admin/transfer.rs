//! Bulk transfer: `POST /admin/v1/import` and `GET /admin/v1/export`, both
//! NDJSON in the table file format, both streamed.
//!
//! An import is one transaction on a low-priority thread: the body streams
//! to it, lines are parsed and written as they arrive; on the first bad line
//! writing stops, parsing goes on to report up to [`MAX_REPORTED`] errors,
//! and the transaction is rolled back. Only a fully valid body is
//! committed, after which the table is rebuilt from the store while scans
//! keep reading the previous snapshot.

use super::reply::{self, AdminBody, Reply};
use super::AdminState;
use crate::catalog::CatalogError;
use crate::http::params;
use crate::store::{to_line, ImportCounts, Store, StoreError, WriteMode};
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

/// A piece of the request body on its way to the import thread; `End`
/// says the body arrived whole (without it the import rolls back).
enum Chunk {
    Data(Bytes),
    End,
}

/// How the import thread finished.
enum Finished {
    Committed {
        lines: usize,
        counts: ImportCounts,
    },
    Rejected {
        errors: Vec<LineError>,
        error_count: usize,
    },
    /// The body did not arrive whole; nothing was written.
    Aborted,
}

/// Streams the body to a low-priority thread that parses and writes it in
/// one transaction (see [`crate::background`]): scans keep the CPU.
async fn run_import(
    store: Arc<dyn Store>,
    mode: WriteMode,
    mut body: Incoming,
) -> Result<(Result<Imported, Reply>, Option<ImportCounts>), CatalogError> {
    let (chunks, received) = tokio::sync::mpsc::channel::<Chunk>(64);
    let worker = crate::background::run("qrlaunch-import", move || import_lines(&*store, mode, received));
    let mut body_error = None;
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if chunks.send(Chunk::Data(data)).await.is_err() {
                        break;
                    }
                }
            }
            Some(Err(e)) => {
                body_error = Some(e.to_string());
                break;
            }
            None => {
                let _ = chunks.send(Chunk::End).await;
                break;
            }
        }
    }
    drop(chunks);
    let finished = worker
        .await
        .ok_or_else(|| CatalogError::Join("the import thread panicked".into()))??;
    let mode_name = if mode == WriteMode::Insert { "insert" } else { "upsert" };
    Ok(match finished {
        Finished::Committed { lines, counts } => (
            Ok(Imported {
                mode: mode_name,
                lines,
                codes: counts.codes,
                rules: counts.rules,
            }),
            Some(counts),
        ),
        Finished::Rejected { errors, error_count } => {
            let rejected = Rejected {
                error: "invalid",
                message: format!("{error_count} bad line(s); nothing was imported"),
                errors,
            };
            (Err(reply::json(StatusCode::UNPROCESSABLE_ENTITY, &rejected)), None)
        }
        Finished::Aborted => {
            let message = format!(
                "reading the body failed: {}; nothing was imported",
                body_error.unwrap_or_default()
            );
            (Err(reply::bad_request(&message)), None)
        }
    })
}

/// The import thread: splits lines, parses, writes, commits or rolls back.
fn import_lines(
    store: &dyn Store,
    mode: WriteMode,
    mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
) -> Result<Finished, StoreError> {
    let mut import = store.begin_import(mode)?;
    let mut lines = Lines::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut skipping_long_line = false;
    loop {
        let chunk = match chunks.blocking_recv() {
            Some(Chunk::Data(data)) => data,
            Some(Chunk::End) => break,
            None => return Ok(Finished::Aborted),
        };
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n').map(|i| start + i) {
            if skipping_long_line {
                skipping_long_line = false;
            } else {
                lines.take(&mut *import, &pending[start..end])?;
            }
            start = end + 1;
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE && !skipping_long_line {
            lines.number += 1;
            lines.record(lines.number, None, format!("the line is longer than {MAX_LINE} bytes"));
            skipping_long_line = true;
        }
        if skipping_long_line {
            pending.clear();
        }
    }
    if !pending.is_empty() && !skipping_long_line {
        lines.take(&mut *import, &pending)?;
    }
    if lines.error_count == 0 {
        for &line in import.conflicts() {
            lines.record(
                line,
                None,
                "the key exists already (`?mode=insert` only creates)".into(),
            );
        }
    }
    if lines.error_count > 0 {
        let mut errors = lines.errors;
        errors.sort_by_key(|e| e.line);
        errors.truncate(MAX_REPORTED);
        return Ok(Finished::Rejected {
            errors,
            error_count: lines.error_count,
        });
    }
    let counts = import.commit()?;
    Ok(Finished::Committed {
        lines: lines.number,
        counts,
    })
}

/// Line bookkeeping of one import.
#[derive(Default)]
struct Lines {
    number: usize,
    errors: Vec<LineError>,
    error_count: usize,
}

impl Lines {
    /// Parses one line and, while no line has failed, writes it.
    fn take(&mut self, import: &mut dyn crate::store::Import, raw: &[u8]) -> Result<(), StoreError> {
        self.number += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            self.record(self.number, None, "the line is not valid UTF-8".into());
            return Ok(());
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        match parse_line(text) {
            Ok(entry) if self.error_count == 0 => import.add(self.number, &entry)?,
            Ok(_) => {}
            Err(crate::table_file::LineError::Field(e)) => self.record(self.number, Some(e.field), e.message),
            Err(e) => self.record(self.number, None, e.to_string()),
        }
        Ok(())
    }

    fn record(&mut self, line: usize, field: Option<&'static str>, message: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(LineError { line, field, message });
        }
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
