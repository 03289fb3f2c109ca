//! Accept loop, connection limits and graceful shutdown, for every listener.
//!
//! One task per connection runs hyper's HTTP/1.1 state machine with
//! keep-alive, a header read timeout (a slow client cannot hold a
//! connection open by trickling its request head) and a cap on the request
//! head's size. The number of connections is capped too, so memory held by
//! partial requests is bounded by `max_connections × max_header_bytes` (plus
//! hyper's fixed buffers) whatever clients do.
//!
//! One client address may hold at most `max_per_ip` of them (an IPv6
//! client is counted by its /64, what one subscriber usually gets), so one
//! client cannot take every slot from everyone else; trusted proxies (a
//! cache in front carries everyone's scans) are not limited.
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

use crate::replication::metrics::{Listener, Metrics, Refusal};
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
    /// Connections one client address may hold at once (`None`: no limit).
    pub max_per_ip: Option<usize>,
    /// Peers the per-address limit does not apply to (trusted proxies).
    pub per_ip_exempt: Vec<ipnet::IpNet>,
    /// Serve TLS with this certificate (the handshake must finish within
    /// the header read timeout); `None`: plain HTTP.
    pub tls: Option<Arc<super::tls::TlsFiles>>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(8),
            max_connections: 4096,
            reserve: 32,
            max_header_bytes: 16 * 1024,
            max_per_ip: None,
            per_ip_exempt: Vec::new(),
            tls: None,
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
    let per_ip = PerIp::new(options.max_per_ip, options.per_ip_exempt.clone());
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
                let Some(held) = per_ip.admit(peer.ip()) else {
                    metrics.connection_refused(label, Refusal::PerIp);
                    drop(stream);
                    continue;
                };
                let (permit, mode) = match normal.clone().try_acquire_owned() {
                    Ok(permit) => (permit, Mode::Normal),
                    Err(_) => match reserve.clone().try_acquire_owned() {
                        Ok(permit) => (permit, Mode::Reserve),
                        Err(_) => {
                            metrics.connection_refused(label, Refusal::Capacity);
                            drop(stream);
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let service = make_service(peer.ip(), mode);
                let builder = if mode == Mode::Normal { &http } else { &reserve_http };
                let metrics = metrics.clone();
                metrics.connection_opened(label);
                if let Some(tls) = &options.tls {
                    let handshake = tls.acceptor().accept(stream);
                    let deadline = match mode {
                        Mode::Normal => options.header_read_timeout,
                        Mode::Reserve => options.header_read_timeout.min(Duration::from_secs(1)),
                    };
                    let (builder, watcher) = (builder.clone(), graceful.watcher());
                    tokio::spawn(async move {
                        match tokio::time::timeout(deadline, handshake).await {
                            Ok(Ok(stream)) => {
                                let connection = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                                if let Err(error) = connection.await {
                                    tracing::debug!(%error, %peer, "connection ended with an error");
                                }
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed");
                                metrics.connection_refused(label, Refusal::TlsHandshake);
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake not finished in time");
                                metrics.connection_refused(label, Refusal::TlsHandshake);
                            }
                        }
                        metrics.connection_closed(label);
                        drop(permit);
                        drop(held);
                    });
                    continue;
                }
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                    metrics.connection_closed(label);
                    drop(permit);
                    drop(held);
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

/// Connections held per client address.
struct PerIp {
    limit: Option<usize>,
    exempt: Vec<ipnet::IpNet>,
    held: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
}

/// One connection counted against its address; uncounted when dropped.
struct Held {
    held: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    client: Option<IpAddr>,
}

impl PerIp {
    fn new(limit: Option<usize>, exempt: Vec<ipnet::IpNet>) -> PerIp {
        PerIp {
            limit,
            exempt,
            held: Arc::default(),
        }
    }

    /// Counts a connection from `peer`, or `None` when its address (or its
    /// IPv6 /64) holds the limit already. Once per connection, not per
    /// request.
    fn admit(&self, peer: IpAddr) -> Option<Held> {
        let unlimited = Held {
            held: self.held.clone(),
            client: None,
        };
        let Some(limit) = self.limit else {
            return Some(unlimited);
        };
        if super::forwarded::is_trusted(peer, &self.exempt) {
            return Some(unlimited);
        }
        let client = client_of(peer);
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Held {
            held: self.held.clone(),
            client: Some(client),
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(client) = self.client else { return };
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&client);
            }
        }
    }
}

/// The address a client is counted by: IPv4 as it is (also when mapped
/// into IPv6), IPv6 by its /64.
pub fn client_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
        v4 => v4,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_limit() {
        let limits = PerIp::new(Some(2), vec!["10.0.0.1/32".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let second = limits.admit(mapped).unwrap();
        assert!(limits.admit(a).is_none(), "the third connection of one address");
        assert!(limits.admit("192.0.2.2".parse().unwrap()).is_some(), "another address");
        let proxy: Vec<Held> = (0..5)
            .map(|_| limits.admit("10.0.0.1".parse().unwrap()).unwrap())
            .collect();
        assert_eq!(proxy.len(), 5, "a trusted proxy is not limited");
        drop(first);
        assert!(limits.admit(a).is_some(), "a closed connection frees its slot");
        drop(second);
        let v6: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let _k = (
            limits.admit(v6).unwrap(),
            limits.admit("2001:db8:1:2:bbbb::2".parse().unwrap()).unwrap(),
        );
        assert!(limits.admit("2001:db8:1:2::3".parse().unwrap()).is_none(), "one /64");
        assert!(
            limits.admit("2001:db8:1:3::3".parse().unwrap()).is_some(),
            "another /64"
        );
    }
}
