//! The fleet: several nodes on one real PostgreSQL (a cluster each test
//! starts itself), every change on every node, in order, through outages.

use crate::support::*;
use reqwest::Method;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node on `url` with its own data directory.
fn node(url: &str, extra: &[&str], env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = temp_dir();
    let mut args = vec!["--store", url];
    if !extra.contains(&"--sync-poll") {
        args.extend(["--sync-poll", "100ms"]);
    }
    args.extend_from_slice(extra);
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let server = Server::try_start_with(&dir.path().join("data"), &args, &move |c| {
        for (k, v) in &env {
            c.env(k, v);
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (dir, server)
}

/// The `/readyz` position of a node.
fn position(server: &Server) -> Option<i64> {
    let text = server
        .client()
        .get(format!("{}/readyz", server.scan))
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("position:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The query a node's scan of `code` carries, `None` for a 404.
fn served(server: &Server, code: &str) -> Option<String> {
    let response = server.client().get(format!("{}/{code}", server.scan)).send().ok()?;
    if response.status() != 302 {
        return None;
    }
    let location = response.headers()["location"].to_str().ok()?.to_string();
    let query = location.split("&query=").nth(1)?.split('&').next()?;
    Some(
        percent_encoding::percent_decode_str(query)
            .decode_utf8()
            .ok()?
            .into_owned(),
    )
}

fn put(server: &Server, code: &str, query: &str) -> u16 {
    server
        .send_json(Method::PUT, &format!("/admin/v1/codes/{code}"), &code_body("p", query))
        .status()
        .as_u16()
}

/// Waits until `check` holds on every node, or `limit` passes.
fn converge(nodes: &[&Server], limit: Duration, check: impl Fn(&Server) -> bool) -> Duration {
    let started = Instant::now();
    while !nodes.iter().all(|n| check(n)) {
        assert!(started.elapsed() < limit, "no convergence within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

#[test]
fn a_change_on_one_node_reaches_every_node_deletes_too() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("fleet_basic");
    let (_a_dir, a) = node(&url, &[], &[]);
    let (_b_dir, b) = node(&url, &[], &[]);
    let (_c_dir, c) = node(&url, &[], &[]);
    assert!(a.logs().contains("a new store; it starts empty"), "{}", a.logs());
    assert_eq!(put(&a, "shared", "v=1"), 201);
    // Read your write on the node that took it, at once.
    assert_eq!(served(&a, "shared").as_deref(), Some("v=1"));
    converge(&[&b, &c], Duration::from_secs(1), |n| {
        served(n, "shared").as_deref() == Some("v=1")
    });
    assert_eq!(put(&b, "shared", "v=2"), 200);
    converge(&[&a, &c], Duration::from_secs(1), |n| {
        served(n, "shared").as_deref() == Some("v=2")
    });
    // The case that failed before: a delete on one node reaches the others.
    assert_eq!(
        c.admin(Method::DELETE, "/admin/v1/codes/shared")
            .send()
            .unwrap()
            .status(),
        204
    );
    converge(&[&a, &b], Duration::from_secs(1), |n| served(n, "shared").is_none());
    // Every node's table is at the store's position.
    let head: i64 = cluster
        .psql("fleet_basic", "SELECT position FROM meta")
        .parse()
        .unwrap();
    converge(&[&a, &b, &c], Duration::from_secs(1), |n| position(n) == Some(head));
    let metrics = a.metrics_text();
    for name in [
        "qrlaunch_table_position",
        "qrlaunch_store_position",
        "qrlaunch_sync_lag_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name}");
    }
}

/// 32 writers on three nodes, with random pauses inside the database
/// transactions: at the end every node serves exactly what the database
/// holds, and no node ever showed a later value of a code before an
/// earlier one, nor went back in position.
#[test]
fn concurrent_writers_on_three_nodes_converge_without_reordering() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("fleet_writers");
    let pause = [("QRLAUNCH_TEST_WRITE_PAUSE_MS", "15")];
    let (_d1, a) = node(&url, &[], &pause);
    let (_d2, b) = node(&url, &[], &pause);
    let (_d3, c) = node(&url, &[], &pause);
    let nodes = Arc::new([a, b, c]);
    let stop = Arc::new(AtomicBool::new(false));
    // A monitor per node: the hot code's version and the node's position
    // must never go back.
    let mut monitors = Monitors {
        stop: stop.clone(),
        threads: Vec::new(),
    };
    monitors.threads = (0..3)
        .map(|i| {
            let (nodes, stop) = (nodes.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut version, mut at) = (0u64, 0i64);
                let mut samples = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(seen) = served(&nodes[i], "hot").and_then(|q| q.strip_prefix("v=")?.parse::<u64>().ok())
                    {
                        assert!(seen >= version, "node {i} showed v={seen} after v={version}");
                        version = seen;
                    }
                    if let Some(p) = position(&nodes[i]) {
                        assert!(p >= at, "node {i} went from position {at} back to {p}");
                        at = p;
                    }
                    samples += 1;
                }
                samples
            })
        })
        .collect();
    let hot = {
        let nodes = nodes.clone();
        std::thread::spawn(move || {
            for v in 1..=60u64 {
                assert!(matches!(
                    put(&nodes[(v % 3) as usize], "hot", &format!("v={v}")),
                    200 | 201
                ));
            }
        })
    };
    let writers: Vec<_> = (0..32u64)
        .map(|w| {
            let nodes = nodes.clone();
            std::thread::spawn(move || {
                let mut seed = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for i in 0..12 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let node = &nodes[(seed % 3) as usize];
                    let code = format!("k{}", seed % 120);
                    if seed % 5 == 0 {
                        let _ = node.admin(Method::DELETE, &format!("/admin/v1/codes/{code}")).send();
                    } else {
                        let status = put(node, &code, &format!("w={w}&i={i}"));
                        assert!(matches!(status, 200 | 201), "{status}");
                    }
                    std::thread::sleep(Duration::from_millis(seed % 20));
                }
            })
        })
        .collect();
    // Every writer ends before any failure is raised, so that no thread
    // still holds the nodes when the test fails.
    let ended: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
    let hot_ended = hot.join();
    assert!(
        ended.iter().all(Result::is_ok),
        "a writer failed (its message is above)"
    );
    assert!(hot_ended.is_ok(), "the hot code's writer failed (its message is above)");
    let head: i64 = cluster
        .psql("fleet_writers", "SELECT position FROM meta")
        .parse()
        .unwrap();
    let nodes_ref: Vec<&Server> = nodes.iter().collect();
    converge(&nodes_ref, Duration::from_secs(5), |n| position(n) == Some(head));
    for samples in monitors.finish() {
        assert!(samples > 10, "the monitor sampled");
    }
    // Every node serves exactly the database's entries.
    let rows = cluster.psql("fleet_writers", "SELECT code, query FROM codes ORDER BY code");
    let stored: BTreeMap<String, String> = rows
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(c, q)| (c.to_string(), q.to_string()))
        .collect();
    assert_eq!(stored.get("hot").map(String::as_str), Some("v=60"));
    for i in 0..120 {
        let code = format!("k{i}");
        for (n, server) in nodes.iter().enumerate() {
            assert_eq!(served(server, &code), stored.get(&code).cloned(), "node {n}, {code}");
        }
    }
}

