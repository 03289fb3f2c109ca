//! `qrlaunch ingest`: a cache's log on standard input, sent to `POST
//! /admin/v1/ingest` in batches.
//!
//! Two threads: one reads standard input as fast as it comes (a cache
//! writing its log must never wait for us) into a bounded buffer, dropping
//! and counting lines when the buffer is full; this one takes batches off
//! the buffer and sends them, retrying while the admin API is down, busy
//! (`429`) or failing (`5xx`). At the end it prints what happened as one
//! JSON object, and fails if any line was dropped or given up.

use super::client::{AdminClient, CliError};
use crate::edge::api::IngestAnswer;
use crate::edge::config::{IngestArgs, LogFormat};
use crate::edge::ingest::{from_varnishncsa, MAX_LINE};
use reqwest::Method;
use serde::Serialize;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `qrlaunch ingest` prints when its input ends.
#[derive(Debug, Default, Serialize)]
struct Summary {
    /// Lines read from standard input.
    read: u64,
    /// Lines the admin API took (counted or skipped with a reason).
    sent: u64,
    counted: u64,
    skipped: u64,
    skipped_by: std::collections::BTreeMap<String, u64>,
    /// Lines that were not in the format (`--format varnishncsa`) or too long.
    unreadable: u64,
    /// Lines dropped because the buffer was full.
    dropped: u64,
    /// Lines of batches the admin API did not take within --retry-for.
    given_up: u64,
}

/// Reads standard input until it ends, sending batches as it goes.
pub fn ingest(client: &AdminClient, args: &IngestArgs) -> Result<(), CliError> {
    run(client, args, std::io::stdin())
}

fn run(client: &AdminClient, args: &IngestArgs, input: impl Read + Send + 'static) -> Result<(), CliError> {
    let (tx, rx) = sync_channel::<Vec<u8>>(args.buffer_lines as usize);
    let read = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let too_long = Arc::new(AtomicU64::new(0));
    let reader = {
        let (read, dropped, too_long) = (read.clone(), dropped.clone(), too_long.clone());
        std::thread::Builder::new()
            .name("qrlaunch-ingest-read".into())
            .spawn(move || {
                let mut input = BufReader::with_capacity(256 * 1024, input);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    // Bounded: a line longer than MAX_LINE is read past,
                    // not held.
                    match (&mut input).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if line.len() > MAX_LINE && !line.ends_with(b"\n") {
                        let mut rest = Vec::new();
                        let _ = input.read_until(b'\n', &mut rest);
                        too_long.fetch_add(1, Ordering::Relaxed);
                        read.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if line.trim_ascii().is_empty() {
                        continue;
                    }
                    read.fetch_add(1, Ordering::Relaxed);
                    match tx.try_send(std::mem::take(&mut line)) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => break,
                    }
                }
            })
            .map_err(|e| CliError::Answer(format!("cannot start the reading thread: {e}")))?
    };
    let mut summary = Summary::default();
    let result = send_all(client, args, &rx, &mut summary);
    drop(rx);
    let _ = reader.join();
    summary.read = read.load(Ordering::Relaxed);
    summary.dropped = dropped.load(Ordering::Relaxed);
    summary.unreadable += too_long.load(Ordering::Relaxed);
    println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    result?;
    if summary.dropped > 0 || summary.given_up > 0 {
        return Err(CliError::Usage {
            field: "ingest".into(),
            message: format!(
                "{} line(s) dropped (the buffer of --buffer-lines was full) and {} given up (the admin API did not take them within --retry-for): those scans are not counted",
                summary.dropped, summary.given_up
            ),
        });
    }
    Ok(())
}

/// Takes batches off the buffer and sends them until the input ends.
fn send_all(
    client: &AdminClient,
    args: &IngestArgs,
    rx: &Receiver<Vec<u8>>,
    summary: &mut Summary,
) -> Result<(), CliError> {
    let mut body = Vec::new();
    let mut lines = 0u32;
    let mut first_at: Option<Instant> = None;
    let mut open = true;
    while open || lines > 0 {
        let wait = first_at.map_or(Duration::from_secs(3600), |t| {
            args.batch_wait.saturating_sub(t.elapsed())
        });
        if open {
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    if append(&mut body, &line, args.format) {
                        lines += 1;
                        first_at.get_or_insert_with(Instant::now);
                    } else {
                        summary.unreadable += 1;
                    }
                    if lines < args.batch_lines {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        if lines > 0 {
            send(client, args, std::mem::take(&mut body), lines, summary)?;
            lines = 0;
            first_at = None;
        }
    }
    Ok(())
}

/// Adds one input line to a batch as NDJSON; `false` when it is not in
/// the format.
fn append(body: &mut Vec<u8>, line: &[u8], format: LogFormat) -> bool {
    match format {
        LogFormat::Ndjson => {
            body.extend_from_slice(line.trim_ascii_end());
        }
        LogFormat::Varnishncsa => {
            let Ok(text) = std::str::from_utf8(line) else {
                return false;
            };
            let Ok(parsed) = from_varnishncsa(text) else {
                return false;
            };
            if serde_json::to_writer(&mut *body, &parsed).is_err() {
                return false;
            }
        }
    }
    body.push(b'\n');
    true
}

/// Sends one batch, retrying what may pass later.
fn send(
    client: &AdminClient,
    args: &IngestArgs,
    body: Vec<u8>,
    lines: u32,
    summary: &mut Summary,
) -> Result<(), CliError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        let request = client
            .request(Method::POST, "/admin/v1/ingest")
            .header("content-type", "application/x-ndjson")
            .body(body.clone());
        match client.json::<IngestAnswer>(request) {
            Ok(answer) => {
                summary.sent += answer.lines;
                summary.counted += answer.counted;
                summary.skipped += answer.skipped;
                for (why, n) in answer.skipped_by {
                    *summary.skipped_by.entry(why).or_default() += n;
                }
                for error in answer.errors.iter().take(3) {
                    eprintln!("qrlaunch: ingest: a line was malformed: {}", error.message);
                }
                return Ok(());
            }
            // A wrong token or a node that counts nothing: no retry helps.
            Err(
                e @ CliError::Api {
                    status: 401 | 403 | 409 | 415,
                    ..
                },
            ) => return Err(e),
            Err(CliError::Api { status, message, .. }) if !(status == 408 || status == 429 || status >= 500) => {
                eprintln!("qrlaunch: ingest: a batch of {lines} line(s) was refused (HTTP {status}): {message}");
                summary.given_up += u64::from(lines);
                return Ok(());
            }
            Err(error) => {
                if started.elapsed() + pause > args.retry_for {
                    eprintln!(
                        "qrlaunch: ingest: giving up a batch of {lines} line(s) after {:?}: {error}",
                        args.retry_for
                    );
                    summary.given_up += u64::from(lines);
                    return Ok(());
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}
