//! Counting behind a cache: every scan through a real `varnishd` counted
//! exactly once (the origin's counts plus `varnishncsa | qrlaunch ingest`),
//! on one node and in a fleet; fresh `scancode_time`s from cached answers;
//! days in the merchant's time zone; counts per poster.

use crate::support::*;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36";
const WECHAT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN";
const DESKTOP: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const CURL: &str = "curl/8.5.0";

/// A code, a legacy rule that counts by `channel`, on a taken-over host.
const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42"}
{"prefix":"https://www.example.com/app/download","appid":"wx1234567890abcdef","path":"pages/download/index","query":"from=legacy","count_by":"channel"}
{"prefix":"http://www.example.com/app/page","appid":"wx1234567890abcdef","path":"pages/download/index"}"#;

/// One GET through the cache as a phone behind a TLS terminator would
/// send it; the status, the `X-Cache` verdict and the `Location`.
fn get(addr: &str, host: &str, target: &str, ua: &str) -> (u16, String, String) {
    let (status, verdict, location, _) = fetch(addr, host, target, ua, "X-Forwarded-Proto: https\r\n");
    (status, verdict, location)
}

/// One GET with `extra` header lines; also the body.
fn fetch(addr: &str, host: &str, target: &str, ua: &str, extra: &str) -> (u16, String, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the cache");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, header("x-cache"), header("location"), body)
}

/// `varnishncsa` in the shipped format piped into `qrlaunch ingest`, both
/// killed (process groups) when dropped.
struct CacheLog {
    ncsa: Child,
    ingest: Child,
}

