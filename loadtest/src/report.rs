//! Latency histogram and the report: text for people, one JSON line for scripts.

use crate::procstat::Usage;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies in nanoseconds, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` in a [`histogram`] (clamped to its bounds).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let nanos = (d.as_nanos() as u64).clamp(1_000, 60_000_000_000);
    h.record(nanos).expect("value within bounds");
}

fn quantile_us(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1_000.0
    }
}

/// Why a request did not count as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Connect,
    Io,
    Timeout,
    Parse,
    /// Answered with a status other than the expected one.
    Status,
    /// Due in an open-loop run but never sent: its connection was still
    /// behind when the drain time after the deadline ran out.
    Unsent,
}

/// What one connection (or a whole run) saw.
#[derive(Debug, Clone)]
pub struct Tally {
    /// From when each answered request was due (open loop) or sent (closed loop).
    pub latency: Histogram<u64>,
    /// From when each answered request was written: the server's part
    /// (and the network's), without any wait for a busy connection.
    pub service: Histogram<u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: histogram(),
            service: histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl Tally {
    pub fn ok(&mut self, latency: Duration, service: Duration) {
        record(&mut self.latency, latency);
        record(&mut self.service, service);
    }

    pub fn error(&mut self, kind: ErrorKind) {
        self.errors_n(kind, 1);
    }

    pub fn errors_n(&mut self, kind: ErrorKind, n: u64) {
        if n > 0 {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.latency.add(&other.latency).expect("same bounds");
        self.service.add(&other.service).expect("same bounds");
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
    }
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub mode: &'static str,
    pub connections: usize,
    /// Target rate (open loop), requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    pub seconds: f64,
    pub requests: u64,
    pub rps: f64,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Open loop: latency from when each request was written (without the
    /// wait for a busy connection), p99 and p99.9.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_p999_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_max_us: Option<f64>,
    /// Open loop: how late the generator itself released requests, p99.9
    /// and max. Large values mean the generator, not the server, was late.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacer_lag_p999_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacer_lag_max_us: Option<f64>,
    /// CPU use during the run (what `--server-pid` and `--watch-cores` asked for).
    #[serde(flatten)]
    pub usage: Usage,
}

impl Report {
    pub fn new(
        label: &str,
        mode: &'static str,
        connections: usize,
        target_rate: Option<f64>,
        elapsed: Duration,
        tally: &Tally,
    ) -> Report {
        let h = &tally.latency;
        let us = |q: f64| quantile_us(h, q);
        let open = target_rate.is_some();
        let seconds = elapsed.as_secs_f64();
        Report {
            label: label.into(),
            mode,
            connections,
            target_rate,
            seconds,
            requests: h.len(),
            rps: if seconds > 0.0 { h.len() as f64 / seconds } else { 0.0 },
            errors: tally.errors.clone(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: if h.is_empty() { 0.0 } else { h.max() as f64 / 1_000.0 },
            service_p99_us: open.then(|| quantile_us(&tally.service, 0.99)),
            service_p999_us: open.then(|| quantile_us(&tally.service, 0.999)),
            service_max_us: open.then(|| quantile_us(&tally.service, 1.0)),
            pacer_lag_p999_us: None,
            pacer_lag_max_us: None,
            usage: Usage::default(),
        }
    }

    /// Adds the pacer's lateness (open loop).
    pub fn set_pacer_lag(&mut self, lag: &Histogram<u64>) {
        self.pacer_lag_p999_us = Some(quantile_us(lag, 0.999));
        self.pacer_lag_max_us = Some(if lag.is_empty() {
            0.0
        } else {
            lag.max() as f64 / 1_000.0
        });
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn text(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, n)| format!("{k:?}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rate = self.target_rate.map(|r| format!(" at {r:.0}/s")).unwrap_or_default();
        let mut text = format!(
            "{} ({} loop{rate}, {} connections, {:.1} s): {} requests, {:.0} req/s, errors: {errors}\n  latency µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            self.label, self.mode, self.connections, self.seconds, self.requests, self.rps, self.p50_us, self.p90_us,
            self.p99_us, self.p999_us, self.max_us
        );
        if let (Some(p99), Some(p999), Some(max)) = (self.service_p99_us, self.service_p999_us, self.service_max_us) {
            text.push_str(&format!(
                "\n  from send µs: p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}"
            ));
        }
        if let (Some(p999), Some(max)) = (self.pacer_lag_p999_us, self.pacer_lag_max_us) {
            text.push_str(&format!("\n  generator lateness µs: p99.9 {p999:.1}  max {max:.1}"));
        }
        let u = &self.usage;
        let mut cpu = Vec::new();
        if let Some(p) = u.server_cpu_percent {
            cpu.push(format!("server process {p:.0}%"));
        }
        if let Some(n) = u.server_preempted {
            cpu.push(format!("server preempted {n} times"));
        }
        if let Some(p) = u.client_cpu_percent {
            cpu.push(format!("generator {p:.0}%"));
        }
        for (core, p) in &u.core_busy_percent {
            cpu.push(format!("core {core} busy {p:.0}%"));
        }
        if !cpu.is_empty() {
            text.push_str(&format!("\n  cpu: {}", cpu.join(", ")));
        }
        text
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rate_come_from_the_recorded_latencies() {
        let mut tally = Tally::default();
        for us in 1..=1000u64 {
            tally.ok(Duration::from_micros(us), Duration::from_micros(us / 2));
        }
        tally.error(ErrorKind::Timeout);
        let mut other = Tally::default();
        other.ok(Duration::from_millis(50), Duration::from_millis(1));
        other.error(ErrorKind::Timeout);
        tally.merge(&other);
        let report = Report::new("t", "closed", 4, None, Duration::from_secs(2), &tally);
        assert_eq!(report.requests, 1001);
        assert!((report.rps - 500.5).abs() < 1e-9);
        assert!((report.p50_us - 501.0).abs() <= 1.0, "{}", report.p50_us);
        assert!((report.p99_us - 991.0).abs() <= 1.0, "{}", report.p99_us);
        assert!((report.max_us - 50_000.0).abs() <= 50.0, "{}", report.max_us);
        assert_eq!(report.errors[&ErrorKind::Timeout], 2);
        assert_eq!(report.error_count(), 2);
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["requests"], 1001);
        assert_eq!(json["errors"]["timeout"], 2);
        assert!(report.text().contains("Timeout=2"));
        assert!(!report.text().contains("cpu:"), "no CPU line without CPU figures");
        let mut with_cpu = report.clone();
        with_cpu.usage.server_cpu_percent = Some(97.0);
        with_cpu.usage.core_busy_percent = vec![(0, 99.4)];
        assert!(with_cpu.text().contains("server process 97%, core 0 busy 99%"));
        let json: serde_json::Value = serde_json::from_str(&with_cpu.json()).unwrap();
        assert_eq!(json["server_cpu_percent"], 97.0);
        assert_eq!(json["core_busy_percent"], serde_json::json!([[0, 99.4]]));

        let mut unsent = Tally::default();
        unsent.errors_n(ErrorKind::Unsent, 0);
        assert!(unsent.errors.is_empty(), "zero of a kind is not an error");
        unsent.errors_n(ErrorKind::Unsent, 3);
        assert_eq!(
            Report::new("t", "open", 1, Some(10.0), Duration::from_secs(1), &unsent).error_count(),
            3
        );
    }
}
