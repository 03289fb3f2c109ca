//! Bulk transfer: `POST /admin/v1/import` and `GET /admin/v1/export`, both
//! NDJSON in the table file format, both streamed.
//!
//! An import happens in two steps, so that a client's pace never holds the
//! store's writer: the body is spooled to a file in the data directory
//! while every line is validated (with a deadline between chunks); only a
//! body that arrived whole and without a bad line is then written, in one
//! transaction, from the spool. A bad body is answered `422` with the
//! first [`MAX_REPORTED`] errors, and nothing is written.
//!
//! [`MAX_REPORTED`]: super::error::MAX_REPORTED

use super::error::{ApiError, ErrorCode, MAX_REPORTED};
use super::AdminState;
use crate::edge::api::{ErrorBody, GeneratedCode, ImportAnswer, LineErrorBody};
use crate::model::domain::Entry;
use crate::model::percent;
use crate::model::table_file::{self, Reader};
use crate::replication::store::{ImportLine, ImportSource, StoreError, WriteMode};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::io::{BufReader, Read, Seek, Write};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// What the checking pass found.
struct Checked {
    lines: usize,
    /// Lines holding an entry (not blank).
    entries: usize,
    errors: Vec<LineErrorBody>,
    error_count: usize,
    spool: std::fs::File,
    /// The first codes and rules, to judge for warnings after the commit.
    sample: Vec<crate::model::domain::Entry>,
}

/// Codes and rules of an import judged for warnings (the first ones).
const WARNING_SAMPLE: usize = 10_000;

/// Why the checking pass stopped early.
enum Unchecked {
    /// The body did not arrive whole.
    Aborted,
    /// The spool could not be written (a full disk, say).
    Spool(std::io::Error),
}

/// Imports an NDJSON table file, all or nothing.
#[utoipa::path(post, path = "/admin/v1/import", tag = "transfer",
    params(("mode" = Option<String>, Query, description = "`upsert` (default: create or replace) or `insert` (existing keys are errors)")),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = ImportAnswer), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(state): State<AdminState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mode = match percent::get(query.as_deref().unwrap_or(""), "mode") {
        None => WriteMode::Upsert,
        Some(Ok(m)) if m == "upsert" => WriteMode::Upsert,
        Some(Ok(m)) if m == "insert" => WriteMode::Insert,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`mode` must be `upsert` (the default) or `insert`",
            ))
        }
    };
    let ndjson = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/x-ndjson" || v == "application/ndjson");
    if !ndjson {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the table file with `Content-Type: application/x-ndjson`",
        ));
    }
    let checked = check(&state, body).await?;
    if checked.error_count > 0 {
        let mut errors = checked.errors;
        errors.sort_by_key(|e| e.line);
        return Err(ApiError::lines(
            format!("{} bad line(s); nothing was imported", checked.error_count),
            errors,
        ));
    }
    if checked.entries == 0 {
        return Err(ApiError::bad_request(
            "the body holds no table-file line (it is empty): send one JSON object a line; nothing was imported",
        ));
    }
    let lines = checked.lines;
    let sample = checked.sample;
    let mut spool = checked.spool;
    let principal = super::access::current();
    if !principal.is_admin() && !principal.scopes.is_empty() {
        spool = require_existing_covered(&state, &principal, spool).await?;
    }
    let committed = state.writer.import(mode, spooled_lines(spool)).await?;
    // Judged on a low-priority thread: thousands of entries must not hold
    // up the runtime that scans share.
    let judged = state.clone();
    let warnings = crate::replication::background::run("qrlaunch-warnings", move || {
        super::warnings::for_entries(&judged, &sample)
    })
    .await
    .unwrap_or_default();
    let summary = committed.value;
    let answer = ImportAnswer {
        mode: mode.as_str().into(),
        lines,
        codes: summary.codes,
        rules: summary.rules,
        hosts: summary.hosts,
        files: summary.files,
        generated: summary
            .generated
            .into_iter()
            .map(|(line, code)| GeneratedCode { line, code })
            .collect(),
        position: committed.position,
        warnings,
    };
    Ok(super::entries::with_position(
        Json(answer).into_response(),
        committed.position,
    ))
}

