//! Purges: after this node's table has applied *and published* a change,
//! the caches in front (`--purge-url`, repeatable) are told to drop the
//! answers the change made stale, by their surrogate keys (see
//! [`crate::edge::http::cache`]).
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

use crate::model::change::Position;
use crate::model::keys::SurrogateKey;
use crate::replication::metrics::{Metrics, PurgeOutcome};
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

/// Bytes of keys per purge request: Varnish refuses a request header over
/// `http_req_hdr_len` (8 KiB by default).
const MAX_KEY_BYTES: usize = 6 * 1024;
/// Attempts per purge before it counts as failed.
const ATTEMPTS: u32 = 4;
/// Batches waiting to be sent; past this, everything is purged instead.
const QUEUE: usize = 1024;
/// Every purge is sent once more this long after the first: a fetch that
/// was already on its way to the cache with the old answer when the first
/// purge arrived is stored after it, and only a later purge removes it.
const REPEAT_AFTER: Duration = Duration::from_secs(1);
/// After a purge failed, everything is purged when this much time passed.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The keys one applied position made stale.
#[derive(Debug)]
struct Batch {
    position: Position,
    keys: BTreeSet<SurrogateKey>,
}

/// Set when a batch could not be queued: the sender purges everything.
#[derive(Debug, Default)]
struct Overflow {
    flag: AtomicBool,
    /// The newest position whose batch was dropped.
    position: AtomicI64,
    /// Wakes the sender (its queue may be empty by then).
    wake: tokio::sync::Notify,
}

/// Where and how purges are sent.
#[derive(Clone)]
pub struct PurgeTargets {
    pub urls: Vec<String>,
    pub style: PurgeStyle,
    pub headers: Vec<(String, String)>,
    /// CA certificates trusted beside the platform's for `https://` URLs
    /// (`--ca-file`).
    pub roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for PurgeTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| crate::replication::redact::url(u)).collect();
        let headers: Vec<String> = self.headers.iter().map(|(name, _)| format!("{name}: ***")).collect();
        f.debug_struct("PurgeTargets")
            .field("urls", &urls)
            .field("style", &self.style)
            .field("headers", &headers)
            .field("roots", &self.roots.len())
            .finish()
    }
}

/// The handle the follower tells about applied changes.
#[derive(Clone)]
pub struct Purger {
    queue: mpsc::Sender<Batch>,
    overflow: Arc<Overflow>,
    /// How many times everything was purged at every URL.
    everything: tokio::sync::watch::Receiver<u64>,
}

impl Purger {
    /// Starts the sender task for `targets`.
    pub fn start(targets: PurgeTargets, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Purger {
        let (queue, batches) = mpsc::channel(QUEUE);
        let overflow = Arc::new(Overflow::default());
        let (purged_all, everything) = tokio::sync::watch::channel(0);
        let sender = Sender {
            targets,
            metrics,
            overflow: overflow.clone(),
            purged_all,
        };
        tokio::spawn(run(sender, batches, shutdown));
        Purger {
            queue,
            overflow,
            everything,
        }
    }

    /// Counts the purges of everything that every URL took: wait for it to
    /// pass its value from before [`Purger::purge_all`] to know that one
    /// was delivered.
    pub fn purged_everything(&self) -> tokio::sync::watch::Receiver<u64> {
        self.everything.clone()
    }

    /// Asks for `keys` to be purged now that `position` is live here,
    /// without waiting. When the queue is full, everything is purged
    /// instead, soon.
    pub fn purge(&self, position: Position, keys: BTreeSet<SurrogateKey>) {
        if keys.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(dropped)) = self.queue.try_send(Batch { position, keys }) {
            self.overflow.position.fetch_max(dropped.position, Ordering::Relaxed);
            self.overflow.flag.store(true, Ordering::Release);
            self.overflow.wake.notify_one();
        }
    }

    /// Asks for everything to be purged (a rebuild: what changed is unknown).
    pub fn purge_all(&self, position: Position) {
        self.purge(position, BTreeSet::from([SurrogateKey::all()]));
    }
}

/// What the sender has to do next.
enum Work {
    Batch(Batch),
    Overflowed,
    Repeat,
    Retry,
}

/// What the sender task holds.
struct Sender {
    targets: PurgeTargets,
    metrics: Arc<Metrics>,
    overflow: Arc<Overflow>,
    purged_all: tokio::sync::watch::Sender<u64>,
}

