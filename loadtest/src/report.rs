//! Latency histogram and the report: text for people, one JSON line for scripts.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies in nanoseconds, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
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
}

/// What one connection (or a whole run) saw.
#[derive(Debug, Clone)]
pub struct Tally {
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl Tally {
    pub fn ok(&mut self, latency: Duration) {
        let nanos = (latency.as_nanos() as u64).clamp(1_000, 60_000_000_000);
        self.latency.record(nanos).expect("value within bounds");
    }

    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        self.latency.add(&other.latency).expect("same bounds");
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
        let us = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1_000.0
            }
        };
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
        }
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
        format!(
            "{} ({} loop{rate}, {} connections, {:.1} s): {} requests, {:.0} req/s, errors: {errors}\n  latency µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            self.label, self.mode, self.connections, self.seconds, self.requests, self.rps, self.p50_us, self.p90_us,
            self.p99_us, self.p999_us, self.max_us
        )
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
            tally.ok(Duration::from_micros(us));
        }
        tally.error(ErrorKind::Timeout);
        let mut other = Tally::default();
        other.ok(Duration::from_millis(50));
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
    }
}
