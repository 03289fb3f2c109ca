//! Lookup and handler latency.
//!
//! `cargo bench --bench lookup`. Targets: a code lookup in a 1,000,000-code
//! table at most 100 ns (median), a URL against 100,000 rules at most 1 µs,
//! the User-Agent classifier well under a microsecond.

#[path = "common.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use qrlaunch::edge::http::{ScanOptions, ScanService, ScanState};
use qrlaunch::model::url_key;
use qrlaunch::replication::metrics::Metrics;
use qrlaunch::workload::{self, Mix, RequestKind, Spec};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Enough distinct keys that lookups are not served from one cache line.
const KEYS: usize = 4096;

fn code_lookup(c: &mut Criterion) {
    let spec = Spec {
        codes: 1_000_000,
        rules: 0,
        seed: 42,
    };
    let table = common::table(spec);
    let known: Vec<String> = (0..KEYS)
        .map(|i| workload::code(spec.seed, i * 241 % spec.codes))
        .collect();
    let unknown: Vec<String> = (0..KEYS)
        .map(|i| format!("{}x", workload::code(spec.seed, i)))
        .collect();
    let mut group = c.benchmark_group("code_lookup/1M");
    group.measurement_time(Duration::from_secs(4));
    let mut i = 0;
    group.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(table.code(black_box(&known[i])).is_some())
        })
    });
    // Every code of the table in scrambled order, packed so that reading the
    // key is sequential: each lookup then misses the CPU cache like a real
    // scan of a random poster does.
    let cold: Vec<u8> = (0..spec.codes)
        .flat_map(|i| workload::code(spec.seed, i * 7919 % spec.codes).into_bytes())
        .collect();
    let mut j = 0;
    group.bench_function("hit_cold_cache", |b| {
        b.iter(|| {
            j = (j + 8) % cold.len();
            let code = std::str::from_utf8(&cold[j..j + 8]).expect("ASCII");
            black_box(table.code(black_box(code)).is_some())
        })
    });
    group.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(table.code(black_box(&unknown[i])).is_some())
        })
    });
    group.finish();
}

fn rule_lookup(c: &mut Criterion) {
    let spec = Spec {
        codes: 0,
        rules: 100_000,
        seed: 42,
    };
    let table = common::table(spec);
    let requests = workload::requests(
        spec,
        Mix {
            known_codes: 0,
            legacy_urls: 100,
            unknown: 0,
        },
        KEYS,
    );
    let keys: Vec<String> = requests
        .iter()
        .map(|r| {
            let mut key = String::new();
            url_key::write_request_key(&mut key, "http", &r.host, &r.target).unwrap();
            key
        })
        .collect();
    assert!(
        keys.iter().all(|k| table.rule(k).is_some()),
        "every generated URL matches a rule"
    );
    let mut group = c.benchmark_group("rule_lookup/100k");
    group.measurement_time(Duration::from_secs(4));
    let mut i = 0;
    let mut buffer = String::with_capacity(256);
    group.bench_function("normalize_and_match", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let r = &requests[i];
            url_key::write_request_key(&mut buffer, "http", black_box(&r.host), black_box(&r.target)).unwrap();
            black_box(table.rule(&buffer).is_some())
        })
    });
    group.bench_function("match_prebuilt_key", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(table.rule(black_box(&keys[i])).is_some())
        })
    });
    group.finish();
}

