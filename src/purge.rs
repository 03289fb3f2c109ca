//! Purges: after this node's table has applied *and published* a change,
//! the caches in front (`--purge-url`, repeatable) are told to drop the
//! answers the change made stale, by their surrogate keys (see
//! [`crate::http::cache`]).
//!
//! A purge is sent only once the change is live on the node that sends it:
//! a scan that misses the cache between the purge and the change going live
//! would be answered from the old table and cached again. In a fleet behind
//! one cache, every node purges after its own apply (purges are idempotent),
//! so the cache is purged again once the last node has the change, and a
//! lagging node cannot refill it with the old answer for long.
//!
//! Purges go out from a task of their own, in batches, with retries and
//! backoff; they never hold up a change or a scan. When the queue is full,
//! a flag asks the sender to purge everything instead (nothing is lost:
//! everything includes whatever was dropped). Outcomes are counted in
//! `qrlaunch_purges_total{outcome}`, and `qrlaunch_purge_position` says up
//! to which change purges went out. The client follows no redirect (a
//! `--purge-header` secret must not travel to whatever host a `30x` names),
//! and URLs are logged without their user info.

use crate::metrics::{Metrics, PurgeOutcome};
use crate::store::Position;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a cache is asked to purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PurgeStyle {
    /// Varnish with vmod_xkey: `PURGE /` with `xkey-purge: KEYS`
    /// (`deploy/varnish/qrlaunch.vcl`).
    Xkey,
    /// Fastly-style: `POST URL` with `Surrogate-Key: KEYS` (add the API
    /// token with `--purge-header`).
    SurrogateKey,
}

/// Keys per purge request.
const MAX_KEYS: usize = 256;
/// Attempts per purge before it counts as failed.
const ATTEMPTS: u32 = 4;
/// Batches waiting to be sent; past this, everything is purged instead.
const QUEUE: usize = 1024;

/// The keys one applied position made stale.
#[derive(Debug)]
struct Batch {
    position: Position,
    keys: BTreeSet<String>,
}

/// Set when a batch could not be queued: the sender purges everything.
#[derive(Debug, Default)]
struct Overflow {
    flag: AtomicBool,
    /// The newest position whose batch was dropped.
    position: AtomicI64,
}

/// Where and how purges are sent.
#[derive(Debug, Clone)]
pub struct PurgeTargets {
    pub urls: Vec<String>,
    pub style: PurgeStyle,
    pub headers: Vec<(String, String)>,
}

/// The handle the follower tells about applied changes.
#[derive(Clone)]
pub struct Purger {
    queue: mpsc::Sender<Batch>,
    overflow: Arc<Overflow>,
}

impl Purger {
    /// Starts the sender task for `targets`.
    pub fn start(targets: PurgeTargets, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Purger {
        let (queue, batches) = mpsc::channel(QUEUE);
        let overflow = Arc::new(Overflow::default());
        tokio::spawn(run(targets, metrics, batches, overflow.clone(), shutdown));
        Purger { queue, overflow }
    }

    /// Asks for `keys` to be purged now that `position` is live here,
    /// without waiting. When the queue is full, everything is purged
    /// instead, later.
    pub fn purge(&self, position: Position, keys: BTreeSet<String>) {
        if keys.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(dropped)) = self.queue.try_send(Batch { position, keys }) {
            self.overflow.position.fetch_max(dropped.position, Ordering::Relaxed);
            self.overflow.flag.store(true, Ordering::Release);
        }
    }

    /// Asks for everything to be purged (a rebuild: what changed is unknown).
    pub fn purge_all(&self, position: Position) {
        self.purge(position, BTreeSet::from([crate::http::cache::ALL.to_string()]));
    }
}

