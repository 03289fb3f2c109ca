//! Import (all or nothing) and export (round trip), and scans during an import.

use super::FIXTURE;
use crate::support::*;
use reqwest::Method;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn import(server: &Server, mode: &str, body: String) -> Response {
    server
        .admin(Method::POST, &format!("/admin/v1/import?mode={mode}"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .expect("import")
}

fn code_line(code: &str, query: &str) -> String {
    format!(r#"{{"code":"{code}","appid":"wx1234567890abcdef","path":"pages/i/index","query":"{query}"}}"#)
}

#[test]
fn a_bad_line_rejects_the_whole_import() {
    let server = Server::with_table(FIXTURE, &[]);
    let mut lines: Vec<String> = (0..300).map(|i| code_line(&format!("i{i}"), "a=1")).collect();
    lines[150] = r#"{"code":"i150","appid":"wx12","path":"p"}"#.into();
    lines[200] = "not json".into();
    lines.push(r#"{"code":"i999","appid":"wx1234567890abcdef","path":"/p"}"#.into());
    let response = import(&server, "upsert", lines.join("\n"));
    assert_eq!(response.status(), 422);
    let body = json_of(response);
    assert_eq!(body["error"], "invalid");
    let errors = body["errors"].as_array().unwrap();
    let lines_at_fault: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines_at_fault, [151, 201, 301]);
    assert_eq!(errors[0]["field"], "appid");
    assert_eq!(errors[2]["field"], "path");
    // Nothing applied: not even the good lines before the first bad one.
    assert_eq!(server.scan("/i0").status(), 404);
    assert_eq!(server.get_admin("/admin/v1/codes/i149").status(), 404);
}

#[test]
fn many_bad_lines_report_the_first_hundred() {
    let server = Server::with_table(FIXTURE, &[]);
    let body: Vec<String> = (0..250)
        .map(|i| format!(r#"{{"code":"b{i}","appid":"bad","path":"p"}}"#))
        .collect();
    let response = import(&server, "upsert", body.join("\n"));
    assert_eq!(response.status(), 422);
    let body = json_of(response);
    assert_eq!(body["errors"].as_array().unwrap().len(), 100);
    assert!(body["message"].as_str().unwrap().starts_with("250 bad line"), "{body}");
}

#[test]
fn insert_mode_refuses_existing_keys_and_upsert_replaces_them() {
    let server = Server::with_table(FIXTURE, &[]);
    let body = [code_line("spring24", "x=1"), code_line("fresh1", "x=2")].join("\n");
    let refused = import(&server, "insert", body.clone());
    assert_eq!(refused.status(), 422);
    let refused = json_of(refused);
    assert_eq!(refused["errors"][0]["line"], 1, "{refused}");
    assert_eq!(server.scan("/fresh1").status(), 404, "nothing applied");

    let done = import(&server, "upsert", body + "\n");
    assert_eq!(done.status(), 200);
    let done = json_of(done);
    assert_eq!(
        (done["codes"].as_u64(), done["lines"].as_u64()),
        (Some(2), Some(2)),
        "{done}"
    );
    assert!(server.scan("/spring24").headers()["location"]
        .to_str()
        .unwrap()
        .contains("query=x%3D1"));
    assert_eq!(server.scan("/fresh1").status(), 302);

    let wrong_type = server.admin(Method::POST, "/admin/v1/import").body("x").send().unwrap();
    assert_eq!(wrong_type.status(), 415);
    assert_eq!(import(&server, "merge", String::new()).status(), 400);
}

#[test]
fn export_then_import_into_an_empty_store_reproduces_the_table() {
    let first = Server::with_table(FIXTURE, &[]);
    let tricky = [
        json!({"code": "t1", "appid": "wx1234567890abcdef", "path": "p/中文", "query": "a=1&b=%41 c&u=https%3A%2F%2Fx.y%2F%3Fz%3D1", "fallback_url": "https://example.com/a?b=c", "valid_from": "2025-01-01T08:00:00+08:00", "valid_until": "2031-01-01T00:00:00Z"}),
        json!({"code": "t2", "appid": "wx1234567890abcdef", "path": "p", "env_version": "develop", "disabled": true}),
        json!({"prefix": "https://Old.Example.com:443/dl?c=1", "appid": "wxfedcba0987654321", "path": "q", "query": "k=v"}),
    ];
    for body in &tricky {
        let route = if body.get("prefix").is_some() {
            "/admin/v1/rules"
        } else {
            "/admin/v1/codes"
        };
        assert_eq!(first.send_json(Method::POST, route, body).status(), 201, "{body}");
    }
    let exported = first.get_admin("/admin/v1/export");
    assert_eq!(exported.status(), 200);
    assert_eq!(exported.headers()["content-type"], "application/x-ndjson");
    let exported = exported.text().unwrap();
    assert_eq!(exported.lines().count(), 6 + 4 + 3, "example table plus three entries");

    // A second server whose store holds only what is imported.
    let empty_dir = temp_dir();
    let empty = empty_dir.path().join("table.ndjson");
    std::fs::write(&empty, "").unwrap();
    let second = Server::start(&["--table", empty.to_str().unwrap()]);
    assert_eq!(second.get_admin("/admin/v1/export").text().unwrap(), "");
    let imported = import(&second, "insert", exported.clone());
    assert_eq!(imported.status(), 200, "{:?}", imported.text());
    assert_eq!(second.get_admin("/admin/v1/export").text().unwrap(), exported);
    for path in ["/t1", "/t2", "/spring24", "/summer23"] {
        assert_eq!(first.scan(path).status(), second.scan(path).status(), "{path}");
    }
}

#[test]
fn scans_are_answered_during_a_large_import() {
    let server = Arc::new(Server::with_table(FIXTURE, &[]));
    let lines = 200_000;
    let body: String = (0..lines)
        .map(|i| code_line(&format!("bulk{i}"), "from=import") + "\n")
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut answered, mut failed) = (0u32, 0u32);
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match server
                    .client()
                    .get(format!("{}/spring24", server.scan))
                    .timeout(Duration::from_secs(2))
                    .send()
                {
                    Ok(r) if r.status() == 302 => answered += 1,
                    _ => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (answered, failed)
        })
    };
    let response = import(&server, "upsert", body);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(response.status(), 200);
    let (answered, failed) = scanner.join().unwrap();
    assert_eq!(failed, 0, "scans failed or timed out during the import");
    assert!(answered > 10, "only {answered} scans were answered");
    assert_eq!(server.scan("/bulk199999").status(), 302);
}
