//! Tables shared by the benches (included with `#[path]`).
#![allow(dead_code)]

use qrlaunch::model::table::{Table, TableBuilder};
use qrlaunch::workload::{self, Spec};

/// Builds the workload table for `spec`.
pub fn table(spec: Spec) -> Table {
    let mut builder = TableBuilder::with_capacity(spec.codes);
    for line in workload::table_lines(spec) {
        builder.insert(&line.validate().expect("workload lines are valid"));
    }
    builder.build()
}

/// The workload of `codes` codes (from the environment variable `var`,
/// default 1,000,000), no rules, seed 42: what the end-to-end benches load.
pub fn codes_spec(var: &str) -> Spec {
    let codes = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    Spec {
        codes,
        rules: 0,
        seed: 42,
    }
}

/// The VmRSS of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line");
    kib * 1024
}
