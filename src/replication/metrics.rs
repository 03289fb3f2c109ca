//! Prometheus metrics for the scan path.
//!
//! Every label combination the service can produce is registered once, at
//! start, and kept as a handle: recording a request is then one atomic add
//! for the counter and one push for the histogram, with no key hashing or
//! registry lookup per request. The recorder is owned here, not installed
//! globally, so tests and benches can build as many services as they like.
//! With metrics disabled the handles are no-ops and `/metrics` answers 404.

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram bucket bounds, 50 µs to 100 ms.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
];

/// Bucket bounds of commit-to-apply time, 1 ms to 30 s.
pub const SYNC_LAG_BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0];

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Scan,
    /// Scans over TLS (`--tls-listen`).
    ScanTls,
    Admin,
    Metrics,
}

impl Listener {
    const ALL: [Listener; 4] = [Listener::Scan, Listener::ScanTls, Listener::Admin, Listener::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Scan => "scan",
            Listener::ScanTls => "scan_tls",
            Listener::Admin => "admin",
            Listener::Metrics => "metrics",
        }
    }

    fn index(self) -> usize {
        Listener::ALL.iter().position(|&l| l == self).unwrap_or(0)
    }
}

/// Why a connection was closed at once, for `qrlaunch_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot and the reserve were taken.
    Capacity = 0,
    /// The client's address held `--max-connections-per-ip` already.
    PerIp = 1,
    /// The TLS handshake failed or did not finish in time (a listener
    /// serving TLS).
    TlsHandshake = 2,
}

impl Refusal {
    const ALL: [Refusal; 3] = [Refusal::Capacity, Refusal::PerIp, Refusal::TlsHandshake];

    fn label(self) -> &'static str {
        match self {
            Refusal::Capacity => "capacity",
            Refusal::PerIp => "per_ip",
            Refusal::TlsHandshake => "tls_handshake",
        }
    }
}

/// How a purge ended, for `qrlaunch_purges_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeOutcome {
    /// Accepted at the first attempt.
    Ok,
    /// Accepted after a retry.
    Retried,
    /// Refused or unreachable after every attempt.
    Failed,
}

impl PurgeOutcome {
    const ALL: [PurgeOutcome; 3] = [PurgeOutcome::Ok, PurgeOutcome::Retried, PurgeOutcome::Failed];

    fn label(self) -> &'static str {
        match self {
            PurgeOutcome::Ok => "ok",
            PurgeOutcome::Retried => "retried",
            PurgeOutcome::Failed => "failed",
        }
    }
}

/// Why an admin write was not acknowledged, for `qrlaunch_write_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// The database refused or failed the commit (disk full, I/O, files gone).
    StoreFailed,
    /// The database could not be reached.
    Unavailable,
    /// Committed, but this node's table did not apply it in time.
    NotApplied,
}

impl WriteFailure {
    const ALL: [WriteFailure; 3] = [
        WriteFailure::StoreFailed,
        WriteFailure::Unavailable,
        WriteFailure::NotApplied,
    ];

    fn label(self) -> &'static str {
        match self {
            WriteFailure::StoreFailed => "store_failed",
            WriteFailure::Unavailable => "unavailable",
            WriteFailure::NotApplied => "not_applied",
        }
    }
}

/// The `route` label: which handler answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/{code}` and legacy URLs: the scan path.
    Scan,
    Resolve,
    Healthz,
    Readyz,
    Metrics,
}

impl Route {
    const ALL: [Route; 5] = [
        Route::Scan,
        Route::Resolve,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
    ];

    fn label(self) -> &'static str {
        match self {
            Route::Scan => "scan",
            Route::Resolve => "resolve",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
        }
    }
}

/// Status codes the service answers with; anything else is counted as `other`.
const STATUSES: [u16; 10] = [200, 302, 400, 404, 405, 410, 414, 500, 503, 0];

/// The `kind` label of `qrlaunch_resolve_total`: what the URL was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Code,
    Rule,
    /// A verification file.
    File,
    /// No rule matched; the host sends such URLs to its origin.
    PassThrough,
    /// Neither a known code nor a URL any rule matches.
    None,
}

/// The `outcome` label of `qrlaunch_resolve_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Found,
    Gone,
    NotFound,
    BadRequest,
}

const KINDS: [(Kind, &str); 5] = [
    (Kind::Code, "code"),
    (Kind::Rule, "rule"),
    (Kind::File, "file"),
    (Kind::PassThrough, "pass_through"),
    (Kind::None, "none"),
];
const OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Found, "found"),
    (Outcome::Gone, "gone"),
    (Outcome::NotFound, "not_found"),
    (Outcome::BadRequest, "bad_request"),
];

