//! Resident memory per code at 1,000,000 typical codes (8-character code,
//! ~30-character query, a handful of appids and paths).
//!
//! `cargo bench --bench memory`. Exits non-zero above 72 bytes a code:
//! the table alone must leave room for the process's fixed memory inside
//! the 90 bytes a code a node may take (README, "Scans during background
//! work"); measured 59.5.

#[path = "common.rs"]
mod common;

use qrlaunch::workload::Spec;

const LIMIT_BYTES_PER_CODE: f64 = 72.0;

fn main() {
    let spec = common::codes_spec("MEMORY_BENCH_CODES");
    let codes = spec.codes;
    // Warm the allocator and the generator so their one-off costs are not counted.
    drop(common::table(Spec {
        codes: 1_000,
        rules: 0,
        seed: 7,
    }));
    let before = common::rss_bytes();
    // Entries are generated and inserted one at a time: no input is kept.
    let table = common::table(spec);
    let after = common::rss_bytes();
    assert_eq!(table.code_count(), codes);
    let per_code = (after.saturating_sub(before)) as f64 / codes as f64;
    println!(
        "{codes} codes, {} distinct entry points: RSS {:.1} MiB -> {:.1} MiB, {per_code:.1} bytes per code (limit {LIMIT_BYTES_PER_CODE})",
        table.profile_count(),
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64,
    );
    std::hint::black_box(&table);
    if per_code > LIMIT_BYTES_PER_CODE {
        eprintln!("over the limit of {LIMIT_BYTES_PER_CODE} bytes per code");
        std::process::exit(1);
    }
}
