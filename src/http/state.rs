use crate::metrics::Metrics;
use crate::table::{LiveTable, Snapshot, Table};
use hyper::header::HeaderValue;
use ipnet::IpNet;
use std::sync::atomic::{AtomicBool, Ordering};

/// What every request handler shares, behind one `Arc`.
#[derive(Debug)]
pub struct AppState {
    pub table: LiveTable,
    pub metrics: Metrics,
    pub options: ScanOptions,
    ready: AtomicBool,
}

/// Settings of the scan path.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `Cache-Control` of a successful answer, e.g. `public, max-age=60`.
    pub cache_control: HeaderValue,
    /// Peers whose `X-Forwarded-Proto` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl ScanOptions {
    pub fn new(cache_max_age: u32, trusted_proxies: Vec<IpNet>) -> ScanOptions {
        let cache_control =
            HeaderValue::try_from(format!("public, max-age={cache_max_age}")).expect("digits are a valid header value");
        ScanOptions {
            cache_control,
            trusted_proxies,
        }
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions::new(60, crate::http::forwarded::loopback())
    }
}

impl AppState {
    /// State whose table is not loaded yet: `/readyz` answers 503.
    pub fn starting(metrics: Metrics, options: ScanOptions) -> AppState {
        AppState {
            table: LiveTable::default(),
            metrics,
            options,
            ready: AtomicBool::new(false),
        }
    }

    /// State serving `table` at once.
    pub fn ready(table: Table, metrics: Metrics, options: ScanOptions) -> AppState {
        let state = AppState::starting(metrics, options);
        state.publish(Snapshot::new(table));
        state
    }

    /// Makes `snapshot` the one scans read, and marks the service ready.
    pub fn publish(&self, snapshot: Snapshot) {
        self.metrics.table_size(snapshot.code_count(), snapshot.rule_count());
        crate::background::retire(self.table.publish(snapshot));
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}