fn handler(c: &mut Criterion) {
    let spec = Spec {
        codes: 1_000_000,
        rules: 10_000,
        seed: 42,
    };
    let requests = workload::requests(spec, Mix::default(), 20_000);
    let pick = |kind: RequestKind| -> Vec<hyper::Request<()>> {
        requests
            .iter()
            .filter(|r| r.kind == kind)
            .take(KEYS)
            .map(|r| {
                hyper::Request::get(r.target.as_str())
                    .header("host", r.host.as_str())
                    .body(())
                    .unwrap()
            })
            .collect()
    };
    let cases = [
        ("code_302", pick(RequestKind::Code)),
        ("legacy_302", pick(RequestKind::Legacy)),
        ("unknown_404", pick(RequestKind::Unknown)),
    ];
    let mut group = c.benchmark_group("handler");
    group.measurement_time(Duration::from_secs(4));
    for (metrics_label, metrics) in [
        ("metrics_on", Metrics::prometheus()),
        ("metrics_off", Metrics::disabled()),
    ] {
        let state = Arc::new(ScanState::serving(common::table(spec), metrics, ScanOptions::default()));
        let service = ScanService::new(state.clone(), "127.0.0.1".parse().unwrap());
        for (name, reqs) in &cases {
            let mut i = 0;
            group.bench_function(format!("{name}/{metrics_label}"), |b| {
                b.iter(|| {
                    i = (i + 1) % reqs.len();
                    black_box(service.handle(black_box(&reqs[i])).status())
                })
            });
        }
        // Keep the histogram's sample buffer from growing without bound.
        state.metrics.upkeep();
    }
    group.finish();
}

/// `/v1/resolve` (what the mini program landing page calls) beside the
/// scans it stands in for, all counted: a code and a legacy URL, plain and
/// marked `scan=1` (counted as `wechat-scan`). Target: the cost of a scan.
fn resolve(c: &mut Criterion) {
    use qrlaunch::model::percent::encoded;
    let spec = Spec {
        codes: 1_000_000,
        rules: 10_000,
        seed: 42,
    };
    let requests = workload::requests(spec, Mix::default(), 20_000);
    let get = |target: String, host: &str| hyper::Request::get(target).header("host", host).body(()).unwrap();
    let pick =
        |kind: RequestKind, make: &dyn Fn(&workload::Request) -> hyper::Request<()>| -> Vec<hyper::Request<()>> {
            requests
                .iter()
                .filter(|r| r.kind == kind)
                .take(KEYS)
                .map(make)
                .collect()
        };
    let counts = Arc::new(qrlaunch::replication::stats::ScanCounts::new(
        Vec::<String>::new(),
        qrlaunch::replication::stats::Days::utc(),
    ));
    let state = Arc::new(
        ScanState::serving(common::table(spec), Metrics::prometheus(), ScanOptions::default()).with_counts(counts),
    );
    let service = ScanService::new(state.clone(), "127.0.0.1".parse().unwrap());
    let url_of = |r: &workload::Request| encoded(&format!("http://{}{}", r.host, r.target));
    let cases = [
        ("code_302", pick(RequestKind::Code, &|r| get(r.target.clone(), &r.host))),
        (
            "resolve_code",
            pick(RequestKind::Code, &|r| {
                get(format!("/v1/resolve?code={}", &r.target[1..]), &r.host)
            }),
        ),
        (
            "resolve_code_scan",
            pick(RequestKind::Code, &|r| {
                get(format!("/v1/resolve?code={}&scan=1", &r.target[1..]), &r.host)
            }),
        ),
        (
            "legacy_302",
            pick(RequestKind::Legacy, &|r| get(r.target.clone(), &r.host)),
        ),
        (
            "resolve_url_scan",
            pick(RequestKind::Legacy, &|r| {
                get(format!("/v1/resolve?url={}&scan=1", url_of(r)), &r.host)
            }),
        ),
    ];
    let mut group = c.benchmark_group("resolve");
    group.measurement_time(Duration::from_secs(4));
    for (name, reqs) in &cases {
        // Every request of a case is answered as it should be.
        let found = reqs
            .iter()
            .filter(|r| service.handle(r).status().as_u16() < 400)
            .count();
        assert_eq!(found, reqs.len(), "{name}: every request resolves");
        let mut i = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(service.handle(black_box(&reqs[i])).status())
            })
        });
    }
    state.metrics.upkeep();
    group.finish();
}