/// How an ACME order for one name ended: a certificate stored, or not.
pub const ACME_OUTCOMES: [&str; 2] = ["issued", "failed"];

/// How a call to WeChat's API ends.
pub const WECHAT_OUTCOMES: [&str; 6] = [
    "ok",
    "rate_limited",
    "invalid_page",
    "credentials",
    "error",
    "unreachable",
];

/// What each metric is, for `# HELP` and `# TYPE`.
const DESCRIPTIONS: &[(MetricKind, &str, Option<Unit>, &str)] = &[
    (MetricKind::Counter, "qrlaunch_requests_total", None, "HTTP requests answered, by route and status code."),
    (MetricKind::Counter, "qrlaunch_resolve_total", None, "Scan and resolve lookups, by what matched and how it ended."),
    (MetricKind::Histogram, "qrlaunch_request_duration_seconds", Some(Unit::Seconds), "Time from request parsed to response built, in seconds, by route."),
    (MetricKind::Gauge, "qrlaunch_table_entries", None, "Entries in the live table, by kind."),
    (MetricKind::Counter, "qrlaunch_admin_requests_total", None, "Admin API requests answered, by status code."),
    (MetricKind::Counter, "qrlaunch_admin_auth_failures_total", None, "Admin API requests refused for a missing or wrong token."),
    (MetricKind::Counter, "qrlaunch_wechat_calls_total", None, "Mini program codes asked of WeChat's API, by outcome."),
    (MetricKind::Counter, "qrlaunch_acme_orders_total", None, "ACME certificate orders (new and renewals), by outcome."),
    (MetricKind::Gauge, "qrlaunch_table_position", None, "The change-log position the live table reflects."),
    (MetricKind::Gauge, "qrlaunch_store_position", None, "The store's last committed change-log position, as last seen."),
    (MetricKind::Histogram, "qrlaunch_sync_lag_seconds", Some(Unit::Seconds), "Time from a change's commit (on any node) to this node's table applying it."),
    (MetricKind::Counter, "qrlaunch_feed_reconnects_total", None, "Times the change notification channel to the store was re-established."),
    (MetricKind::Counter, "qrlaunch_resyncs_total", None, "Full rebuilds of the table from a store snapshot after the first."),
    (MetricKind::Counter, "qrlaunch_write_failures_total", None, "Admin writes answered 5xx, by cause."),
    (MetricKind::Gauge, "qrlaunch_connections", None, "Open connections, by listener."),
    (MetricKind::Counter, "qrlaunch_connections_refused_total", None, "Connections closed at once: the listener at its cap and reserve (reason=capacity), the client address at --max-connections-per-ip (reason=per_ip), or a TLS handshake that failed or timed out (reason=tls_handshake)."),
    (MetricKind::Gauge, "qrlaunch_tls_certificate_expiry_seconds", Some(Unit::Seconds), "When the first certificate a TLS listener serves expires (notAfter), UNIX seconds, by listener."),
    (MetricKind::Counter, "qrlaunch_tls_unknown_host_total", None, "TLS handshakes on the scan listener for a host no certificate in --tls-cert-dir holds (or without SNI)."),
    (MetricKind::Counter, "qrlaunch_https_rule_missed_total", None, "404s of plain-http requests from untrusted peers that an https rule would have matched."),
    (MetricKind::Counter, "qrlaunch_query_truncated_total", None, "Legacy scans whose q was shortened to keep the scheme's query within 512 characters."),
    (MetricKind::Counter, "qrlaunch_purges_total", None, "Purge requests to the caches in front, by outcome."),
    (MetricKind::Gauge, "qrlaunch_purge_position", None, "The change-log position whose purges this node has sent (after applying it)."),
    (MetricKind::Counter, "qrlaunch_purge_overflows_total", None, "Times the purge queue was full and everything was purged instead."),
    (MetricKind::Counter, "qrlaunch_stats_rows_flushed_total", None, "Scan-count rows added to the store by this node's flushes."),
    (MetricKind::Counter, "qrlaunch_page_qr_busy_total", None, "Launch pages sent without their QR code because drawing new ones had used its --page-qr-cpu share."),
    (MetricKind::Counter, "qrlaunch_admin_auth_throttled_total", None, "Admin API requests answered 429 because their address failed authentication too often."),
    (MetricKind::Counter, "qrlaunch_ingested_lines_total", None, "Cache log lines taken in through /admin/v1/ingest, by outcome (counted or skipped)."),
    (MetricKind::Gauge, "qrlaunch_build_info", None, "Always 1; the labels say which build is running."),
];