/// Spools the body to a file while checking every line.
async fn check(state: &AdminState, mut body: Body) -> Result<Checked, ApiError> {
    let spool = tempfile::tempfile_in(&state.options.spool_dir).map_err(|e| {
        ApiError::internal(format!(
            "cannot spool the import in {}: {e}",
            state.options.spool_dir.display()
        ))
    })?;
    // The body's chunks become a blocking reader for the checking thread
    // (tokio-util's StreamReader and SyncIoBridge). A body that does not
    // arrive whole ends the stream with an error, never a clean end.
    let (chunks, received) = mpsc::channel::<std::io::Result<Bytes>>(64);
    let mut received = received;
    let reader = SyncIoBridge::new(StreamReader::new(futures_util::stream::poll_fn(move |cx| {
        received.poll_recv(cx)
    })));
    let principal = super::access::current();
    let checker =
        crate::replication::background::run("qrlaunch-import-check", move || check_lines(reader, spool, &principal));
    let idle = state.options.body_timeout;
    let mut failure = None;
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                failure = Some(ApiError::new(
                    ErrorCode::Timeout,
                    format!("no part of the body arrived for {idle:?}; nothing was imported"),
                ));
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if chunks.send(Ok(data)).await.is_err() {
                        break;
                    }
                }
            }
            Ok(Some(Err(e))) => {
                failure = Some(ApiError::bad_request(format!(
                    "reading the body failed: {e}; nothing was imported"
                )));
                break;
            }
            Ok(None) => break,
        }
    }
    if failure.is_some() {
        let _ = chunks.send(Err(std::io::Error::other("the body ended early"))).await;
    }
    drop(chunks);
    let checked = checker
        .await
        .ok_or_else(|| ApiError::internal("the import check stopped unexpectedly"))?;
    match (checked, failure) {
        (_, Some(failure)) => Err(failure),
        (Ok(checked), None) => Ok(checked),
        (Err(Unchecked::Aborted), None) => Err(ApiError::bad_request("the body ended early; nothing was imported")),
        (Err(Unchecked::Spool(e)), None) => Err(ApiError::new(
            ErrorCode::InsufficientStorage,
            format!("cannot spool the import: {e}; nothing was imported"),
        )),
    }
}

/// The checking thread: reads the body, writes it to the spool and
/// validates every line with the one table-file reader.
fn check_lines(
    body: impl Read,
    spool: std::fs::File,
    principal: &super::access::Principal,
) -> Result<Checked, Unchecked> {
    let mut tee = Tee {
        body,
        aborted: false,
        spool,
        spool_error: None,
    };
    let mut errors = Vec::new();
    let mut error_count = 0;
    let mut sample = Vec::new();
    let mut entries = 0;
    let lines = {
        let mut reader = Reader::new(BufReader::with_capacity(256 * 1024, &mut tee));
        loop {
            match reader.next_item() {
                Ok(None) => break,
                Ok(Some(Ok((line, item)))) if !principal.is_admin() && !principal.covers(&stand_in(&item)) => {
                    error_count += 1;
                    if errors.len() < MAX_REPORTED {
                        errors.push(LineErrorBody {
                            line,
                            field: Some("scope".into()),
                            message: format!("{} is outside this key's scopes", describe(&item)),
                        });
                    }
                }
                Ok(Some(Ok((_, crate::model::table_file::Item::Entry(entry))))) => {
                    entries += 1;
                    if sample.len() < WARNING_SAMPLE
                        && matches!(
                            entry,
                            crate::model::domain::Entry::Code(_) | crate::model::domain::Entry::Rule(_)
                        )
                    {
                        sample.push(entry);
                    }
                }
                Ok(Some(Ok(_))) => entries += 1,
                Ok(Some(Err(bad))) => {
                    error_count += 1;
                    if errors.len() < MAX_REPORTED {
                        errors.push(LineErrorBody {
                            line: bad.line,
                            field: bad.problem.field().map(str::to_string),
                            message: bad.problem.message(),
                        });
                    }
                }
                Err(_) => break,
            }
        }
        reader.lines()
    };
    if let Some(e) = tee.spool_error.take() {
        return Err(Unchecked::Spool(e));
    }
    if tee.aborted {
        return Err(Unchecked::Aborted);
    }
    let mut spool = tee.spool;
    spool.flush().and_then(|()| spool.rewind()).map_err(Unchecked::Spool)?;
    Ok(Checked {
        lines,
        entries,
        errors,
        error_count,
        spool,
        sample,
    })
}

