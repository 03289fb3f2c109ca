//! `POST /admin/v1/ingest`: what a cache in front answered, as scan counts
//! (see [`crate::edge::ingest`] for who counts what).
//!
//! Bounded: a body of at most [`MAX_BODY`] (after gzip, if it came
//! compressed) and [`MAX_LINES`] lines; one batch is counted at a time,
//! on an idle-class thread (so scans never wait for it), and at most
//! [`MAX_WAITING`] more wait their turn: past that the answer is `429`
//! with `Retry-After`, and the sender retries. Counts join this node's
//! pending counts and reach the store with its next flush.

use super::error::{ApiError, ErrorCode};
use super::AdminState;
use crate::edge::api::{ErrorBody, IngestAnswer, LineErrorBody};
use crate::edge::ingest::{Context, Skip, Tally};
use crate::replication::stats::ScanCounts;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use axum::Json;
use bytes::Bytes;
use std::io::Read;

/// Largest batch, in bytes once decompressed.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Most lines in one batch.
pub const MAX_LINES: usize = 200_000;
/// Batches that may wait while one is counted.
pub const MAX_WAITING: usize = 4;

/// Counts a batch of cache log lines, one JSON object a line.
#[utoipa::path(post, path = "/admin/v1/ingest", tag = "stats",
    request_body(content = crate::edge::ingest::LogLine, content_type = "application/x-ndjson",
        description = "One request a line. `Content-Encoding: gzip` is accepted."),
    responses((status = 200, body = IngestAnswer), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn ingest(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestAnswer>, ApiError> {
    let Some(counts) = state.counts.clone() else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this node counts no scans (--no-stats): nothing was counted",
        ));
    };
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    // NDJSON by any of its names; CDN log pushes are not always labelled.
    if !matches!(
        content_type.as_deref(),
        None | Some(
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/json" | "text/plain"
        )
    ) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send log lines with `Content-Type: application/x-ndjson`, one JSON object a line",
        ));
    }
    let gzip = match headers.get(CONTENT_ENCODING).map(|v| v.as_bytes().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == b"gzip" => true,
        Some(v) if v == b"identity" => false,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "`Content-Encoding` must be gzip or none",
            ))
        }
    };
    // A turn to wait in, or a 429 now.
    let Ok(waiting) = state.ingest_queue.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            ErrorCode::Busy,
            "other batches are being counted; retry in a second",
        ));
    };
    let bytes = super::body::read(body, MAX_BODY, state.options.body_timeout).await?;
    let _turn = state.ingest_turn.acquire().await;
    drop(waiting);
    let (counted, into) = (state.clone(), counts.clone());
    // The batch's counts join the pending ones on the counting thread too:
    // a batch has as many as it has distinct keys.
    let tally = crate::replication::background::run("qrlaunch-ingest", move || {
        let mut tally = count(&counted, &into, &bytes, gzip)?;
        into.add_all(std::mem::take(&mut tally.counts));
        Ok::<_, ApiError>(tally)
    })
    .await
    .ok_or_else(|| ApiError::internal("the counting thread could not start"))??;
    state.metrics.ingested(tally.counted, tally.skipped_total());
    Ok(Json(answer(tally)))
}

/// Counts a whole batch, or refuses it whole (too many lines, bad gzip).
fn count(state: &AdminState, counts: &ScanCounts, bytes: &Bytes, gzip: bool) -> Result<Tally, ApiError> {
    let inflated;
    let body: &[u8] = if gzip {
        let mut out = Vec::new();
        let read = flate2::read::MultiGzDecoder::new(&bytes[..])
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut out);
        if read.is_err() {
            return Err(ApiError::bad_request("the body is not valid gzip: nothing was counted"));
        }
        if out.len() > MAX_BODY {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "the body is over {} MiB once decompressed: nothing was counted",
                    MAX_BODY >> 20
                ),
            ));
        }
        inflated = out;
        &inflated
    } else {
        bytes
    };
    let lines = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count();
    if lines > MAX_LINES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("{lines} lines; at most {MAX_LINES} a batch: nothing was counted"),
        ));
    }
    let snapshot = std::sync::Arc::clone(&*state.writer.replica().load());
    let days = &state.options.days;
    let now = crate::replication::store::now_ms() / 1000;
    let cx = Context {
        snapshot: &snapshot,
        code_hosts: &state.options.code_hosts,
        days,
        source: state.options.count_source,
        oldest_day: days.day_of(now) - state.options.keep_days,
        now,
        counts,
    };
    let mut tally = Tally::default();
    for line in body.split(|&b| b == b'\n') {
        tally.add_json(&cx, line);
    }
    Ok(tally)
}

fn answer(tally: Tally) -> IngestAnswer {
    IngestAnswer {
        lines: tally.lines,
        counted: tally.counted,
        skipped: tally.skipped_total(),
        skipped_by: Skip::ALL
            .into_iter()
            .map(|s| (s.as_str().to_string(), tally.skipped.get(&s).copied().unwrap_or(0)))
            .collect(),
        errors: tally
            .errors
            .into_iter()
            .map(|(line, message)| LineErrorBody {
                line: line as usize,
                field: None,
                message,
            })
            .collect(),
    }
}