impl CacheLog {
    fn start(varnish: &Varnish, to: &Server) -> Option<CacheLog> {
        use std::os::unix::process::CommandExt;
        let program = require_program("varnishncsa", "varnish")?;
        let format = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(["ingest", "--print-format"])
            .output()
            .expect("qrlaunch ingest --print-format");
        let format = String::from_utf8(format.stdout).unwrap();
        let mut ncsa = Command::new(program)
            .arg("-n")
            .arg(&varnish.work)
            .args(["-F", format.trim_end()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start varnishncsa");
        let lines = ncsa.stdout.take().unwrap();
        let ingest = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args([
                "ingest",
                "--format",
                "varnishncsa",
                "--batch-wait",
                "50ms",
                "--admin-url",
                &to.admin,
            ])
            .env("QRLAUNCH_ADMIN_TOKEN", &to.token)
            .stdin(Stdio::from(lines))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start qrlaunch ingest");
        let log = CacheLog { ncsa, ingest };
        // varnishncsa logs from the moment it attaches: wait until a
        // request through the cache has made it all the way in.
        log.sync(varnish, to);
        Some(log)
    }

    /// Returns once every request made through `varnish` so far has been
    /// ingested: a health check goes through after them (logged, and
    /// skipped as not a scan), and ingesting is in order.
    fn sync(&self, varnish: &Varnish, to: &Server) {
        let skipped = || to.metric("qrlaunch_ingested_lines_total{outcome=\"skipped\"}");
        let before = skipped();
        let deadline = Instant::now() + Duration::from_secs(30);
        while skipped() <= before {
            assert!(Instant::now() < deadline, "the cache's log never reached the node");
            let _ = get(&varnish.addr, "go.example.com", "/healthz", CURL);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for CacheLog {
    fn drop(&mut self) {
        kill_group(self.ncsa.id());
        kill_group(self.ingest.id());
        let _ = self.ncsa.wait();
        let _ = self.ingest.wait();
    }
}

/// Scans through the cache: per (host, target, client) how many, and
/// which verdicts the cache gave.
fn scan_mix(varnish: &Varnish) -> BTreeMap<String, u32> {
    let plan: &[(&str, &str, &str, u32)] = &[
        ("go.example.com", "/spring24", IPHONE, 5),
        ("go.example.com", "/spring24", ANDROID, 4),
        ("go.example.com", "/spring24", WECHAT, 3),
        ("go.example.com", "/spring24", DESKTOP, 2),
        ("go.example.com", "/spring24", CURL, 2),
        ("www.example.com", "/app/download?channel=poster1", IPHONE, 3),
        ("www.example.com", "/app/download?channel=poster2", ANDROID, 2),
        ("www.example.com", "/app/download", IPHONE, 1),
        ("go.example.com", "/nope", IPHONE, 2),
        ("www.example.com", "/lost-poster", ANDROID, 3),
    ];
    let mut verdicts = BTreeMap::new();
    for &(host, target, ua, n) in plan {
        for _ in 0..n {
            let (status, verdict, _) = get(&varnish.addr, host, target, ua);
            assert!(matches!(status, 200 | 302 | 404), "{host}{target}: {status}");
            *verdicts.entry(verdict).or_default() += 1;
        }
    }
    verdicts
}

/// The stats at `path`, after every node flushed what it holds.
fn settled(nodes: &[&Server], path: &str) -> Value {
    for node in nodes {
        assert_eq!(node.get_admin(path).status(), 200, "{path}");
    }
    json_of(nodes[0].get_admin(path))
}

/// What `scan_mix` must add up to, exactly.
fn assert_counted(nodes: &[&Server]) {
    let code = settled(nodes, "/admin/v1/codes/spring24/stats");
    let t = &code["total"];
    assert_eq!(
        (
            t["ios"].as_u64(),
            t["android"].as_u64(),
            t["wechat"].as_u64(),
            t["desktop"].as_u64(),
            t["other"].as_u64()
        ),
        (Some(5), Some(4), Some(3), Some(2), Some(2)),
        "{code}"
    );
    assert_eq!(t["total"], 14, "other is left out of the total: {code}");
    let prefix = "https%3A%2F%2Fwww.example.com%2Fapp%2Fdownload";
    let rule = settled(nodes, &format!("/admin/v1/rules/stats?prefix={prefix}"));
    assert_eq!(
        (rule["total"]["ios"].as_u64(), rule["total"]["android"].as_u64()),
        (Some(4), Some(2)),
        "{rule}"
    );
    let posters = settled(nodes, &format!("/admin/v1/rules/stats?prefix={prefix}&by=channel"));
    let by: BTreeMap<String, u64> = posters["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        by,
        BTreeMap::from([("poster1".into(), 3), ("poster2".into(), 2), ("(none)".into(), 1)]),
        "{posters}"
    );
    let go = settled(nodes, "/admin/v1/hosts/go.example.com/stats");
    assert_eq!(go["total"]["not_found"], 2, "{go}");
    let legacy = settled(nodes, "/admin/v1/hosts/www.example.com/stats");
    assert_eq!(legacy["total"]["not_found"], 3, "{legacy}");
}

fn counted_through_varnish(count_source: &str) {
    let server = Server::with_table(
        TABLE,
        &[
            "--public-url",
            "https://go.example.com/",
            "--client-header",
            "X-QR-Client",
            "--count-source",
            count_source,
        ],
    );
    let Some(varnish) = Varnish::start_on(&server, free_port()) else {
        return;
    };
    let Some(log) = CacheLog::start(&varnish, &server) else {
        return;
    };
    let verdicts = scan_mix(&varnish);
    assert!(verdicts.get("HIT").is_some_and(|&n| n > 0), "{verdicts:?}");
    assert!(verdicts.get("MISS").is_some_and(|&n| n > 0), "{verdicts:?}");
    log.sync(&varnish, &server);
    assert_counted(&[&server]);
}

#[test]
fn every_scan_through_varnish_is_counted_once_from_its_log() {
    counted_through_varnish("cache-log");
}

#[test]
fn every_scan_through_varnish_is_counted_once_by_origin_and_log() {
    counted_through_varnish("origin");
}

#[test]
fn a_fleet_behind_one_cache_counts_every_scan_once_in_the_shared_store() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("counting_fleet");
    let (a_dir, b_dir) = (temp_dir(), temp_dir());
    let table = a_dir.path().join("table.ndjson");
    std::fs::write(&table, TABLE).unwrap();
    let common = [
        "--store",
        &url,
        "--sync-poll",
        "50ms",
        "--public-url",
        "https://go.example.com/",
        "--client-header",
        "X-QR-Client",
        "--count-source",
        "cache-log",
    ];
    let mut seeding = common.to_vec();
    seeding.extend(["--table", table.to_str().unwrap()]);
    let a = Server::start_on(&a_dir.path().join("data"), &seeding);
    let b = Server::start_on(&b_dir.path().join("data"), &common);
    let Some(varnish) = Varnish::start_before(&[&a, &b], free_port()) else {
        return;
    };
    // The log goes to one node; the counts are the fleet's.
    let Some(log) = CacheLog::start(&varnish, &a) else {
        return;
    };
    let verdicts = scan_mix(&varnish);
    assert!(verdicts.get("HIT").is_some_and(|&n| n > 0), "{verdicts:?}");
    log.sync(&varnish, &a);
    assert_counted(&[&a, &b]);
    assert_counted(&[&b, &a]);
}

/// `scancode_time` of a scheme URL (the time item of its `query`).
fn scancode_time(url: &str) -> i64 {
    url.split("scancode_time%3D")
        .nth(1)
        .and_then(|rest| rest.split(['&', '"']).next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no scancode_time in {url}"))
}

#[test]
fn a_cached_legacy_answer_carries_the_time_of_the_scan_it_answers() {
    let server = Server::with_table(TABLE, &["--client-header", "X-QR-Client"]);
    let Some(varnish) = Varnish::start_on(&server, free_port()) else {
        return;
    };
    let target = "/app/download?channel=poster9";
    let (status, verdict, first) = get(&varnish.addr, "www.example.com", target, IPHONE);
    assert_eq!((status, verdict.as_str()), (302, "MISS"), "{first}");
    let filled = scancode_time(&first);
    // A later second, served from the cache.
    eventually(Duration::from_secs(5), "the clock moved on a second", || {
        unix_now() > filled
    });
    let (status, verdict, later) = get(&varnish.addr, "www.example.com", target, IPHONE);
    assert_eq!((status, verdict.as_str()), (302, "HIT"), "{later}");
    let served = scancode_time(&later);
    assert!(
        served > filled && served <= unix_now(),
        "{filled} then {served}: {later}"
    );
    // Only the time changed; the marker stays with the cache.
    assert_eq!(
        later.replace(&served.to_string(), "T"),
        first.replace(&filled.to_string(), "T")
    );
    let direct = server
        .client()
        .get(format!("{}{target}", server.scan))
        .header("host", "www.example.com")
        .header("x-forwarded-proto", "https")
        .header("user-agent", IPHONE)
        .send()
        .unwrap();
    assert!(direct.headers().contains_key("qrlaunch-scancode-time"));
    let through = server
        .client()
        .get(varnish.url(target))
        .header("host", "www.example.com")
        .header("x-forwarded-proto", "https")
        .header("user-agent", IPHONE)
        .send()
        .unwrap();
    assert!(
        !through.headers().contains_key("qrlaunch-scancode-time"),
        "{:?}",
        through.headers()
    );

    // A page (Android) is cached whole: the browser puts the time it is
    // opened in the link. The page's rule is on http, which a browser
    // asks for without a TLS terminator in front.
    let Some(chromium) = Chromium::find() else { return };
    let target = "/app/page?channel=poster8";
    let (status, verdict, _, body) = fetch(&varnish.addr, "www.example.com", target, ANDROID, "");
    assert_eq!((status, verdict.as_str()), (200, "MISS"), "{body}");
    let cached = scancode_time(&body);
    eventually(Duration::from_secs(5), "the clock moved on a second", || {
        unix_now() > cached
    });
    let port = varnish.addr.rsplit(':').next().unwrap();
    let rules = format!("--host-resolver-rules=MAP www.example.com 127.0.0.1:{port}");
    // A browser tries https first for a name (not an address) and falls
    // back later: ask for http at once.
    let seen = chromium.load_with(
        ANDROID,
        &format!("http://www.example.com{target}"),
        None,
        &[
            &rules,
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        ],
    );
    let href = seen
        .dom
        .split("id=\"open\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no open link in {}", seen.dom));
    let opened = scancode_time(&href.replace("&amp;", "&"));
    assert!(opened > cached, "cached at {cached}, opened at {opened}: {href}");
    // The page it got is the cached one: its script names that time.
    let served: i64 = seen
        .dom
        .split("var e=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no script in {}", seen.dom));
    assert_eq!(served, cached, "the browser got the page the cache holds");
}

#[test]
fn days_are_the_merchants_days_and_ingest_is_bounded() {
    let server = Server::with_table(
        TABLE,
        &[
            "--public-url",
            "https://go.example.com/",
            "--stats-time-zone",
            "Asia/Shanghai",
            "--count-source",
            "cache-log",
        ],
    );
    // 23:59:59 and 00:00:00 in Shanghai, yesterday there (16:00 UTC is
    // midnight in Shanghai).
    let now = unix_now();
    let shanghai_midnight = (now + 8 * 3600).div_euclid(86_400) * 86_400 - 8 * 3600;
    let yesterday_end = shanghai_midnight - 1;
    let line = |time: i64, ua: &str| {
        format!(r#"{{"time":{time},"host":"go.example.com","target":"/spring24","user_agent":"{ua}","cache":"hit"}}"#)
    };
    let body = [
        line(yesterday_end, IPHONE),
        line(yesterday_end, IPHONE),
        line(shanghai_midnight, ANDROID),
        "not json".to_string(),
        line(now - 500 * 86_400, IPHONE),
        line(now + 86_400, IPHONE),
        r#"{"time":"2026-12-06T08:00:00Z","host":"go.example.com","target":"/spring24","class":"robot"}"#.to_string(),
        String::new(),
    ]
    .join("\n");
    let answer = server
        .admin(Method::POST, "/admin/v1/ingest")
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = json_of(answer);
    assert_eq!(
        (answer["lines"].as_u64(), answer["counted"].as_u64()),
        (Some(7), Some(3)),
        "{answer}"
    );
    assert_eq!(answer["skipped_by"]["malformed"], 2, "{answer}");
    assert_eq!(answer["skipped_by"]["too_old"], 1, "{answer}");
    assert_eq!(answer["skipped_by"]["in_the_future"], 1, "{answer}");
    assert!(answer["errors"][0]["line"] == 4, "{answer}");
    let stats = json_of(server.get_admin("/admin/v1/codes/spring24/stats"));
    assert_eq!(stats["time_zone"], "Asia/Shanghai", "{stats}");
    let days = stats["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{stats}");
    assert_eq!(
        (days[0]["ios"].as_u64(), days[1]["android"].as_u64()),
        (Some(2), Some(1)),
        "{stats}"
    );
    // The later day is today in Shanghai (the date of its midnight).
    let today = stats["to"].as_str().unwrap();
    assert_eq!(days[1]["day"], today, "{stats}");

    // Gzip, as CDNs send their logs.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(line(now, IPHONE).as_bytes()).unwrap();
    let gzipped = server
        .admin(Method::POST, "/admin/v1/ingest")
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(json_of(gzipped)["counted"], 1);
    // Refusals say why, in JSON, and count nothing.
    let refused = |request: reqwest::blocking::RequestBuilder, status: u16, code: &str| {
        let response = request.send().unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(json_of(response)["error"], code);
    };
    let ingest = || server.admin(Method::POST, "/admin/v1/ingest");
    refused(
        ingest().header("content-type", "text/csv").body("a,b"),
        415,
        "unsupported_media_type",
    );
    refused(
        ingest()
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .body("not gzip"),
        400,
        "bad_request",
    );
    let many = line(now, IPHONE) + "\n";
    refused(
        ingest()
            .header("content-type", "application/x-ndjson")
            .body(many.repeat(200_001)),
        413,
        "too_large",
    );
    let without_token = server
        .client()
        .post(format!("{}/admin/v1/ingest", server.admin))
        .header("content-type", "application/x-ndjson")
        .body(line(now, IPHONE))
        .send()
        .unwrap();
    assert_eq!(without_token.status(), 401);
    let stats = json_of(server.get_admin("/admin/v1/codes/spring24/stats?include_other=true"));
    assert_eq!(stats["total"]["total"], 4, "{stats}");
}