/// For a key with scopes: every line that names an entry that exists must
/// name one the key reaches, or an upsert would replace an entry outside
/// its scopes (`422`, the lines named). One read per named line, so a
/// scoped import is slower than an admin's; the spool is rewound for the
/// write.
async fn require_existing_covered(
    state: &AdminState,
    principal: &super::access::Principal,
    spool: std::fs::File,
) -> Result<std::fs::File, ApiError> {
    let reading = spool
        .try_clone()
        .map_err(|e| ApiError::internal(format!("reading the spooled import: {e}")))?;
    let keys = tokio::task::spawn_blocking(move || {
        spooled_lines(reading)
            .filter_map(|line| match line {
                Ok(ImportLine {
                    line,
                    item: crate::model::table_file::Item::Entry(entry),
                }) => Some(Ok((line, entry.key()))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut errors = Vec::new();
    let mut error_count = 0;
    for (line, key) in keys {
        if let Some(stored) = state.writer.store().get(&key).await? {
            if !principal.covers(&stored.entry) {
                error_count += 1;
                if errors.len() < MAX_REPORTED {
                    errors.push(LineErrorBody {
                        line,
                        field: Some("scope".into()),
                        message: format!(
                            "{} {:?} exists and is outside this key's scopes",
                            stored.entry.kind().as_str(),
                            key.as_str()
                        ),
                    });
                }
            }
        }
    }
    if error_count > 0 {
        return Err(ApiError::lines(
            format!("{error_count} bad line(s); nothing was imported"),
            errors,
        ));
    }
    let mut spool = spool;
    spool
        .rewind()
        .map_err(|e| ApiError::internal(format!("reading the spooled import: {e}")))?;
    Ok(spool)
}

/// The entry a line makes, for the scope check: a line that asks for a
/// generated code is checked with a stand-in code (scopes do not look at
/// the code).
fn stand_in(item: &crate::model::table_file::Item) -> Entry {
    match item {
        crate::model::table_file::Item::Entry(entry) => entry.clone(),
        crate::model::table_file::Item::Generate(line) => {
            let mut probe = line.clone();
            probe.code = Some("generated".into());
            // Checked by the reader already; a failure cannot happen, and
            // an entry no key covers would be refused.
            probe.validate().unwrap_or_else(|_| {
                Entry::Host(crate::model::domain::HostSettings {
                    host: "invalid".parse().expect("a valid host"),
                    unmatched: crate::model::domain::Unmatched::NotFound,
                })
            })
        }
    }
}

fn describe(item: &crate::model::table_file::Item) -> String {
    match item {
        crate::model::table_file::Item::Entry(entry) => {
            format!("{} {:?}", entry.kind().as_str(), entry.key().as_str())
        }
        crate::model::table_file::Item::Generate(_) => "a code to generate".into(),
    }
}

/// The spooled, checked lines, read again for the store's transaction.
fn spooled_lines(spool: std::fs::File) -> ImportSource {
    let mut reader = Reader::new(BufReader::with_capacity(256 * 1024, spool));
    Box::new(std::iter::from_fn(move || match reader.next_item() {
        Ok(None) => None,
        Ok(Some(Ok((line, item)))) => Some(Ok(ImportLine { line, item })),
        Ok(Some(Err(bad))) => Some(Err(StoreError::Failed(format!("the spooled import changed: {bad}")))),
        Err(e) => Some(Err(StoreError::Failed(format!("reading the spooled import: {e}")))),
    }))
}

/// Reads the body and writes everything read to the spool as well.
struct Tee<R> {
    body: R,
    /// The body did not arrive whole.
    aborted: bool,
    spool: std::fs::File,
    spool_error: Option<std::io::Error>,
}

impl<R: Read> Read for &mut Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.body.read(buf).inspect_err(|_| self.aborted = true)?;
        if self.spool_error.is_none() {
            if let Err(e) = self.spool.write_all(&buf[..n]) {
                self.spool_error = Some(e);
            }
        }
        if self.spool_error.is_some() {
            return Err(std::io::Error::other("the spool cannot be written"));
        }
        Ok(n)
    }
}

/// Streams the whole table as NDJSON (codes, rules, hosts, files), as of
/// one moment. A client that stops reading for the body deadline is cut
/// off, which frees the database connection the export holds.
#[utoipa::path(get, path = "/admin/v1/export", tag = "transfer",
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 503, body = ErrorBody)))]
pub async fn export(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let permit = state
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::unavailable("too many exports are running; try again when one has finished"))?;
    let (entries_tx, entries_rx) = mpsc::channel::<Entry>(1024);
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let store = state.writer.store().clone();
    let stall = state.options.body_timeout;
    let abandoned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gave_up = abandoned.clone();
    // Only what the key reaches (an admin key: everything).
    let principal = super::access::current();
    tokio::spawn(async move {
        let _permit = permit;
        let relay_tx = body_tx.clone();
        // Owns the receiver: when it gives up, the store's export sees the
        // channel closed and stops, releasing its database connection.
        let relay = async move {
            let mut entries_rx = entries_rx;
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let entry = entries_rx.recv().await;
                if let Some(entry) = entry.as_ref().filter(|e| principal.covers(e)) {
                    table_file::write_line(&mut buf, entry);
                }
                let flush = entry.is_none() || buf.len() >= 60 * 1024 || entries_rx.is_empty();
                if flush && !buf.is_empty() {
                    let chunk = Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(64 * 1024)));
                    if !send_or_stall(&relay_tx, Ok(chunk), stall).await {
                        tracing::warn!(?stall, "export client stopped reading; export abandoned");
                        gave_up.store(true, std::sync::atomic::Ordering::Release);
                        return false;
                    }
                }
                if entry.is_none() {
                    return true;
                }
            }
        };
        let (exported, relayed) = tokio::join!(store.export(entries_tx), relay);
        if let Err(error) = exported {
            tracing::error!(%error, "export failed part-way");
            if relayed {
                // An error frame makes hyper cut the response: the client
                // sees a broken transfer, not a short table.
                let _ = body_tx.send(Err(std::io::Error::other(error.to_string()))).await;
            }
        }
    });
    let stream = futures_util::stream::unfold((body_rx, abandoned), |(mut rx, abandoned)| async move {
        match rx.recv().await {
            Some(item) => Some((item, (rx, abandoned))),
            None if abandoned.swap(false, std::sync::atomic::Ordering::AcqRel) => {
                Some((Err(std::io::Error::other("the export was abandoned")), (rx, abandoned)))
            }
            None => None,
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

async fn send_or_stall(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    item: Result<Bytes, std::io::Error>,
    stall: Duration,
) -> bool {
    tx.send_timeout(item, stall).await.is_ok()
}