/// The User-Agent classifier, on every example of its table in turn and
/// on the longest (a WeChat UA). Target: well under a microsecond.
fn client_class(c: &mut Criterion) {
    use qrlaunch::model::client_class::{classify, EXAMPLES};
    let mut group = c.benchmark_group("client_class");
    group.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    group.bench_function("every_example_in_turn", |b| {
        b.iter(|| {
            i = (i + 1) % EXAMPLES.len();
            black_box(classify(Some(black_box(EXAMPLES[i].0.as_bytes()))))
        })
    });
    let longest = EXAMPLES.iter().map(|(ua, _)| *ua).max_by_key(|ua| ua.len()).unwrap();
    group.bench_function("longest_example", |b| {
        b.iter(|| black_box(classify(Some(black_box(longest.as_bytes())))))
    });
    group.finish();
}

/// The whole handler for a known code, per client class: the 302 and the
/// pages (in-process, metrics on).
fn answer_per_class(c: &mut Criterion) {
    let spec = Spec {
        codes: 1_000_000,
        rules: 0,
        seed: 42,
    };
    let codes: Vec<String> = (0..KEYS)
        .map(|i| workload::code(spec.seed, i * 241 % spec.codes))
        .collect();
    // All of a core for drawing: the bench measures what drawing costs.
    let mut options = ScanOptions::default();
    options.qr_codes = Arc::new(qrlaunch::edge::http::qr_cache::QrCache::new(
        qrlaunch::edge::http::qr_cache::CAPACITY_BYTES,
        100,
    ));
    let state = Arc::new(ScanState::serving(common::table(spec), Metrics::prometheus(), options));
    let service = ScanService::new(state.clone(), "127.0.0.1".parse().unwrap());
    let agents = [
        ("ios_302", KEYS, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
        ("android_page", KEYS, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36"),
        ("wechat_page", KEYS, "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240705.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003253) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"),
        ("desktop_page", KEYS, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"),
    ];
    // The same desktop page for 64 codes cycled (their QR codes stay in
    // the page cache) and for 4,096 (more than it holds: each one drawn).
    let desktop = agents[3].2;
    let mut group = c.benchmark_group("answer_per_class");
    group.measurement_time(Duration::from_secs(4));
    for (name, n, ua) in agents.into_iter().chain([("desktop_page_64_codes", 64, desktop)]) {
        let reqs: Vec<hyper::Request<()>> = codes[..n]
            .iter()
            .map(|code| {
                hyper::Request::get(format!("/{code}"))
                    .header("host", "go.example.com")
                    .header("user-agent", ua)
                    .body(())
                    .unwrap()
            })
            .collect();
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(service.handle(black_box(&reqs[i])).status())
            })
        });
        state.metrics.upkeep();
    }
    group.finish();
}

/// What one launch-page QR code costs to draw, by URL length: a code's
/// URL, a typical legacy URL, and the longest a page draws
/// (`QrCache::MAX_URL`).
fn qr_draw(c: &mut Criterion) {
    let mut group = c.benchmark_group("qr_draw");
    group.measurement_time(Duration::from_secs(4));
    let lengths = [
        ("code_url_31", "https://go.example.com/3xK9aB7q".to_string()),
        (
            "legacy_url_100",
            format!(
                "https://www.example.com/app/download?channel=poster42&{}",
                "u".repeat(47)
            ),
        ),
        (
            "at_the_cap_512",
            format!("https://www.example.com/app/download?x={}", "a".repeat(512 - 39)),
        ),
    ];
    for (name, url) in lengths {
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(qrlaunch::model::qr::svg(black_box(&url), qrlaunch::model::qr::QrStyle::default()).is_ok())
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    qr_draw,
    code_lookup,
    rule_lookup,
    handler,
    resolve,
    client_class,
    answer_per_class
);
criterion_main!(benches);
