//! Change-to-answer latency: how long after an admin `2xx` a change
//! answers somewhere else.
//!
//! * `propagation`: on the other nodes of a fleet. Writes go to one node's
//!   admin API at a fixed rate; a poller per node reads its `/readyz`
//!   position every `--poll` and notes when each position first showed.
//!   A write's latency on a node is that moment minus the write's `2xx`
//!   (zero when the node had it before the writer got its answer). At the
//!   end every node must answer the last written code with a 302.
//! * `purge`: through a cache. One code is changed again and again; after
//!   each `2xx` the code is fetched through the cache every `--poll` until
//!   the new answer shows. Before each change the old answer is fetched
//!   until it is a cache hit (`X-Cache: HIT`), so every change is measured
//!   against a cached object.
//!
//! Loopback only; every loop is bounded by a count and a time.

use crate::report::{histogram, record};
use hdrhistogram::Histogram;
use reqwest::blocking::Client;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one change may take to show before it counts as lost.
const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin API of one node.
pub struct Admin {
    base: String,
    token: String,
    http: Client,
}

impl Admin {
    pub fn new(addr: SocketAddr, token_file: &std::path::Path) -> Result<Admin, String> {
        crate::check_loopback(addr)?;
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| format!("--token-file {}: {e}", token_file.display()))?
            .trim()
            .to_string();
        Ok(Admin {
            base: format!("http://{addr}"),
            token,
            http: client()?,
        })
    }

    /// Creates or replaces `code` with `query`; the moment of the `2xx` and
    /// the change-log position it names.
    pub fn put_code(&self, code: &str, query: &str) -> Result<(Instant, i64), String> {
        let body = serde_json::json!({
            "appid": "wx1234567890abcdef",
            "path": "pages/bench/index",
            "query": query,
        });
        let response = self
            .http
            .put(format!("{}/admin/v1/codes/{code}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .map_err(|e| format!("PUT {code}: {e}"))?;
        let acked = Instant::now();
        let status = response.status();
        let position = response
            .headers()
            .get("qrlaunch-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        match (status.is_success(), position) {
            (true, Some(position)) => Ok((acked, position)),
            (true, None) => Err(format!("PUT {code}: {status} without a qrlaunch-position header")),
            (false, _) => Err(format!("PUT {code}: {status} {}", response.text().unwrap_or_default())),
        }
    }
}

fn client() -> Result<Client, String> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())
}

/// What a latency run found.
#[derive(Debug, serde::Serialize)]
pub struct Latencies {
    pub label: String,
    pub changes: usize,
    /// Changes that did not show within the time limit.
    pub lost: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// How often the answer was looked at.
    pub poll_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_rate: Option<f64>,
}

impl Latencies {
    fn new(label: &str, h: &Histogram<u64>, lost: usize, poll: Duration) -> Latencies {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        Latencies {
            label: label.to_string(),
            changes: h.len() as usize + lost,
            lost,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1e6,
            poll_ms: poll.as_secs_f64() * 1e3,
            achieved_rate: None,
        }
    }

    pub fn text(&self) -> String {
        let rate = self
            .achieved_rate
            .map(|r| format!(" at {r:.1} writes/s"))
            .unwrap_or_default();
        format!(
            "{}: {} changes{rate}, {} lost; change to answer ms: p50 {:.1}  p99 {:.1}  max {:.1} (looked every {:.1} ms)",
            self.label, self.changes, self.lost, self.p50_ms, self.p99_ms, self.max_ms, self.poll_ms
        )
    }
}

/// What `propagation` needs.
pub struct Propagation {
    pub admin: Admin,
    pub nodes: Vec<SocketAddr>,
    pub rate: f64,
    pub writes: usize,
    pub writers: usize,
    pub poll: Duration,
    pub prefix: String,
}