#[derive(Debug, Clone, Copy)]
enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Describes every metric of [`DESCRIPTIONS`] to `recorder`.
fn describe(recorder: &dyn Recorder) {
    for &(kind, name, unit, help) in DESCRIPTIONS {
        match kind {
            MetricKind::Counter => recorder.describe_counter(name.into(), unit, help.into()),
            MetricKind::Gauge => recorder.describe_gauge(name.into(), unit, help.into()),
            MetricKind::Histogram => recorder.describe_histogram(name.into(), unit, help.into()),
        }
    }
}

/// Pre-registered handles plus the exporter that renders them.
pub struct Metrics {
    handle: Option<PrometheusHandle>,
    /// The recorder behind `handle`, and what reads this process's own
    /// numbers (memory, CPU, open files, start time) into it on a scrape.
    process: Option<(
        std::sync::Arc<metrics_exporter_prometheus::PrometheusRecorder>,
        metrics_process::Collector,
    )>,
    requests: Vec<Counter>,
    resolves: Vec<Counter>,
    /// By [`Route`].
    duration: Vec<Histogram>,
    table_codes: Gauge,
    table_rules: Gauge,
    admin_requests: Vec<Counter>,
    admin_auth_failures: Counter,
    /// By [`WECHAT_OUTCOMES`].
    wechat_calls: Vec<Counter>,
    /// By [`ACME_OUTCOMES`].
    acme_orders: Vec<Counter>,
    table_position: Gauge,
    store_position: Gauge,
    sync_lag: Histogram,
    feed_reconnects: Counter,
    resyncs: Counter,
    write_failures: Vec<Counter>,
    connections: Vec<Gauge>,
    /// By listener, then by [`Refusal`].
    connections_refused: Vec<Counter>,
    https_rule_missed: Counter,
    tls_unknown_host: Counter,
    /// By [`Listener`].
    tls_expiry: Vec<Gauge>,
    query_truncated: Counter,
    purges: Vec<Counter>,
    purge_position: Gauge,
    purge_overflows: Counter,
    admin_auth_throttled: Counter,
    page_qr_busy: Counter,
    ingested: [Counter; 2],
    stats_rows_flushed: Counter,
    /// Open connections on every listener, readable (gauges are write-only).
    open_connections: std::sync::atomic::AtomicI64,
}

/// Status codes of the admin API; anything else is counted as `other`.
const ADMIN_STATUSES: [u16; 18] = [
    200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503, 504, 0,
];

