//! Accept loop, connection limits and graceful shutdown, for every listener.
//!
//! One task per connection runs hyper's HTTP/1.1 state machine with
//! keep-alive, a header read timeout (a slow client cannot hold a
//! connection open by trickling its request head) and a cap on the request
//! head's size. The number of connections is capped too, so memory held by
//! partial requests is bounded by `max_connections × max_header_bytes` (plus
//! hyper's fixed buffers) whatever clients do.
//!
//! Past the cap, a small *reserve* of connections is still served, one
//! request each with a short deadline, so health checks keep answering
//! while an attacker holds every normal slot; the service decides what a
//! reserve connection may do ([`Mode::Reserve`]). Past the reserve, a
//! connection is closed at once and counted as refused.
//!
//! On shutdown the listener is closed first, then every connection is asked
//! to finish its in-flight request and close; whatever has not finished
//! after the grace period is dropped.

use crate::metrics::{Listener, Metrics};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::error::Error as StdError;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Per-listener settings.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// How long a client may take to send a complete request head; also
    /// how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// How long in-flight requests get to finish once shutdown starts.
    pub shutdown_grace: Duration,
    /// Connections served normally at once.
    pub max_connections: usize,
    /// Connections served beyond that, one request each (health checks).
    pub reserve: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(8),
            max_connections: 4096,
            reserve: 32,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// How a connection is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Beyond the connection cap: one request, short deadline; the service
    /// should answer only what must always answer (health checks).
    Reserve,
}

/// hyper's smallest allowed read buffer.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Serves `listener` until `shutdown` completes, then drains connections.
/// `make_service` builds each connection's service from the peer address
/// and the mode it is served in. Returns whether every connection finished
/// within the grace period.
pub async fn serve<S, B>(
    listener: TcpListener,
    make_service: impl Fn(IpAddr, Mode) -> S,
    options: ConnectionOptions,
    metrics: Arc<Metrics>,
    label: Listener,
    shutdown: impl Future<Output = ()>,
) -> bool
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(options.max_header_bytes.max(MIN_HEADER_BYTES));
    let mut reserve_http = http.clone();
    reserve_http
        .header_read_timeout(options.header_read_timeout.min(Duration::from_secs(1)))
        .keep_alive(false);
    let normal = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let reserve = Arc::new(Semaphore::new(options.reserve));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning on the error.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let (permit, mode) = match normal.clone().try_acquire_owned() {
                    Ok(permit) => (permit, Mode::Normal),
                    Err(_) => match reserve.clone().try_acquire_owned() {
                        Ok(permit) => (permit, Mode::Reserve),
                        Err(_) => {
                            metrics.connection_refused(label);
                            drop(stream);
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let service = make_service(peer.ip(), mode);
                let builder = if mode == Mode::Normal { &http } else { &reserve_http };
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                let metrics = metrics.clone();
                metrics.connection_opened(label);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                    metrics.connection_closed(label);
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        listener = label.as_str(),
        "shutting down: listener closed, finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(grace = ?options.shutdown_grace, "connections still open after the grace period; closing them");
            false
        }
    }
}

/// Raises the open-files soft limit to the hard limit and returns it: the
/// connection caps are derived from what the process may open.
pub fn raise_open_files_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 1024;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    1024
}
