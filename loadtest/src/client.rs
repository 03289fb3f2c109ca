//! One keep-alive HTTP/1.1 connection sending pre-rendered requests.
//!
//! Requests are rendered to bytes once, before the run; a response is read
//! up to its head, parsed with `httparse`, and its `Content-Length` body
//! skipped. One request is in flight per connection (no pipelining).

use crate::pacing::{Gate, Schedule};
use crate::report::{ErrorKind, Tally};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request ready to send and the status it must get.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub bytes: Vec<u8>,
    pub expect: u16,
}

impl Prepared {
    /// A GET of `target` on `host`, with a `User-Agent` when one is given
    /// (qrlaunch answers each client class differently).
    pub fn get(host: &str, target: &str, user_agent: Option<&str>, expect: u16) -> Prepared {
        let bytes = match user_agent {
            Some(ua) => format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n\r\n"),
            None => format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        };
        Prepared {
            bytes: bytes.into_bytes(),
            expect,
        }
    }
}

/// How long one request may take before it counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long past the deadline an open-loop run may take to send what was
/// due before it.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Pacing of a connection.
#[derive(Clone)]
pub enum Pace {
    /// As fast as answers come back.
    Closed,
    /// Requests at their due times (open loop), this connection's share,
    /// released by the ticker through `gate`.
    Open {
        schedule: Schedule,
        connection: usize,
        gate: Arc<Gate>,
    },
}

/// Sends requests until `deadline` or until `budget` requests were taken
/// (shared by all connections); returns what it saw.
///
/// In open loop every request due before `deadline` is still sent after it
/// (a connection that fell behind drains its backlog, and those latencies
/// count) until [`DRAIN`] past it; what is left then counts as `unsent`.
pub async fn run_connection(
    addr: SocketAddr,
    requests: Arc<Vec<Prepared>>,
    offset: usize,
    pace: Pace,
    deadline: Instant,
    budget: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut j: u64 = 0;
    loop {
        let (index, started) = match &pace {
            Pace::Closed => {
                if Instant::now() >= deadline {
                    break;
                }
                (offset as u64 + j, None)
            }
            Pace::Open {
                schedule,
                connection,
                gate,
            } => {
                let i = schedule.index(*connection, j);
                let due = schedule.due(i);
                if due >= deadline {
                    break;
                }
                if Instant::now() >= deadline + DRAIN {
                    let left = (j..).take_while(|&j| schedule.due(schedule.index(*connection, j)) < deadline);
                    tally.errors_n(ErrorKind::Unsent, left.count() as u64);
                    break;
                }
                gate.wait_for(*connection, i).await;
                (i, Some(due))
            }
        };
        j += 1;
        if budget.fetch_sub(1, Ordering::Relaxed) == 0 {
            budget.store(0, Ordering::Relaxed);
            break;
        }
        let request = &requests[index as usize % requests.len()];
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    tally.error(ErrorKind::Connect);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let conn = stream.as_mut().expect("connected above");
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange(conn, &request.bytes, &mut buf)).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(status)) if status == request.expect => {
                tally.ok(done - started.unwrap_or(sent), done - sent);
            }
            Ok(Ok(_)) => tally.error(ErrorKind::Status),
            Ok(Err(kind)) => {
                tally.error(kind);
                stream = None;
            }
            Err(_) => {
                tally.error(ErrorKind::Timeout);
                stream = None;
            }
        }
    }
    tally
}

/// Writes one request and reads one response; returns its status.
async fn exchange(conn: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Result<u16, ErrorKind> {
    conn.write_all(request).await.map_err(|_| ErrorKind::Io)?;
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = response.code.ok_or(ErrorKind::Parse)?;
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .ok_or(ErrorKind::Parse)?;
                let total = head_len + length;
                while buf.len() < total {
                    read_more(conn, buf).await?;
                }
                return Ok(status);
            }
            Ok(httparse::Status::Partial) => read_more(conn, buf).await?,
            Err(_) => return Err(ErrorKind::Parse),
        }
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ErrorKind> {
    let mut chunk = [0u8; 4096];
    match conn.read(&mut chunk).await {
        Ok(0) | Err(_) => Err(ErrorKind::Io),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}
