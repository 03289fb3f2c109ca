//! What a single write costs the follower's thread: applying it to the
//! table state and publishing the next snapshot, over a base of 1,000,000
//! codes, for every write from an empty overlay until the follower would
//! compact it (`COMPACT_AT` entries); and what the overlay costs a scan
//! that looks up a base code through it. Larger merges of the overlay's
//! layers are jobs the follower runs on a background thread: here each
//! runs as soon as it is due, timed on its own, and taking its result in
//! (and publishing again) counts as one more publish. Last, what taking
//! in a compaction costs that thread, with writes made while it ran.
//!
//! `cargo bench --bench publish` (env `PUBLISH_BENCH_CODES` changes the
//! base's size). The follower runs on the control thread at normal
//! priority, beside a one-core node's scans, so this is CPU the scans
//! share their core with. Prints the total, the median, p99 and max of one
//! publish, and the lookup's cost with and without the overlay.

#[path = "common.rs"]
mod common;

use qrlaunch::model::domain::Line;
use qrlaunch::model::table::{Snapshot, COMPACT_AT};
use qrlaunch::replication::store::Change;
use qrlaunch::replication::sync::state::StateBuilder;
use qrlaunch::workload;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Lookups timed per case.
const LOOKUPS: usize = 1_000_000;

fn main() {
    let spec = common::codes_spec("PUBLISH_BENCH_CODES");
    let mut builder = StateBuilder::new();
    for line in workload::table_lines(spec) {
        builder.add(line.validate().expect("workload lines are valid"));
    }
    let mut state = builder.finish("bench".into(), 1, None);

    // The writes: half replace base codes, half add new ones.
    let writes: Vec<Change> = (0..COMPACT_AT)
        .map(|i| {
            let line: Line = if i % 2 == 0 {
                workload::code_line(spec.seed, i * 97 % spec.codes.max(1))
            } else {
                workload::code_line(spec.seed + 1_000, i)
            };
            Change::Put(line.validate().expect("workload lines are valid"))
        })
        .collect();
    let names: Vec<String> = (0..LOOKUPS)
        .map(|i| workload::code(spec.seed, i * 7919 % spec.codes.max(1)))
        .collect();

    let bare = lookups(&state.snapshot(), &names);
    let mut times = Vec::with_capacity(writes.len());
    let mut jobs = Vec::new();
    let mut position = 1;
    let mut last: Option<Snapshot> = None;
    for change in writes {
        position += 1;
        let started = Instant::now();
        state.apply(position, [change]);
        let snapshot = state.snapshot();
        let job = state.merge_job();
        times.push(started.elapsed());
        // Dropping the snapshot it replaced is the retire worker's, not timed.
        drop(last.replace(snapshot));
        if let Some(job) = job {
            let started = Instant::now();
            let merged = job.run();
            jobs.push(started.elapsed());
            let started = Instant::now();
            let republish = state.finish_merge(Some(merged)).then(|| state.snapshot());
            times.push(started.elapsed());
            if let Some(snapshot) = republish {
                drop(last.replace(snapshot));
            }
        }
    }
    let snapshot = last.expect("a snapshot");
    let through = lookups(&snapshot, &names);

    times.sort_unstable();
    jobs.sort_unstable();
    let jobs_total: Duration = jobs.iter().sum();
    let total: Duration = times.iter().sum();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "publish: {} single writes over {} codes, each applied and published: total {:.1} ms \
         on the follower's thread, {:.1} µs a write; one publish median {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        COMPACT_AT,
        spec.codes,
        total.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e6 / COMPACT_AT as f64,
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        times[times.len() - 1].as_secs_f64() * 1e6,
    );
    println!(
        "merge jobs (a background thread's): {}, total {:.1} ms, max {:.1} µs",
        jobs.len(),
        jobs_total.as_secs_f64() * 1e3,
        jobs.last().map_or(0.0, |max| max.as_secs_f64() * 1e6),
    );
    println!(
        "lookup of a base code: {bare:.1} ns with no overlay, {through:.1} ns through an overlay of {} entries",
        state.overlay_len()
    );

    // A compaction: a new base built from the last snapshot (a background
    // thread's, not timed) while more writes land; taking it in is the
    // follower's.
    drop(snapshot);
    let (snapshot, built_at) = state.begin_compaction();
    let base = snapshot.compact();
    drop(snapshot);
    let since = COMPACT_AT / 2;
    let mut last = None;
    for i in 0..since {
        position += 1;
        let line = if i % 2 == 0 {
            workload::code_line(spec.seed, i * 89 % spec.codes.max(1))
        } else {
            workload::code_line(spec.seed + 2_000, i)
        };
        state.apply(
            position,
            [Change::Put(line.validate().expect("workload lines are valid"))],
        );
        drop(last.replace(state.snapshot()));
    }
    let started = Instant::now();
    state.install_base(base, built_at);
    let snapshot = state.snapshot();
    let took = started.elapsed();
    drop(last.replace(snapshot));
    println!(
        "taking in a compaction with {since} writes made since it began: {:.1} µs on the follower's thread",
        took.as_secs_f64() * 1e6
    );
}

/// The mean time of a lookup of each of `names` (known codes), in ns.
fn lookups(snapshot: &Snapshot, names: &[String]) -> f64 {
    let started = Instant::now();
    let mut found = 0usize;
    for name in names {
        found += usize::from(black_box(snapshot.code(black_box(name))).is_some());
    }
    let elapsed = started.elapsed();
    assert!(found > names.len() / 2, "the lookups found their codes");
    elapsed.as_secs_f64() * 1e9 / names.len() as f64
}