/// Writes at `rate` through `admin` and times their arrival on `nodes`.
pub fn propagation(run: Propagation) -> Result<Latencies, String> {
    for node in &run.nodes {
        crate::check_loopback(*node)?;
    }
    if run.writes == 0 || run.writers == 0 || !(run.rate.is_finite() && run.rate > 0.0) {
        return Err("--writes, --writers and --rate must be positive".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = run
        .nodes
        .iter()
        .map(|&node| {
            let stop = stop.clone();
            let poll = run.poll;
            std::thread::spawn(move || watch_position(node, poll, &stop))
        })
        .collect();
    // Open loop: write i is due at start + i/rate, on writer i mod writers.
    let start = Instant::now() + Duration::from_millis(50);
    let acks = Mutex::new(Vec::with_capacity(run.writes));
    let failure = Mutex::new(None::<String>);
    std::thread::scope(|scope| {
        for w in 0..run.writers {
            let (run, acks, failure) = (&run, &acks, &failure);
            scope.spawn(move || {
                for i in (w..run.writes).step_by(run.writers) {
                    let due = start + Duration::from_secs_f64(i as f64 / run.rate);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let code = format!("{}{i}", run.prefix);
                    match run.admin.put_code(&code, &format!("n={i}")) {
                        Ok(ack) => acks.lock().unwrap().push(ack),
                        Err(e) => {
                            failure.lock().unwrap().get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let acks = acks.into_inner().unwrap();
    let last = acks.iter().map(|&(_, p)| p).max().unwrap_or(0);
    // Let the nodes catch up with the last write (bounded), then stop.
    let deadline = Instant::now() + SHOW_TIMEOUT;
    while Instant::now() < deadline && !caught_up(&run.nodes, last) {
        std::thread::sleep(run.poll);
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Vec<(Instant, i64)>> = pollers.into_iter().map(|p| p.join().unwrap_or_default()).collect();
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let mut h = histogram();
    let mut lost = 0;
    for &(acked, position) in &acks {
        for node in &seen {
            match node.iter().find(|&&(_, p)| p >= position) {
                Some(&(at, _)) => record(&mut h, at.saturating_duration_since(acked)),
                None => lost += 1,
            }
        }
    }
    // The table that has the position answers the code.
    let http = client()?;
    let last_code = format!("{}{}", run.prefix, run.writes - 1);
    for node in &run.nodes {
        let status = http
            .get(format!("http://{node}/{last_code}"))
            .send()
            .map_err(|e| format!("scan of {last_code} on {node}: {e}"))?
            .status();
        if status != 302 {
            return Err(format!(
                "{node} answered {status} for {last_code}, the last code written"
            ));
        }
    }
    let mut latencies = Latencies::new(&format!("propagation to {} nodes", run.nodes.len()), &h, lost, run.poll);
    latencies.achieved_rate = Some(acks.len() as f64 / elapsed.as_secs_f64());
    Ok(latencies)
}

/// Every increase of `node`'s applied position, with when it was seen.
fn watch_position(node: SocketAddr, poll: Duration, stop: &AtomicBool) -> Vec<(Instant, i64)> {
    let Ok(http) = client() else { return Vec::new() };
    let url = format!("http://{node}/readyz");
    let mut seen: Vec<(Instant, i64)> = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(3600);
    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        if let Some(position) = position_of(&http, &url) {
            if seen.last().is_none_or(|&(_, p)| position > p) {
                seen.push((Instant::now(), position));
            }
        }
        std::thread::sleep(poll);
    }
    seen
}

fn position_of(http: &Client, url: &str) -> Option<i64> {
    let response = http.get(url).send().ok()?;
    response.headers().get("qrlaunch-position")?.to_str().ok()?.parse().ok()
}

fn caught_up(nodes: &[SocketAddr], position: i64) -> bool {
    let Ok(http) = client() else { return false };
    nodes
        .iter()
        .all(|node| position_of(&http, &format!("http://{node}/readyz")).is_some_and(|p| p >= position))
}

/// What `purge` needs.
pub struct Purge {
    pub admin: Admin,
    pub cache: SocketAddr,
    pub code: String,
    pub changes: usize,
    pub poll: Duration,
}

/// Changes one code `changes` times and times each change through the cache.
pub fn purge(run: Purge) -> Result<Latencies, String> {
    crate::check_loopback(run.cache)?;
    if run.changes == 0 {
        return Err("--changes must be positive".into());
    }
    let http = client()?;
    let url = format!("http://{}/{}", run.cache, run.code);
    let mut h = histogram();
    let mut lost = 0;
    run.admin.put_code(&run.code, "v=0")?;
    for i in 1..=run.changes {
        // The old answer, cached.
        let old = format!("query=v%3D{}&", i - 1);
        wait_for(&http, &url, run.poll, |location, hit| location.contains(&old) && hit)
            .ok_or_else(|| format!("the answer for change {} never became a cache hit", i - 1))?;
        let (acked, _) = run.admin.put_code(&run.code, &format!("v={i}"))?;
        let new = format!("query=v%3D{i}&");
        match wait_for(&http, &url, run.poll, |location, _| location.contains(&new)) {
            Some(at) => record(&mut h, at.saturating_duration_since(acked)),
            None => lost += 1,
        }
    }
    Ok(Latencies::new("change through the cache", &h, lost, run.poll))
}

/// Fetches `url` every `poll` until `done(location, was_a_hit)`; when.
fn wait_for(http: &Client, url: &str, poll: Duration, done: impl Fn(&str, bool) -> bool) -> Option<Instant> {
    let deadline = Instant::now() + SHOW_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(response) = http.get(url).send() {
            let at = Instant::now();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            if done(&header("location"), header("x-cache") == "HIT") {
                return Some(at);
            }
        }
        std::thread::sleep(poll);
    }
    None
}
