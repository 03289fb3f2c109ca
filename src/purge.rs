//! Purges: after this node's table has applied a change, the caches in
//! front (`--purge-url`, repeatable) are told to drop the answers the
//! change made stale, by their surrogate keys (see [`crate::http::cache`]).
//!
//! Purges go out from a task of their own, in batches, with retries and
//! backoff; they never hold up a change or a scan. Outcomes are counted in
//! `qrlaunch_purges_total{outcome}`. In a fleet, give `--purge-url` to one
//! node (or to each, if each has its own cache): every node applies every
//! change, so one is enough to purge a shared cache.

use crate::metrics::{Metrics, PurgeOutcome};
use std::collections::BTreeSet;
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

/// The handle the follower tells about changes.
#[derive(Clone)]
pub struct Purger {
    keys: mpsc::Sender<BTreeSet<String>>,
}

impl Purger {
    /// Starts the sender task for `urls`.
    pub fn start(
        urls: Vec<String>,
        style: PurgeStyle,
        headers: Vec<(String, String)>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Purger {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(urls, style, headers, metrics, rx, shutdown));
        Purger { keys: tx }
    }

    /// Asks for `keys` to be purged, without waiting. When the queue is
    /// full, everything is purged instead, later.
    pub fn purge(&self, keys: BTreeSet<String>) {
        if keys.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.keys.try_send(keys) {
            let all = BTreeSet::from([crate::http::cache::ALL.to_string()]);
            let _ = self.keys.try_send(all);
        }
    }
}

async fn run(
    urls: Vec<String>,
    style: PurgeStyle,
    headers: Vec<(String, String)>,
    metrics: Arc<Metrics>,
    mut keys: mpsc::Receiver<BTreeSet<String>>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the purge client; purges are off");
            return;
        }
    };
    loop {
        let first = tokio::select! {
            next = keys.recv() => match next {
                Some(first) => first,
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        // Whatever else is queued goes in the same requests.
        let mut batch = first;
        while let Ok(more) = keys.try_recv() {
            batch.extend(more);
        }
        if batch.contains(crate::http::cache::ALL) {
            batch = BTreeSet::from([crate::http::cache::ALL.to_string()]);
        }
        let batch: Vec<String> = batch.into_iter().collect();
        for chunk in batch.chunks(MAX_KEYS) {
            let joined = chunk.join(" ");
            for url in &urls {
                let outcome = send(&client, url, style, &headers, &joined).await;
                metrics.purge(outcome);
            }
        }
    }
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
            Ok(response) => tracing::warn!(url, status = %response.status(), attempt, "purge refused"),
            Err(error) => tracing::warn!(url, %error, attempt, "purge failed"),
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
