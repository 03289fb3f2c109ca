//! Health, readiness and Prometheus metrics.

use super::TABLE;
use crate::support::*;
use std::collections::HashMap;

#[test]
fn health_and_readiness() {
    let server = Server::with_table(TABLE, &[]);
    let health = server.scan("/healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(server.scan("/readyz").status(), 200);
}

/// `name{labels} value` lines, by name and label text.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse::<f64>().unwrap())
        })
        .collect()
}

#[test]
fn metrics_count_requests_and_pass_promtool() {
    let server = Server::with_table(TABLE, &[]);
    for _ in 0..3 {
        assert_eq!(server.scan("/spring24").status(), 302);
    }
    assert_eq!(server.scan("/nope").status(), 404);
    assert_eq!(server.scan("/expired").status(), 410);
    assert_eq!(server.scan("/v1/resolve?code=spring24").status(), 200);
    let response = server.metrics_response();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().unwrap();
    let s = samples(&text);
    assert_eq!(s[r#"qrlaunch_requests_total{route="scan",status="302"}"#], 3.0);
    assert_eq!(s[r#"qrlaunch_requests_total{route="scan",status="404"}"#], 1.0);
    assert_eq!(s[r#"qrlaunch_requests_total{route="scan",status="410"}"#], 1.0);
    assert_eq!(s[r#"qrlaunch_requests_total{route="resolve",status="200"}"#], 1.0);
    assert_eq!(s[r#"qrlaunch_resolve_total{kind="code",outcome="found"}"#], 4.0);
    assert_eq!(s[r#"qrlaunch_resolve_total{kind="none",outcome="not_found"}"#], 1.0);
    assert_eq!(s[r#"qrlaunch_resolve_total{kind="code",outcome="gone"}"#], 1.0);
    let codes = TABLE.lines().filter(|l| l.contains(r#""code""#)).count() as f64;
    assert_eq!(s[r#"qrlaunch_table_entries{kind="code"}"#], codes);
    assert_eq!(
        s[&format!(
            r#"qrlaunch_build_info{{version="{}",commit="{}"}}"#,
            env!("CARGO_PKG_VERSION"),
            env!("QRLAUNCH_COMMIT")
        )],
        1.0
    );
    let bounds: Vec<f64> = s
        .keys()
        .filter_map(|k| k.strip_prefix(r#"qrlaunch_request_duration_seconds_bucket{route="scan",le=""#))
        .filter_map(|rest| rest.trim_end_matches("\"}").parse().ok())
        .collect();
    assert!(
        bounds.contains(&0.00005) && bounds.contains(&0.1),
        "buckets from 50 µs to 100 ms: {bounds:?}"
    );
    // One histogram a route: the three scans above and the one resolve.
    assert_eq!(s[r#"qrlaunch_request_duration_seconds_count{route="scan"}"#], 5.0);
    assert_eq!(s[r#"qrlaunch_request_duration_seconds_count{route="resolve"}"#], 1.0);
    assert!(s.contains_key(r#"qrlaunch_request_duration_seconds_bucket{route="scan",le="+Inf"}"#));
    assert!(text.contains("# TYPE qrlaunch_request_duration_seconds histogram"));
    assert!(!text.contains("spring24"), "no per-code labels");

    let Some(promtool) = require_program("promtool", "prometheus") else {
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}

#[test]
fn metrics_can_be_switched_off() {
    let server = Server::with_table(TABLE, &["--no-metrics"]);
    assert_eq!(server.metrics_response().status(), 404);
    assert_eq!(server.scan("/metrics").status(), 404, "never on the scan listener");
    assert_eq!(server.scan("/spring24").status(), 302);
}
