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

/// Thousands of changes logged entry by entry (imports of up to 4,096
/// lines are), in batches of every size and single deletes, so the node's
/// overlay merges layers on its background thread and folds into a new
/// base while changes keep coming: every code answers as last written,
/// deleted ones not at all, and the table's count agrees, before the fold,
/// after it, and after more changes on the new base.
#[test]
fn overlay_merges_and_a_compaction_keep_every_answer() {
    let server = Server::with_table(FIXTURE, &[]);
    let fixture_codes = FIXTURE.lines().filter(|l| l.contains(r#""code""#)).count();
    let mut want: std::collections::BTreeMap<String, Option<String>> = Default::default();
    let mut seed = test_seed("overlay_merges_and_a_compaction_keep_every_answer") | 1;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let check = |want: &std::collections::BTreeMap<String, Option<String>>, when: &str| {
        for (code, query) in want {
            let answer = server.scan(&format!("/{code}"));
            match query {
                Some(query) => {
                    assert_eq!(answer.status(), 302, "{code} {when}");
                    let location = answer.headers()["location"].to_str().unwrap().to_string();
                    assert!(
                        location.contains(&format!("query={query}")),
                        "{code} {when}: {location}"
                    );
                }
                None => assert_eq!(answer.status(), 404, "{code} {when}"),
            }
        }
        let live = want.values().filter(|q| q.is_some()).count();
        assert_eq!(
            server.metric(r#"qrlaunch_table_entries{kind="code"}"#) as usize,
            fixture_codes + live,
            "codes counted {when}"
        );
    };
    let mut round = 0;
    // `lines` lines and then some, up to `more`.
    let mut write = |want: &mut std::collections::BTreeMap<String, Option<String>>, lines: u64, more: u64| {
        round += 1;
        let lines = lines + next(more + 1);
        // A key once a batch: an import refuses it twice.
        let codes: std::collections::BTreeSet<String> = (0..lines).map(|_| format!("m{}", next(20_000))).collect();
        let mut body = Vec::new();
        for code in codes {
            body.push(code_line(&code, &format!("v={round}")));
            want.insert(code, Some(format!("v%3D{round}")));
        }
        let response = import(&server, "upsert", body.join("\n"));
        assert_eq!(response.status(), 200, "import {round}");
        for _ in 0..3 {
            let code = format!("m{}", next(20_000));
            let status = server
                .admin(Method::DELETE, &format!("/admin/v1/codes/{code}"))
                .send()
                .unwrap()
                .status();
            assert!(status == 204 || status == 404, "delete {code}: {status}");
            want.insert(code, None);
        }
    };
    // Large batches make large layers; the small ones after each make
    // merges too large for a publish, which go to the background thread.
    // About 3,400 keys: short of the fold (4,096).
    for large in [800, 600, 900] {
        write(&mut want, large, 0);
        for _ in 0..6 {
            write(&mut want, 40, 40);
        }
    }
    check(&want, "before the fold");
    for _ in 0..4 {
        write(&mut want, 400, 0);
    }
    eventually(Duration::from_secs(60), "the overlay folded into a new base", || {
        server.logs().contains("overlay folded into a new base table")
    });
    check(&want, "after the fold");
    for _ in 0..8 {
        write(&mut want, 50, 100);
    }
    check(&want, "after more changes on the new base");
}