/// Threads that watch the nodes until the test ends: stopped and joined
/// when it ends, passing or failing, so that they let go of the nodes and
/// the nodes are stopped (a failed run used to leave them running).
struct Monitors {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Monitors {
    /// Stops them and returns each one's sample count; a monitor's failure
    /// fails the test.
    fn finish(mut self) -> Vec<usize> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .drain(..)
            .map(|t| t.join().expect("a monitor failed"))
            .collect()
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_killed_notification_connection_is_replaced_and_nodes_still_converge() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("fleet_listen");
    let (_d1, a) = node(&url, &["--sync-poll", "10s"], &[]);
    let (_d2, b) = node(&url, &["--sync-poll", "10s"], &[]);
    assert_eq!(put(&a, "before", "v=1"), 201);
    converge(&[&b], Duration::from_secs(2), |n| served(n, "before").is_some());
    let killed = cluster.psql(
        "fleet_listen",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
    );
    assert_eq!(killed, "2", "both nodes' listeners were terminated");
    eventually(Duration::from_secs(5), "B's notifications reconnected", || {
        b.metric("qrlaunch_feed_reconnects_total") >= 1.0
    });
    assert_eq!(put(&a, "after", "v=2"), 201);
    // With a 10 s poll, only a re-established LISTEN makes this fast.
    let took = converge(&[&b], Duration::from_secs(1), |n| served(n, "after").is_some());
    assert!(took < Duration::from_secs(1));
    let metrics = b.metrics_text();
    assert!(metrics.contains("qrlaunch_feed_reconnects_total 1"), "{metrics}");
}

#[test]
fn a_database_outage_keeps_scans_answering_and_refuses_writes() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("fleet_outage");
    let (_d1, a) = node(&url, &[], &[]);
    let (_d2, b) = node(&url, &[], &[]);
    assert_eq!(put(&a, "steady", "v=1"), 201);
    converge(&[&b], Duration::from_secs(1), |n| served(n, "steady").is_some());
    cluster.pause();
    let down = Instant::now();
    let writes = {
        let (admin, token) = (a.admin.clone(), a.token.clone());
        std::thread::spawn(move || {
            let client = Client::new();
            (0..3)
                .map(|_| {
                    let answer = client
                        .put(format!("{admin}/admin/v1/codes/during"))
                        .bearer_auth(&token)
                        .json(&code_body("p", "v=9"))
                        .send()
                        .unwrap();
                    (answer.status().as_u16(), answer.text().unwrap_or_default())
                })
                .collect::<Vec<_>>()
        })
    };
    let mut scans = 0;
    while down.elapsed() < Duration::from_secs(10) {
        for n in [&a, &b] {
            assert_eq!(
                served(n, "steady").as_deref(),
                Some("v=1"),
                "scans answer from the last table"
            );
            scans += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scans > 100, "{scans}");
    for (status, body) in writes.join().unwrap() {
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("unavailable"), "{body}");
    }
    cluster.resume();
    // Writes work again and reach every node.
    let deadline = Instant::now() + Duration::from_secs(15);
    while put(&a, "after", "v=2") != 201 {
        assert!(Instant::now() < deadline, "writes did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    converge(&[&a, &b], Duration::from_secs(2), |n| served(n, "after").is_some());
    assert_eq!(served(&b, "during"), None, "a refused write did not happen");
}

#[test]
fn a_restarted_node_and_a_new_node_catch_up_and_are_ready_only_when_current() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("fleet_join");
    let (_d1, a) = node(&url, &[], &[]);
    let b_dir = temp_dir();
    let b_data = b_dir.path().join("data");
    let b = Server::start_on(&b_data, &["--store", &url]);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(0u64));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let admin = a.admin.clone();
        let token = a.token.clone();
        std::thread::spawn(move || {
            let client = Client::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let status = client
                    .put(format!("{admin}/admin/v1/codes/j{}", i % 50))
                    .bearer_auth(&token)
                    .json(&code_body("p", &format!("n={i}")))
                    .send()
                    .map(|r| r.status().as_u16());
                assert!(matches!(status, Ok(200 | 201)), "{status:?}");
                *written.lock().unwrap() = i;
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let written_now = || *written.lock().unwrap();
    eventually(Duration::from_secs(10), "writes are flowing", || written_now() > 10);
    b.kill9();
    let at_kill = written_now();
    eventually(Duration::from_secs(10), "writes go on while B is down", || {
        written_now() > at_kill + 5
    });
    let head_before: i64 = cluster.psql("fleet_join", "SELECT position FROM meta").parse().unwrap();
    // Ready (the helper waits for /readyz 200) means built from a snapshot
    // at least as new as the store was when it started.
    let b = Server::start_on(&b_data, &["--store", &url]);
    assert!(
        position(&b).unwrap() >= head_before,
        "restarted node ready behind the store"
    );
    let (_d3, d) = node(&url, &[], &[]);
    assert!(position(&d).unwrap() >= head_before, "new node ready behind the store");
    let at_join = written_now();
    eventually(Duration::from_secs(10), "writes go on after the joins", || {
        written_now() > at_join + 10
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(*written.lock().unwrap() > 20);
    let head: i64 = cluster.psql("fleet_join", "SELECT position FROM meta").parse().unwrap();
    converge(&[&a, &b, &d], Duration::from_secs(3), |n| position(n) == Some(head));
    for i in 0..50 {
        let code = format!("j{i}");
        let want = served(&a, &code);
        assert_eq!(served(&b, &code), want, "{code} on the restarted node");
        assert_eq!(served(&d, &code), want, "{code} on the new node");
    }
}
