//! Scan counts: the flush of 1,000,000 changed counters to the store, and
//! the scan path's latency while it runs.
//!
//! `cargo bench --bench counts` (env `COUNTS_BENCH_CODES` changes the size).
//! Every code of a 1,000,000-code table is counted once (one changed
//! counter each), then `stats::flush` drains the table and adds the rows to
//! a SQLite store in a temporary directory, as the service's flusher does.
//! Three rounds: the first inserts the day's rows, the next add to them.
//! Meanwhile one thread keeps answering scans through the real handler and
//! times each; its percentiles are compared with the same thread's while no
//! flush runs. Target: at most 5 s per flush, scans' p99 unchanged.

#[path = "common.rs"]
mod common;

use qrlaunch::edge::http::{ScanOptions, ScanService, ScanState};
use qrlaunch::replication::metrics::Metrics;
use qrlaunch::replication::stats::{self, ScanCounts};
use qrlaunch::replication::store::{sqlite::SqliteStore, Store};
use qrlaunch::workload;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let spec = common::codes_spec("COUNTS_BENCH_CODES");
    let codes = spec.codes;
    let counts = Arc::new(ScanCounts::new(
        Vec::<String>::new(),
        qrlaunch::replication::stats::Days::utc(),
    ));
    let state = Arc::new(
        ScanState::serving(common::table(spec), Metrics::disabled(), ScanOptions::default())
            .with_counts(counts.clone()),
    );
    let names: Vec<String> = (0..codes).map(|i| workload::code(spec.seed, i)).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(runtime.block_on(SqliteStore::open(dir.path())).expect("open the store"));

    // Scans: a few thousand codes cycled, each answer timed.
    let requests: Vec<hyper::Request<()>> = names
        .iter()
        .step_by((codes / 4096).max(1))
        .map(|code| {
            hyper::Request::get(format!("/{code}"))
                .header("host", "go.example.com")
                .body(())
                .unwrap()
        })
        .collect();
    let scan_window = |state: &Arc<ScanState>, busy: &AtomicBool, during: bool| -> Vec<Duration> {
        let service = ScanService::new(state.clone(), "127.0.0.1".parse().unwrap());
        let mut times = Vec::with_capacity(1 << 20);
        let started = Instant::now();
        let mut i = 0;
        // Idle windows last 2 s; windows during a flush last as long as it
        // does (at most 60 s).
        while started.elapsed() < Duration::from_secs(60) {
            if during && !busy.load(Ordering::Acquire) && i > 0 {
                break;
            }
            if !during && started.elapsed() >= Duration::from_secs(2) {
                break;
            }
            let t = Instant::now();
            let status = service.handle(&requests[i % requests.len()]).status();
            times.push(t.elapsed());
            assert_eq!(status, 302);
            i += 1;
            // A scan every ~20 µs, not a busy loop: the flush has the other core.
            while t.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
        times.sort_unstable();
        times
    };

    println!("scan counts: {codes} codes, one changed counter each, flushed to SQLite");
    let idle = scan_window(&state, &AtomicBool::new(false), false);
    report("scans, no flush running", &idle);
    for round in 1..=3 {
        for name in &names {
            let hit = state
                .replica
                .load()
                .code(name)
                .map(|hit| hit.counts[0].fetch_add(1, Ordering::Relaxed));
            assert!(hit.is_some(), "{name} is in the table");
        }
        let busy = AtomicBool::new(true);
        let scans = {
            let (scan_window, state, busy) = (&scan_window, &state, &busy);
            std::thread::scope(|scope| {
                let scanner = scope.spawn(move || scan_window(state, busy, true));
                let started = Instant::now();
                let rows = runtime
                    .block_on(stats::flush(&counts, &state.replica, &store))
                    .expect("flush");
                let took = started.elapsed();
                busy_off(busy);
                println!(
                    "round {round}: flushed {rows} rows in {:.2} s (target <= 5 s)",
                    took.as_secs_f64()
                );
                // One row per changed counter, and the scans counted meanwhile.
                assert!(rows >= codes, "{rows} rows for {codes} changed counters");
                scanner.join().unwrap()
            })
        };
        report(&format!("round {round}: scans during the flush"), &scans);
    }
    let total = runtime
        .block_on(store.counts(
            qrlaunch::replication::store::CountSelection::Key(
                qrlaunch::model::domain::EntryKind::Code,
                names[0].clone(),
            ),
            i32::MIN,
            i32::MAX,
        ))
        .expect("read counts");
    let total: i64 = total.iter().map(|r| r.count).sum();
    assert!(total >= 3, "three rounds counted at least three scans, found {total}");
}

fn busy_off(busy: &AtomicBool) {
    busy.store(false, Ordering::Release);
}

fn report(label: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "{label}: {} scans; µs p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.1}",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    );
}