impl Metrics {
    /// Metrics recorded and served on `/metrics`.
    pub fn prometheus() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("qrlaunch_request_duration_seconds".into()),
                &DURATION_BUCKETS,
            )
            .expect("bucket list is not empty")
            .set_buckets_for_metric(Matcher::Full("qrlaunch_sync_lag_seconds".into()), &SYNC_LAG_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let mut metrics = Metrics::register(&recorder, Some(recorder.handle()));
        // Process metrics under their usual names (`process_cpu_seconds_total`,
        // `process_resident_memory_bytes`, …), as every exporter has them.
        let collector = metrics_process::Collector::default();
        metrics::with_local_recorder(&recorder, || collector.describe());
        metrics.process = Some((std::sync::Arc::new(recorder), collector));
        metrics
    }

    /// Metrics switched off: every handle is a no-op.
    pub fn disabled() -> Metrics {
        Metrics::register(&metrics::NoopRecorder, None)
    }

    fn register(recorder: &dyn Recorder, handle: Option<PrometheusHandle>) -> Metrics {
        let meta = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        let counter =
            |name: &'static str, labels: Vec<Label>| recorder.register_counter(&Key::from_parts(name, labels), &meta);
        describe(recorder);
        let mut requests = Vec::with_capacity(Route::ALL.len() * STATUSES.len());
        for route in Route::ALL {
            for status in STATUSES {
                let status = if status == 0 {
                    "other".to_string()
                } else {
                    status.to_string()
                };
                requests.push(counter(
                    "qrlaunch_requests_total",
                    vec![Label::new("route", route.label()), Label::new("status", status)],
                ));
            }
        }
        let mut resolves = Vec::with_capacity(KINDS.len() * OUTCOMES.len());
        for (_, kind) in KINDS {
            for (_, outcome) in OUTCOMES {
                resolves.push(counter(
                    "qrlaunch_resolve_total",
                    vec![Label::new("kind", kind), Label::new("outcome", outcome)],
                ));
            }
        }
        let duration = Route::ALL
            .iter()
            .map(|r| {
                recorder.register_histogram(
                    &Key::from_parts(
                        "qrlaunch_request_duration_seconds",
                        vec![Label::new("route", r.label())],
                    ),
                    &meta,
                )
            })
            .collect();
        let gauge =
            |name: &'static str, labels: Vec<Label>| recorder.register_gauge(&Key::from_parts(name, labels), &meta);
        gauge(
            "qrlaunch_build_info",
            vec![
                Label::new("version", env!("CARGO_PKG_VERSION")),
                Label::new("commit", env!("QRLAUNCH_COMMIT")),
            ],
        )
        .set(1.0);
        Metrics {
            handle,
            process: None,
            requests,
            resolves,
            duration,
            table_codes: gauge("qrlaunch_table_entries", vec![Label::new("kind", "code")]),
            table_rules: gauge("qrlaunch_table_entries", vec![Label::new("kind", "rule")]),
            admin_requests: ADMIN_STATUSES
                .iter()
                .map(|&s| {
                    let status = if s == 0 { "other".to_string() } else { s.to_string() };
                    counter("qrlaunch_admin_requests_total", vec![Label::new("status", status)])
                })
                .collect(),
            admin_auth_failures: counter("qrlaunch_admin_auth_failures_total", vec![]),
            wechat_calls: WECHAT_OUTCOMES
                .iter()
                .map(|&o| counter("qrlaunch_wechat_calls_total", vec![Label::new("outcome", o)]))
                .collect(),
            acme_orders: ACME_OUTCOMES
                .iter()
                .map(|&o| counter("qrlaunch_acme_orders_total", vec![Label::new("outcome", o)]))
                .collect(),
            table_position: gauge("qrlaunch_table_position", vec![]),
            store_position: gauge("qrlaunch_store_position", vec![]),
            sync_lag: recorder.register_histogram(&Key::from_name("qrlaunch_sync_lag_seconds"), &meta),
            feed_reconnects: counter("qrlaunch_feed_reconnects_total", vec![]),
            resyncs: counter("qrlaunch_resyncs_total", vec![]),
            write_failures: WriteFailure::ALL
                .iter()
                .map(|f| counter("qrlaunch_write_failures_total", vec![Label::new("cause", f.label())]))
                .collect(),
            connections: Listener::ALL
                .iter()
                .map(|l| gauge("qrlaunch_connections", vec![Label::new("listener", l.as_str())]))
                .collect(),
            connections_refused: Listener::ALL
                .iter()
                .flat_map(|l| {
                    Refusal::ALL.iter().map(|r| {
                        counter(
                            "qrlaunch_connections_refused_total",
                            vec![Label::new("listener", l.as_str()), Label::new("reason", r.label())],
                        )
                    })
                })
                .collect(),
            https_rule_missed: counter("qrlaunch_https_rule_missed_total", vec![]),
            tls_unknown_host: counter("qrlaunch_tls_unknown_host_total", vec![]),
            tls_expiry: Listener::ALL
                .iter()
                .map(|l| {
                    gauge(
                        "qrlaunch_tls_certificate_expiry_seconds",
                        vec![Label::new("listener", l.as_str())],
                    )
                })
                .collect(),
            query_truncated: counter("qrlaunch_query_truncated_total", vec![]),
            purges: PurgeOutcome::ALL
                .iter()
                .map(|o| counter("qrlaunch_purges_total", vec![Label::new("outcome", o.label())]))
                .collect(),
            purge_position: gauge("qrlaunch_purge_position", vec![]),
            purge_overflows: counter("qrlaunch_purge_overflows_total", vec![]),
            admin_auth_throttled: counter("qrlaunch_admin_auth_throttled_total", vec![]),
            page_qr_busy: counter("qrlaunch_page_qr_busy_total", vec![]),
            ingested: ["counted", "skipped"]
                .map(|outcome| counter("qrlaunch_ingested_lines_total", vec![Label::new("outcome", outcome)])),
            stats_rows_flushed: counter("qrlaunch_stats_rows_flushed_total", vec![]),
            open_connections: std::sync::atomic::AtomicI64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.handle.is_some()
    }

    /// Counts one answered request and its duration.
    pub fn request(&self, route: Route, status: u16, seconds: f64) {
        let route_index = Route::ALL.iter().position(|&r| r == route).unwrap_or(0);
        let status_index = STATUSES.iter().position(|&s| s == status).unwrap_or(STATUSES.len() - 1);
        self.requests[route_index * STATUSES.len() + status_index].increment(1);
        self.duration[route_index].record(seconds);
    }

    pub fn resolve(&self, kind: Kind, outcome: Outcome) {
        let kind_index = KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
        let outcome_index = OUTCOMES.iter().position(|(o, _)| *o == outcome).unwrap_or(0);
        self.resolves[kind_index * OUTCOMES.len() + outcome_index].increment(1);
    }

    pub fn table_size(&self, codes: usize, rules: usize) {
        self.table_codes.set(codes as f64);
        self.table_rules.set(rules as f64);
    }

    pub fn admin_request(&self, status: u16) {
        let index = ADMIN_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(ADMIN_STATUSES.len() - 1);
        self.admin_requests[index].increment(1);
    }

    /// One mini program code asked of WeChat, ending in `outcome` (one of
    /// [`WECHAT_OUTCOMES`]).
    pub fn wechat_call(&self, outcome: &str) {
        if let Some(i) = WECHAT_OUTCOMES.iter().position(|&o| o == outcome) {
            self.wechat_calls[i].increment(1);
        }
    }

    /// One ACME order ending in `outcome` (one of [`ACME_OUTCOMES`]).
    pub fn acme_order(&self, outcome: &str) {
        if let Some(i) = ACME_OUTCOMES.iter().position(|&o| o == outcome) {
            self.acme_orders[i].increment(1);
        }
    }

    pub fn admin_auth_failure(&self) {
        self.admin_auth_failures.increment(1);
    }

    pub fn table_position(&self, position: i64) {
        self.table_position.set(position as f64);
    }

    pub fn store_position(&self, position: i64) {
        self.store_position.set(position as f64);
    }

    /// One applied change, `seconds` after its commit.
    pub fn sync_lag(&self, seconds: f64) {
        self.sync_lag.record(seconds);
    }

    pub fn feed_reconnect(&self) {
        self.feed_reconnects.increment(1);
    }

    pub fn resync(&self) {
        self.resyncs.increment(1);
    }

    pub fn connection_opened(&self, listener: Listener) {
        self.connections[listener.index()].increment(1.0);
        self.open_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn connection_closed(&self, listener: Listener) {
        self.connections[listener.index()].decrement(1.0);
        self.open_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the first certificate `listener` serves expires, UNIX seconds.
    pub fn tls_expiry(&self, listener: Listener, unix_seconds: i64) {
        if unix_seconds != i64::MAX {
            self.tls_expiry[listener.index()].set(unix_seconds as f64);
        }
    }

    pub fn tls_unknown_host(&self) {
        self.tls_unknown_host.increment(1);
    }

    pub fn https_rule_missed(&self) {
        self.https_rule_missed.increment(1);
    }

    pub fn query_truncated(&self) {
        self.query_truncated.increment(1);
    }

    pub fn purge(&self, outcome: PurgeOutcome) {
        let index = PurgeOutcome::ALL.iter().position(|&o| o == outcome).unwrap_or(0);
        self.purges[index].increment(1);
    }

    /// Open connections on every listener.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn connection_refused(&self, listener: Listener, reason: Refusal) {
        self.connections_refused[listener.index() * Refusal::ALL.len() + reason as usize].increment(1);
    }

    /// Purges for every change up to `position` have been sent.
    pub fn purge_position(&self, position: i64) {
        self.purge_position.set(position as f64);
    }

    pub fn purge_overflow(&self) {
        self.purge_overflows.increment(1);
    }

    pub fn stats_flushed(&self, rows: usize) {
        self.stats_rows_flushed.increment(rows as u64);
    }

    /// Cache log lines ingested: counted and skipped.
    pub fn ingested(&self, counted: u64, skipped: u64) {
        self.ingested[0].increment(counted);
        self.ingested[1].increment(skipped);
    }

    pub fn page_qr_busy(&self) {
        self.page_qr_busy.increment(1);
    }

    pub fn admin_auth_throttled(&self) {
        self.admin_auth_throttled.increment(1);
    }

    pub fn write_failure(&self, cause: WriteFailure) {
        let index = WriteFailure::ALL.iter().position(|&c| c == cause).unwrap_or(0);
        self.write_failures[index].increment(1);
    }

    /// The Prometheus text exposition, or `None` when metrics are disabled.
    pub fn render(&self) -> Option<String> {
        if let Some((recorder, collector)) = &self.process {
            metrics::with_local_recorder(&**recorder, || collector.collect());
        }
        self.handle.as_ref().map(PrometheusHandle::render)
    }

    /// Drains recorded histogram samples into their buckets. Must run
    /// periodically, or samples pile up in memory between scrapes.
    pub fn upkeep(&self) {
        if let Some(handle) = &self.handle {
            handle.run_upkeep();
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("enabled", &self.enabled()).finish()
    }
}