async fn run(
    targets: PurgeTargets,
    metrics: Arc<Metrics>,
    mut batches: mpsc::Receiver<Batch>,
    overflow: Arc<Overflow>,
    shutdown: CancellationToken,
) {
    let client = match client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the purge client; purges are off");
            return;
        }
    };
    loop {
        let first = tokio::select! {
            next = batches.recv() => match next {
                Some(first) => first,
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        // Whatever else is queued goes in the same requests.
        let mut position = first.position;
        let mut keys = first.keys;
        while let Ok(more) = batches.try_recv() {
            position = position.max(more.position);
            keys.extend(more.keys);
        }
        // Checked after draining: a batch dropped while the queue was full
        // leaves at least the queue's content to receive, so the flag is
        // always seen by this loop.
        if overflow.flag.swap(false, Ordering::Acquire) {
            metrics.purge_overflow();
            tracing::warn!("the purge queue was full: purging everything");
            position = position.max(overflow.position.load(Ordering::Relaxed));
            keys = BTreeSet::from([crate::http::cache::ALL.to_string()]);
        }
        if keys.contains(crate::http::cache::ALL) {
            keys = BTreeSet::from([crate::http::cache::ALL.to_string()]);
        }
        let keys: Vec<String> = keys.into_iter().collect();
        for chunk in keys.chunks(MAX_KEYS) {
            let joined = chunk.join(" ");
            for url in &targets.urls {
                let outcome = send(&client, url, targets.style, &targets.headers, &joined).await;
                metrics.purge(outcome);
            }
        }
        metrics.purge_position(position);
    }
}

/// The purge client: short timeouts, and no redirects (a `--purge-header`
/// secret must not travel to whatever host a `30x` names).
fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// One purge with retries; its outcome.
async fn send(
    client: &reqwest::Client,
    url: &str,
    style: PurgeStyle,
    headers: &[(String, String)],
    keys: &str,
) -> PurgeOutcome {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let request = match style {
            PurgeStyle::Xkey => client
                .request(reqwest::Method::from_bytes(b"PURGE").expect("a valid method"), url)
                .header("xkey-purge", keys),
            PurgeStyle::SurrogateKey => client.post(url).header("surrogate-key", keys),
        };
        let request = headers
            .iter()
            .fold(request, |r, (k, v)| r.header(k.as_str(), v.as_str()));
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                return if attempt == 1 {
                    PurgeOutcome::Ok
                } else {
                    PurgeOutcome::Retried
                };
            }
            Ok(response) => tracing::warn!(
                url = crate::redact::url(url),
                status = %response.status(),
                attempt,
                "purge refused"
            ),
            Err(error) => tracing::warn!(
                url = crate::redact::url(url),
                error = %error.without_url(),
                attempt,
                "purge failed"
            ),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 4;
        }
    }
    PurgeOutcome::Failed
}

/// `Name: value` of `--purge-header`.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("`{name}` is not a header name"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A purge endpoint that holds its first request until `release`, then
    /// answers every request `200` and records its keys.
    async fn stalled_endpoint(
        release: tokio::sync::oneshot::Receiver<()>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen, keys) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut release = Some(release);
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let hold = release.take();
                tokio::spawn(async move {
                    let mut held = hold;
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = stream.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                            buffer.drain(..end + 4);
                            if let Some(release) = held.take() {
                                let _ = release.await;
                            }
                            let keys = head
                                .lines()
                                .find_map(|l| l.strip_prefix("xkey-purge:"))
                                .unwrap_or_default()
                                .trim()
                                .to_string();
                            let _ = seen.send(keys);
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                        }
                    }
                });
            }
        });
        (url, keys)
    }

    #[tokio::test]
    async fn a_purge_follows_no_redirect() {
        // Where a redirect would lead: it must never be asked.
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("http://{}/", elsewhere.local_addr().unwrap());
        let redirecting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", redirecting.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = redirecting.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let answer = format!("HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        let client = client().unwrap();
        let headers = vec![("Qrlaunch-Purge-Token".to_string(), "secret".to_string())];
        let outcome = send(&client, &url, PurgeStyle::Xkey, &headers, "qrlaunch").await;
        assert_eq!(outcome, PurgeOutcome::Failed, "a 302 is not a purge");
        let asked = tokio::time::timeout(Duration::from_millis(200), elsewhere.accept()).await;
        assert!(asked.is_err(), "the secret followed the redirect");
    }

    #[tokio::test]
    async fn a_full_queue_still_purges_everything() {
        let (release, held) = tokio::sync::oneshot::channel();
        let (url, mut seen) = stalled_endpoint(held).await;
        let metrics = Arc::new(Metrics::prometheus());
        let shutdown = CancellationToken::new();
        let targets = PurgeTargets {
            urls: vec![url],
            style: PurgeStyle::Xkey,
            headers: Vec::new(),
        };
        let purger = Purger::start(targets, metrics.clone(), shutdown.clone());
        purger.purge(1, BTreeSet::from(["c-first".to_string()]));
        // The sender is now stuck on the first purge; fill the queue past
        // its bound with 1,300 changes of their own.
        tokio::time::timeout(Duration::from_secs(10), async {
            while purger.queue.capacity() < QUEUE {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the first purge was taken");
        for position in 2..=1301 {
            purger.purge(position, BTreeSet::from([format!("c-code{position}")]));
        }
        let _ = release.send(());
        let mut requests = Vec::new();
        let everything = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(keys) = seen.recv().await {
                requests.push(keys.clone());
                if keys == crate::http::cache::ALL {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(everything, "no purge of everything after an overflow: {requests:?}");
        assert!(requests.len() <= 3, "{} requests", requests.len());
        let text = metrics.render().unwrap();
        assert!(text.contains("qrlaunch_purge_overflows_total 1"), "{text}");
        tokio::time::timeout(Duration::from_secs(5), async {
            while !metrics.render().unwrap().contains("qrlaunch_purge_position 1301") {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the purge position reaches the last change");
        shutdown.cancel();
    }
}
