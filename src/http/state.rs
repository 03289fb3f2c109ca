use crate::metrics::Metrics;
use crate::sync::Replica;
use hyper::header::HeaderValue;
use ipnet::IpNet;
use std::sync::Arc;
use std::time::Duration;

/// What every scan handler shares, behind one `Arc`.
#[derive(Debug)]
pub struct ScanState {
    pub replica: Arc<Replica>,
    pub metrics: Arc<Metrics>,
    pub options: ScanOptions,
}

/// Settings of the scan path.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `Cache-Control` of a successful answer, e.g. `public, max-age=60`.
    pub cache_control: HeaderValue,
    /// Peers whose `X-Forwarded-Proto` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `/readyz` says 503 while the table is behind the store by more.
    pub max_lag: Duration,
}

impl ScanOptions {
    pub fn new(cache_max_age: u32, trusted_proxies: Vec<IpNet>) -> ScanOptions {
        let cache_control =
            HeaderValue::try_from(format!("public, max-age={cache_max_age}")).expect("digits are a valid header value");
        ScanOptions {
            cache_control,
            trusted_proxies,
            max_lag: Duration::from_secs(5),
        }
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions::new(60, crate::http::forwarded::loopback())
    }
}

impl ScanState {
    pub fn new(replica: Arc<Replica>, metrics: Arc<Metrics>, options: ScanOptions) -> ScanState {
        ScanState {
            replica,
            metrics,
            options,
        }
    }

    /// State serving `table` at once (benches, in-process tests).
    pub fn serving(table: crate::table::Table, metrics: Metrics, options: ScanOptions) -> ScanState {
        let metrics = Arc::new(metrics);
        let replica = Arc::new(Replica::serving(crate::table::Snapshot::new(table), metrics.clone()));
        ScanState::new(replica, metrics, options)
    }

    pub fn is_ready(&self) -> bool {
        self.replica.is_ready(self.options.max_lag)
    }
}
