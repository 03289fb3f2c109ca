//! Read latency with and without a concurrent writer: dashmap (sharded
//! read-write locks), papaya (a lock-free map) and our packed `Table`
//! published through arc-swap (`LiveTable`, the chosen design).
//!
//! `cargo bench --bench read_while_write`. Each candidate holds 1,000,000
//! codes; the writer keeps rewriting all of them (maps: insert each key
//! again; `LiveTable`: build a whole new table and swap it in). Criterion
//! reports the typical read; afterwards the bench times single reads one by
//! one and prints p50 / p99 / p99.9 / max, where stalls behind a writer show.

#[path = "common.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use qrlaunch::model::table::LiveTable;
use qrlaunch::workload::{self, Spec};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CODES: usize = 1_000_000;
const KEYS: usize = 4096;
/// Single reads timed for the tail percentiles.
const TAIL_SAMPLES: usize = 300_000;
/// A writer stops by itself after this long even if nobody tells it to.
const WRITER_LIMIT: Duration = Duration::from_secs(120);

/// What the maps store per code: about what the table keeps.
#[derive(Clone)]
struct Value {
    _query: Box<str>,
    profile: u32,
}

type DashMap = dashmap::DashMap<Box<str>, Value, ahash::RandomState>;
type Papaya = papaya::HashMap<Box<str>, Value, ahash::RandomState>;

trait Candidate: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn read(&self, code: &str) -> bool;
    /// One round of writing every entry.
    fn write_round(&self, spec: Spec);
}

struct Dash(DashMap);
struct Pap(Papaya);
struct Live(LiveTable);

fn value(i: usize) -> Value {
    Value {
        _query: format!("id={i:07}&from=poster&ch=s{:03}", i % 997).into(),
        profile: (i % 24) as u32,
    }
}

impl Candidate for Dash {
    fn name(&self) -> &'static str {
        "dashmap"
    }
    fn read(&self, code: &str) -> bool {
        self.0.get(code).is_some_and(|v| v.profile < 24)
    }
    fn write_round(&self, spec: Spec) {
        for i in 0..spec.codes {
            self.0.insert(workload::code(spec.seed, i).into(), value(i));
        }
    }
}

impl Candidate for Pap {
    fn name(&self) -> &'static str {
        "papaya"
    }
    fn read(&self, code: &str) -> bool {
        self.0.pin().get(code).is_some_and(|v| v.profile < 24)
    }
    fn write_round(&self, spec: Spec) {
        let map = self.0.pin();
        for i in 0..spec.codes {
            map.insert(workload::code(spec.seed, i).into(), value(i));
        }
    }
}

impl Candidate for Live {
    fn name(&self) -> &'static str {
        "arc-swap snapshot (LiveTable)"
    }
    fn read(&self, code: &str) -> bool {
        self.0.load().code(code).is_some()
    }
    fn write_round(&self, spec: Spec) {
        self.0.replace(common::table(spec));
    }
}

/// A writer thread that rewrites the candidate until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    handle: JoinHandle<()>,
}

impl Writer {
    fn start(candidate: Arc<dyn Candidate>, spec: Spec) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + WRITER_LIMIT;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    candidate.write_round(spec);
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Writer { stop, rounds, handle }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("writer thread");
        self.rounds.load(Ordering::Relaxed)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Times `TAIL_SAMPLES` single reads; returns (p50, p99, p99.9, max) in ns.
fn tail(candidate: &dyn Candidate, keys: &[String]) -> [u64; 4] {
    let mut samples = Vec::with_capacity(TAIL_SAMPLES);
    for i in 0..TAIL_SAMPLES {
        let key = &keys[i % keys.len()];
        let started = Instant::now();
        black_box(candidate.read(black_box(key)));
        samples.push(started.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    [
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
        *samples.last().unwrap(),
    ]
}

fn read_while_write(c: &mut Criterion) {
    let spec = Spec {
        codes: CODES,
        rules: 0,
        seed: 42,
    };
    let keys: Vec<String> = (0..KEYS).map(|i| workload::code(spec.seed, i * 241 % CODES)).collect();
    let dash = DashMap::with_capacity_and_hasher(CODES, ahash::RandomState::new());
    let pap = Papaya::with_capacity_and_hasher(CODES, ahash::RandomState::new());
    let candidates: Vec<Arc<dyn Candidate>> = vec![
        Arc::new(Dash(dash)),
        Arc::new(Pap(pap)),
        Arc::new(Live(LiveTable::new(common::table(spec)))),
    ];
    for candidate in &candidates {
        candidate.write_round(spec);
    }
    let mut tails = Vec::new();
    let mut group = c.benchmark_group("read_while_write");
    group.measurement_time(Duration::from_secs(5));
    for candidate in &candidates {
        for writing in [false, true] {
            let writer = writing.then(|| Writer::start(candidate.clone(), spec));
            let label = if writing { "with_writer" } else { "idle" };
            let mut i = 0;
            group.bench_function(format!("{}/{label}", candidate.name()), |b| {
                b.iter(|| {
                    i = (i + 1) % KEYS;
                    black_box(candidate.read(black_box(&keys[i])))
                })
            });
            let tail = tail(&**candidate, &keys);
            let rounds = writer.map_or(0, Writer::stop);
            tails.push((candidate.name(), label, tail, rounds));
        }
    }
    group.finish();
    println!("\nsingle-read latency, {TAIL_SAMPLES} reads each (ns; includes ~20 ns of Instant::now):");
    println!(
        "{:<32} {:<12} {:>8} {:>8} {:>8} {:>10} {:>14}",
        "candidate", "writer", "p50", "p99", "p99.9", "max", "writer rounds"
    );
    for (name, label, [p50, p99, p999, max], rounds) in tails {
        println!("{name:<32} {label:<12} {p50:>8} {p99:>8} {p999:>8} {max:>10} {rounds:>14}");
    }
}

criterion_group!(benches, read_while_write);
criterion_main!(benches);
