//! Trust at the edge: what no client can do to a cache in front, purges that
//! never precede their change, and the cost one client can put on a node.
//! Cache findings run through a real `varnishd` with the shipped VCL.

use crate::support::*;
use reqwest::Method;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const DESKTOP: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// A table with an https rule and a code, on a taken-over legacy host.
const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42"}
{"prefix":"https://www.example.com/app/download","appid":"wx1234567890abcdef","path":"pages/download/index","query":"from=legacy"}
{"host":"www.example.com","unmatched":"https://old.example.com"}"#;

/// One raw HTTP/1.1 request; the status line and headers, lower-cased
/// names, and the body.
fn raw(addr: &str, head: &str) -> (String, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// What an ordinary client sees of an answer: the status, where it leads
/// (the scan time left out: it differs between two scans) and the body.
fn seen(answer: &(String, Vec<(String, String)>, String)) -> String {
    let location = header(&answer.1, "location");
    let location = match location.find("scancode_time%3D") {
        Some(at) => &location[..at],
        None => location,
    };
    let status = answer.0.split(' ').nth(1).unwrap_or_default();
    format!("{status} {location} {}", answer.2.len())
}

/// A request as an iPhone on `host` sends it, plus `extra` header lines.
fn request(method: &str, target: &str, host: &str, ua: &str, extra: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n{extra}Connection: close\r\n\r\n")
}

/// Every way a request can differ from an ordinary phone's that this cache
/// does not key on separately, or that qrlaunch reads: each is sent first
/// to an empty cache, then an ordinary phone must get what it gets with no
/// such request before it.
const VARIANTS: &[(&str, &str)] = &[
    ("Forwarded: proto=http", "Forwarded: proto=http\r\n"),
    ("Forwarded: proto=https", "Forwarded: for=1.2.3.4;proto=https\r\n"),
    ("X-Forwarded-Proto: http", "X-Forwarded-Proto: http\r\n"),
    (
        "both, conflicting",
        "X-Forwarded-Proto: https\r\nForwarded: proto=http\r\n",
    ),
    ("a forged class header", "X-QR-Client: desktop\r\n"),
    ("an unknown class", "X-QR-Client: toaster\r\n"),
    ("Chinese pages", "Accept-Language: zh-CN,zh;q=0.9\r\n"),
    ("a wild language", "Accept-Language: *;q=0.1, xx\r\n"),
    ("a cookie", "Cookie: session=abc\r\n"),
    ("X-Forwarded-Host", "X-Forwarded-Host: evil.example\r\n"),
    ("X-Forwarded-For", "X-Forwarded-For: 203.0.113.7\r\n"),
    ("the purge secret header", "Qrlaunch-Purge-Token: nope\r\n"),
    (
        "a conditional request",
        "If-None-Match: \"x\"\r\nIf-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n",
    ),
];

/// For an origin started with `flags` behind the shipped VCL: no variant
/// request changes what the cache then serves an ordinary iPhone, for a
/// rule, a code and a pass-through URL; nor do a desktop's or an
/// absolute-form request. Returns how many cases ran.
fn poisoning_cases(flags: &[&str]) -> Option<usize> {
    let cache_port = free_port();
    let purge = format!("http://127.0.0.1:{cache_port}");
    let mut args = vec![
        "--client-header",
        "X-QR-Client",
        "--purge-url",
        &purge,
        "--purge-header",
        PURGE_HEADER,
    ];
    args.extend_from_slice(flags);
    let origin = Server::with_table(TABLE, &args);
    let varnish = Varnish::start_on(&origin, cache_port)?;
    let https = flags.contains(&"--assume-https");
    // Without --assume-https, a TLS terminator in front says `https` in the
    // header the cache keys on.
    let ordinary_extra = if https { "" } else { "X-Forwarded-Proto: https\r\n" };
    let targets = [
        ("/app/download?channel=poster42", "www.example.com"),
        ("/spring24", "www.example.com"),
        ("/about", "www.example.com"),
    ];
    let mut cases = 0;
    for (target, host) in targets {
        varnish.purge_all();
        let ordinary = || raw(&varnish.addr, &request("GET", target, host, IPHONE, ordinary_extra));
        let baseline = seen(&ordinary());
        if target.starts_with("/app/") {
            assert!(baseline.starts_with("302 weixin://"), "{baseline}");
        }
        let mut attacks: Vec<(String, String)> = VARIANTS
            .iter()
            .map(|(name, extra)| {
                let extra = format!("{ordinary_extra}{extra}");
                (name.to_string(), request("GET", target, host, IPHONE, &extra))
            })
            .collect();
        attacks.push((
            "another class".into(),
            request("GET", target, host, DESKTOP, ordinary_extra),
        ));
        attacks.push(("HEAD".into(), request("HEAD", target, host, IPHONE, ordinary_extra)));
        attacks.push((
            "an absolute-form target naming another host".into(),
            request(
                "GET",
                &format!("http://old.example.com{target}"),
                host,
                IPHONE,
                ordinary_extra,
            ),
        ));
        for (name, attack) in attacks {
            varnish.purge_all();
            let _ = raw(&varnish.addr, &attack);
            let after = ordinary();
            assert_eq!(
                seen(&after),
                baseline,
                "{target} after a request with {name}: the cache serves an ordinary iPhone something else"
            );
            cases += 1;
        }
    }
    Some(cases)
}

#[test]
fn no_request_changes_what_the_cache_serves_others_with_assume_https() {
    // The deployment the README recommends: TLS ends before Varnish.
    let Some(cases) = poisoning_cases(&["--assume-https", "--public-url", "https://www.example.com/"]) else {
        return;
    };
    assert!(cases >= 45, "{cases}");
}

#[test]
fn no_request_changes_what_the_cache_serves_others_with_forwarded_schemes() {
    // A TLS terminator that says the scheme in X-Forwarded-Proto.
    let Some(cases) = poisoning_cases(&[]) else { return };
    assert!(cases >= 45, "{cases}");
}

#[test]
fn assume_https_means_https_whatever_a_proxy_says() {
    let origin = Server::with_table(TABLE, &["--assume-https"]);
    for extra in ["Forwarded: proto=http\r\n", "X-Forwarded-Proto: http\r\n"] {
        let answer = raw(
            origin.scan_addr(),
            &request("GET", "/app/download?c=1", "www.example.com", IPHONE, extra),
        );
        assert!(
            header(&answer.1, "location").starts_with("weixin://"),
            "{extra}: {:?}",
            answer
        );
        assert!(!header(&answer.1, "vary").contains("Forwarded"), "{:?}", answer.1);
    }
    // Without it, the trusted proxy's header decides, and the answer says
    // it depends on it.
    let origin = Server::with_table(TABLE, &[]);
    let answer = raw(
        origin.scan_addr(),
        &request(
            "GET",
            "/app/download?c=1",
            "www.example.com",
            IPHONE,
            "Forwarded: proto=http\r\n",
        ),
    );
    assert!(
        header(&answer.1, "location").starts_with("https://old.example.com/"),
        "{answer:?}"
    );
    assert_eq!(header(&answer.1, "vary"), "X-Forwarded-Proto, Forwarded");
}

#[test]
fn health_checks_and_what_must_not_be_stored_are_never_cached() {
    let cache_port = free_port();
    let origin = Server::with_table(TABLE, &["--client-header", "X-QR-Client"]);
    let Some(varnish) = Varnish::start_on(&origin, cache_port) else {
        return;
    };
    for path in ["/readyz", "/healthz", "/%ff", "/v1/resolve?code=spring24"] {
        for round in 0..3 {
            let answer = raw(&varnish.addr, &request("GET", path, "go.example.com", IPHONE, ""));
            assert_eq!(
                header(&answer.1, "x-cache"),
                "MISS",
                "{path}, round {round}: {answer:?}"
            );
        }
    }
    let answer = raw(&varnish.addr, &request("GET", "/%ff", "go.example.com", IPHONE, ""));
    assert!(answer.0.contains(" 400 "), "{answer:?}");
}

/// A purge receiver standing in for a cache: on every purge, it scans the
/// origin at once and records the purge's position (`qrlaunch-position`)
/// with what the origin answered. It is bound before the origin starts
/// (whose `--purge-url` names it) and told the origin's address afterwards.
struct ScanningPurgeReceiver {
    port: u16,
    origin: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<Vec<(i64, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl ScanningPurgeReceiver {
    fn start(target: &'static str, host: &'static str) -> ScanningPurgeReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin: Arc<Mutex<Option<String>>> = Arc::default();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (scan_addr, record, stopped) = (origin.clone(), answers.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let mut position = -1;
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("qrlaunch-position") {
                            position = value.trim().parse().unwrap_or(-1);
                        }
                    }
                    line.clear();
                }
                // The scan that the purge lets through to the origin.
                if let Some(addr) = scan_addr.lock().unwrap().clone() {
                    let answer = raw(&addr, &request("GET", target, host, IPHONE, ""));
                    record.lock().unwrap().push((position, seen(&answer)));
                }
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        ScanningPurgeReceiver {
            port,
            origin,
            seen: answers,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until a purge for `position` (or later) was received; every
    /// purge so far, with what the origin answered when it arrived.
    fn wait_for(&self, position: i64) -> Vec<(i64, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.iter().any(|(p, _)| *p >= position) {
                return seen;
            }
            assert!(Instant::now() < deadline, "no purge for position {position}: {seen:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ScanningPurgeReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Makes `changes` changes through `change(i)` (each answering with its
/// position), then checks every purge the receiver saw: when a purge for
/// position `p` arrived, the origin already answered with change `i` for
/// some `i` made at `p` or later (`answered(i)` says how to recognise it).
fn check_purges_follow_changes(
    receiver: &ScanningPurgeReceiver,
    changes: usize,
    change: impl Fn(usize) -> i64,
    answered: impl Fn(usize) -> String,
) {
    let mut positions = Vec::new();
    for i in 0..changes {
        let position = change(i);
        positions.push(position);
        receiver.wait_for(position);
    }
    let purges = receiver.seen.lock().unwrap().clone();
    assert!(purges.len() >= changes, "{} purges for {changes} changes", purges.len());
    for (purge, answer) in purges {
        let current = (0..changes).rev().find(|&i| answer.contains(&answered(i)));
        let Some(current) = current else {
            // The answer from before the first change: only an early purge
            // of the first change could see it.
            panic!("a purge for position {purge} came while the origin answered {answer}");
        };
        assert!(
            positions[current] >= purge,
            "a purge for position {purge} came while the origin answered change {current} (position {}): {answer}",
            positions[current]
        );
    }
}

fn position_of(response: &Response) -> i64 {
    response.headers()["qrlaunch-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_purge_is_sent_only_once_the_change_answers_scans() {
    const CHANGES: usize = 30;
    // A code changed again and again, on a node a little slow to make
    // changes live (which widens the window a purge sent too early falls
    // into).
    let receiver = ScanningPurgeReceiver::start("/spring24", "www.example.com");
    let origin = Server::with_table(TABLE, &["--purge-url", &receiver.url(), "--test-apply-delay", "20ms"]);
    *receiver.origin.lock().unwrap() = Some(origin.scan_addr().to_string());
    check_purges_follow_changes(
        &receiver,
        CHANGES,
        |i| {
            let patched = origin.send_json(
                Method::PATCH,
                "/admin/v1/codes/spring24",
                &json!({"query": format!("id={i}")}),
            );
            assert_eq!(patched.status(), 200);
            position_of(&patched)
        },
        |i| format!("query=id%3D{i}&"),
    );
    // A host's pass-through origin changed again and again.
    let receiver = ScanningPurgeReceiver::start("/about", "www.example.com");
    let origin = Server::with_table(TABLE, &["--purge-url", &receiver.url(), "--test-apply-delay", "20ms"]);
    *receiver.origin.lock().unwrap() = Some(origin.scan_addr().to_string());
    check_purges_follow_changes(
        &receiver,
        CHANGES,
        |i| {
            let put = origin.send_json(
                Method::PUT,
                "/admin/v1/hosts/www.example.com",
                &json!({"unmatched": format!("https://old{i}.example.com")}),
            );
            assert!(put.status().is_success(), "{}", put.status());
            position_of(&put)
        },
        |i| format!("https://old{i}.example.com/about"),
    );
}

#[test]
fn a_cache_in_front_of_a_fleet_is_purged_again_by_the_last_node_to_apply() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("edge_fleet");
    let cache_port = free_port();
    let purge = format!("http://127.0.0.1:{cache_port}");
    let common = [
        "--store",
        &url,
        "--sync-poll",
        "50ms",
        "--client-header",
        "X-QR-Client",
        "--purge-url",
        &purge,
        "--purge-header",
        PURGE_HEADER,
    ];
    let (a_dir, b_dir) = (temp_dir(), temp_dir());
    let a = Server::start_on(&a_dir.path().join("data"), &common);
    let mut lagging = common.to_vec();
    lagging.extend(["--test-apply-delay", "400ms"]);
    let b = Server::start_on(&b_dir.path().join("data"), &lagging);
    assert_eq!(
        a.send_json(Method::PUT, "/admin/v1/codes/fleet1", &code_body("p", "v=0"))
            .status(),
        201
    );
    let Some(varnish) = Varnish::start_before(&[&a, &b], cache_port) else {
        return;
    };
    let purge_position = |node: &Server| -> i64 {
        node.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix("qrlaunch_purge_position "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as i64)
    };
    let applied = |node: &Server| -> i64 {
        let answer = raw(node.scan_addr(), &request("GET", "/readyz", "a", IPHONE, ""));
        header(&answer.1, "qrlaunch-position").parse().unwrap_or(0)
    };
    let scan = || raw(&varnish.addr, &request("GET", "/fleet1", "go.example.com", IPHONE, ""));
    for round in 1..=5 {
        let query = format!("v={round}");
        let put = a.send_json(Method::PUT, "/admin/v1/codes/fleet1", &code_body("p", &query));
        assert_eq!(put.status(), 200);
        let position: i64 = put.headers()["qrlaunch-position"].to_str().unwrap().parse().unwrap();
        // Scans through the cache while B still has the old table: the
        // round robin sends some of them to B, whose old answer is cached.
        let deadline = Instant::now() + Duration::from_secs(20);
        while applied(&b) < position || purge_position(&b) < position {
            let _ = scan();
            assert!(Instant::now() < deadline, "B never purged position {position}");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Both nodes have applied the change and purged after it: no scan
        // through the cache may get the old answer any more.
        let want = format!("query=v%3D{round}");
        for i in 0..40 {
            let answer = scan();
            let location = header(&answer.1, "location");
            assert!(
                location.contains(&want),
                "round {round}, scan {i} after both nodes applied: {location} ({})",
                header(&answer.1, "x-cache")
            );
        }
    }
}

#[test]
fn one_address_cannot_take_every_connection() {
    raise_open_files(12_000);
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1/32",
        "--max-connections",
        "4000",
        "--max-connections-per-ip",
        "64",
        "--header-read-timeout",
        "30s",
    ]);
    let port: u16 = server.scan_addr().rsplit(':').next().unwrap().parse().unwrap();
    let connect_from = |source: &str| -> Option<TcpStream> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
        socket
            .bind(&format!("{source}:0").parse::<std::net::SocketAddr>().unwrap().into())
            .ok()?;
        let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        socket.connect(&target.into()).ok()?;
        Some(socket.into())
    };
    // 5,000 connections from one address, each holding a partial head.
    let mut held = Vec::new();
    for _ in 0..5000 {
        if let Some(mut stream) = connect_from("127.0.0.2") {
            let _ = stream.write_all(
                b"GET /spring24 HTTP/1.1
Host: a
",
            );
            held.push(stream);
        }
    }
    assert!(held.len() > 4000, "the attacker opened {} connections", held.len());
    // Another address still gets its scans answered.
    for _ in 0..20 {
        let mut stream = connect_from("127.0.0.3").expect("connect from another address");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream
            .write_all(
                b"GET /spring24 HTTP/1.1
Host: a
Connection: close

",
            )
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer:?}");
    }
    let refused = server
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(r#"qrlaunch_connections_refused_total{listener="scan",reason="per_ip"} "#))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(refused >= 4000.0, "per-address refusals are counted: {refused}");
    drop(held);
}

/// Raises this test process's open-files limit to at least `n`.
fn raise_open_files(n: u64) {
    let (soft, hard) = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .zip(rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum)
        .unwrap_or((1024, 1024));
    if soft < n {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(n.min(hard)),
                maximum: Some(hard),
            },
        );
    }
}

#[test]
fn an_import_with_many_rules_does_not_hold_up_scans_on_one_thread() {
    use std::fmt::Write as _;
    // 20,000 rules on code hosts, then an import of 10,000 named codes:
    // every code is checked for the rules it hides.
    let mut rules = String::new();
    for i in 0..20_000 {
        let _ = writeln!(
            rules,
            r#"{{"prefix":"https://h{}.example.com/r{i}","appid":"wx1234567890abcdef","path":"p"}}"#,
            i % 50
        );
    }
    let server = Server::with_table(&rules, &["--threads", "1"]);
    let mut codes = String::new();
    for i in 0..10_000 {
        let _ = writeln!(codes, r#"{{"code":"imp{i}","appid":"wx1234567890abcdef","path":"p"}}"#);
    }
    let scans = server.scan_addr().to_string();
    let worst = std::thread::spawn(move || {
        let client = Client::new();
        let started = Instant::now();
        let mut worst = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(4) {
            let t = Instant::now();
            let answer = client.get(format!("http://{scans}/healthz")).send();
            assert!(answer.is_ok_and(|a| a.status() == 200));
            worst = worst.max(t.elapsed());
        }
        worst
    });
    let imported = server
        .admin(Method::POST, "/admin/v1/import")
        .header("content-type", "application/x-ndjson")
        .body(codes)
        .send()
        .unwrap();
    assert_eq!(imported.status(), 200, "{}", imported.text().unwrap_or_default());
    let worst = worst.join().unwrap();
    // The check used to take seconds on the runtime thread; a generous
    // bound against a loaded machine, not a latency measurement.
    assert!(worst < Duration::from_millis(1500), "a scan waited {worst:?}");
}

#[test]
fn an_empty_import_says_so() {
    let server = Server::with_table(TABLE, &[]);
    for body in [
        "", "

  
",
    ] {
        let answer = server
            .admin(Method::POST, "/admin/v1/import")
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(answer.status(), 400);
        let text = answer.text().unwrap();
        assert!(text.contains("empty"), "{text}");
    }
}

#[test]
fn wrong_tokens_are_throttled_per_address() {
    let server = Server::with_table(TABLE, &[]);
    let statuses: Vec<u16> = (0..15)
        .map(|_| {
            server
                .client()
                .get(format!("{}/admin/v1/codes/spring24", server.admin))
                .bearer_auth("wrong")
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|&s| s == 429), "{statuses:?}");
    // Even the right token waits for the budget to refill: guessing is
    // limited, not just failing.
    let metrics = server.metrics_text();
    assert!(metrics.contains("qrlaunch_admin_auth_throttled_total 5"), "{metrics}");
}

#[test]
fn secrets_stay_out_of_help_and_logs() {
    let secret = "s3cret-Pa55word-that-must-not-show";
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .arg("--help")
        .env(
            "QRLAUNCH_STORE",
            format!("postgres://qr:{secret}@db.example.com/q?password={secret}"),
        )
        .env("QRLAUNCH_PURGE_URLS", format!("http://u:{secret}@127.0.0.1:1/"))
        .env("QRLAUNCH_PURGE_HEADER", format!("X-Token: {secret}"))
        .env("QRLAUNCH_ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("QRLAUNCH_PURGE_HEADER"), "{text}");
    assert!(
        !text.contains(secret),
        "a secret in --help:
{text}"
    );
    // A purge URL with user info, purging a closed port: the failures are
    // logged without it.
    let closed = free_port();
    let server = Server::with_table(
        TABLE,
        &[
            "--purge-url",
            &format!("http://purger:{secret}@127.0.0.1:{closed}/"),
            "--purge-header",
            &format!("X-Token: {secret}"),
        ],
    );
    server.send_json(Method::PATCH, "/admin/v1/codes/spring24", &json!({"query": "id=1"}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.logs().contains("purge failed") {
        assert!(
            Instant::now() < deadline,
            "no failed purge logged:
{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = server.logs();
    assert!(logs.contains("purger:***@127.0.0.1"), "{logs}");
    assert!(
        !logs.contains(secret),
        "a secret in the logs:
{logs}"
    );
}

#[test]
fn a_stop_ends_the_wait_for_an_unreachable_database() {
    let dir = temp_dir();
    let closed = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--store",
            &format!("postgres://postgres@127.0.0.1:{closed}/nowhere"),
        ])
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Retrying: the first warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("a log line");
        if line.contains("cannot reach PostgreSQL") {
            break;
        }
        assert!(Instant::now() < deadline, "no retry logged");
    }
    let stopped_at = Instant::now();
    signal_child(child.id(), rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("still retrying 5 s after SIGTERM");
    };
    assert!(status.success(), "{status}");
    assert!(stopped_at.elapsed() < Duration::from_secs(3));
}
