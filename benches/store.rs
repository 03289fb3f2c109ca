//! The store's numbers, end to end through the real binary and real HTTP:
//!
//! 1. a fresh store seeded from a 1,000,000-code table file (`--table`);
//! 2. `POST /admin/v1/import` of the same 1,000,000 lines (upsert), while a
//!    second thread keeps scanning codes and records each scan's latency;
//! 3. a restart on the now full store: time to `/readyz` = 200.
//!
//! `cargo bench --bench store` (env `STORE_BENCH_CODES` changes the size).
//! Targets: import of 1M lines at most 15 s, start-up with 1M codes
//! at most 3 s to ready, scans answered throughout the import.

mod common;

use qrlaunch::workload;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    scan: String,
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server and returns it once `/readyz` answers 200, with the
/// time that took. Its addresses come from the JSON line it prints.
fn start(data: &std::path::Path, table: Option<&std::path::Path>) -> (Server, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qrlaunch"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--log",
        "warn",
        "--data",
    ])
    .arg(data);
    if let Some(table) = table {
        cmd.arg("--table").arg(table);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qrlaunch");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read the addresses line");
    let listening: serde_json::Value = serde_json::from_str(&first).expect("the addresses line is JSON");
    let server = Server {
        child,
        scan: listening["scan"].as_str().expect("scan address").to_string(),
        admin: listening["admin"].as_str().expect("admin address").to_string(),
    };
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if client
            .get(format!("{}/readyz", server.scan))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            return (server, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("server not ready within 120 s");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let spec = common::codes_spec("STORE_BENCH_CODES");
    let codes = spec.codes;
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let table = dir.join("table.ndjson");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&table).unwrap());
        for line in workload::table_lines(spec) {
            serde_json::to_writer(&mut out, &line).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    let size = std::fs::metadata(&table).unwrap().len();
    println!("table: {codes} codes, {:.1} MiB", size as f64 / (1 << 20) as f64);
    let data = dir.join("data");

    let (server, seeded) = start(&data, Some(&table));
    println!(
        "fresh store seeded from --table, to ready: {:.2} s",
        seeded.as_secs_f64()
    );

    // Import the same lines again through the admin API while scanning.
    let token = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let stop = stop.clone();
        let url = server.scan.clone();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut i = 0usize;
            // Bounded: stops when told, or after 10 minutes at the latest.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let code = workload::code(42, i * 7919 % codes);
                let t = Instant::now();
                match client.get(format!("{url}/{code}")).send() {
                    Ok(r) if r.status() == 302 => latencies.push(t.elapsed()),
                    _ => failures += 1,
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (latencies, failures)
        })
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let started = Instant::now();
    let response = client
        .post(format!("{}/admin/v1/import", server.admin))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body(std::fs::File::open(&table).unwrap())
        .send()
        .expect("import request");
    let imported = started.elapsed();
    let status = response.status();
    let body = response.text().unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failures) = scanner.join().unwrap();
    latencies.sort();
    println!(
        "POST /admin/v1/import of {codes} lines: {status} in {:.2} s ({body})",
        imported.as_secs_f64()
    );
    println!(
        "scans during the import: {} answered, {failures} failed; p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    drop(server);

    let (server, restarted) = start(&data, None);
    println!("restart on the full store, to ready: {:.2} s", restarted.as_secs_f64());
    drop(server);
}