async fn run(sender: Sender, mut batches: mpsc::Receiver<Batch>, shutdown: CancellationToken) {
    let Sender {
        targets,
        metrics,
        overflow,
        purged_all,
    } = sender;
    let client = match client(&targets.roots) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the purge client; purges are off");
            return;
        }
    };
    // Keys sent once, to be sent again at `repeat_at`.
    let mut repeat: BTreeSet<SurrogateKey> = BTreeSet::new();
    let mut repeat_at: Option<tokio::time::Instant> = None;
    // After a failure: purge everything at `retry_at`.
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut purged = 0;
    loop {
        let work = tokio::select! {
            next = batches.recv() => match next {
                Some(batch) => Work::Batch(batch),
                None => return,
            },
            () = overflow.wake.notified() => Work::Overflowed,
            () = until(repeat_at) => Work::Repeat,
            () = until(retry_at) => Work::Retry,
            () = shutdown.cancelled() => return,
        };
        let (mut position, mut keys, first) = match work {
            Work::Batch(batch) => (batch.position, batch.keys, true),
            Work::Overflowed => (purged, BTreeSet::new(), true),
            Work::Repeat => {
                repeat_at = None;
                (purged, std::mem::take(&mut repeat), false)
            }
            Work::Retry => {
                retry_at = None;
                (purged, BTreeSet::from([SurrogateKey::all()]), true)
            }
        };
        // Whatever else is queued goes in the same requests.
        while let Ok(more) = batches.try_recv() {
            position = position.max(more.position);
            keys.extend(more.keys);
        }
        // Checked after draining; a batch dropped later wakes this loop.
        if overflow.flag.swap(false, Ordering::Acquire) {
            metrics.purge_overflow();
            tracing::warn!("the purge queue was full: purging everything");
            position = position.max(overflow.position.load(Ordering::Relaxed));
            keys = BTreeSet::from([SurrogateKey::all()]);
        }
        if keys.is_empty() {
            continue;
        }
        if keys.iter().any(SurrogateKey::is_all) {
            keys = BTreeSet::from([SurrogateKey::all()]);
        }
        let mut all_sent = true;
        for chunk in chunks(&keys) {
            for url in &targets.urls {
                let outcome = send(&client, url, targets.style, &targets.headers, &chunk, position).await;
                all_sent &= outcome != PurgeOutcome::Failed;
                metrics.purge(outcome);
            }
        }
        if !all_sent {
            // The stale answers stay cached until purged: purge everything
            // once the cache answers again.
            tracing::warn!(retry_in = ?RETRY_AFTER, "a purge failed: everything will be purged");
            retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
            continue;
        }
        if keys.iter().any(SurrogateKey::is_all) {
            purged_all.send_modify(|n| *n += 1);
        }
        if first {
            repeat.extend(keys);
            repeat_at.get_or_insert_with(|| tokio::time::Instant::now() + REPEAT_AFTER);
        }
        purged = purged.max(position);
        metrics.purge_position(purged);
    }
}

/// Waits until `at`, or forever without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `keys` joined with spaces, in requests of at most [`MAX_KEY_BYTES`].
fn chunks(keys: &BTreeSet<SurrogateKey>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for key in keys {
        let key = key.as_str();
        if !current.is_empty() && current.len() + 1 + key.len() > MAX_KEY_BYTES {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(key);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The purge client: short timeouts, no redirects (a `--purge-header`
/// secret must not travel to whatever host a `30x` names), no proxy from
/// the environment (the same secret must not cross a network in clear
/// text to reach a cache on this host), `https://` with the platform's
/// roots and `roots`.
fn client(roots: &[reqwest::Certificate]) -> reqwest::Result<reqwest::Client> {
    crate::replication::roots::client_builder(roots)
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
}

/// One purge with retries; its outcome.
async fn send(
    client: &reqwest::Client,
    url: &str,
    style: PurgeStyle,
    headers: &[(String, String)],
    keys: &str,
    position: Position,
) -> PurgeOutcome {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let request = match style {
            PurgeStyle::Xkey => client
                .request(reqwest::Method::from_bytes(b"PURGE").expect("a valid method"), url)
                .header("xkey-purge", keys),
            PurgeStyle::SurrogateKey => client.post(url).header("surrogate-key", keys),
        };
        // Which change the purge is for: the cache (and its logs) can tell.
        let request = headers.iter().fold(
            request.header(crate::replication::sync::POSITION_HEADER, position),
            |r, (k, v)| r.header(k.as_str(), v.as_str()),
        );
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                return if attempt == 1 {
                    PurgeOutcome::Ok
                } else {
                    PurgeOutcome::Retried
                };
            }
            Ok(response) => tracing::warn!(
                url = crate::replication::redact::url(url),
                status = %response.status(),
                attempt,
                "purge refused"
            ),
            Err(error) => tracing::warn!(
                url = crate::replication::redact::url(url),
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

/// `Name: value` of `--purge-header`. The message never repeats the value
/// (it is usually a secret).
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "--purge-header must be `Name: value` (no `:` found)".to_string())?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err("--purge-header: the part before `:` is not a header name".to_string());
    }
    let value = value.trim();
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(format!("--purge-header {name}: the value is not a valid header value"));
    }
    Ok((name.to_string(), value.to_string()))
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

    #[test]
    fn keys_go_out_in_requests_varnish_accepts() {
        let keys: BTreeSet<SurrogateKey> = (0..1000).map(|i| SurrogateKey::code(&format!("{i:032}"))).collect();
        let requests = chunks(&keys);
        assert!(requests.len() > 1);
        assert!(requests.iter().all(|r| r.len() <= MAX_KEY_BYTES));
        let back: BTreeSet<&str> = requests.iter().flat_map(|r| r.split(' ')).collect();
        assert_eq!(back, keys.iter().map(SurrogateKey::as_str).collect());
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
        let client = client(&[]).unwrap();
        let headers = vec![("Qrlaunch-Purge-Token".to_string(), "secret".to_string())];
        let outcome = send(&client, &url, PurgeStyle::Xkey, &headers, "qrlaunch", 1).await;
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
            roots: Vec::new(),
        };
        let purger = Purger::start(targets, metrics.clone(), shutdown.clone());
        purger.purge(1, BTreeSet::from([SurrogateKey::code("first")]));
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
            purger.purge(
                position,
                BTreeSet::from([SurrogateKey::code(&format!("code{position}"))]),
            );
        }
        let _ = release.send(());
        let mut requests = Vec::new();
        let everything = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(keys) = seen.recv().await {
                requests.push(keys.clone());
                if keys == crate::model::keys::ALL {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(everything, "no purge of everything after an overflow: {requests:?}");
        assert!(requests.len() <= 4, "{} requests", requests.len());
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
