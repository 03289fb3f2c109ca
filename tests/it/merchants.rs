//! Merchants: QR images that real decoders read back, campaigns of
//! generated codes with tags, pipes that work, and scan counts that
//! survive a stop and a crash.

use crate::support::*;
use reqwest::Method;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    server.cli(args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn qr_images_decode_to_the_public_url_in_every_format_size_and_level() {
    let server = Server::start(&["--public-url", "https://go.example.com/"]);
    let dir = temp_dir();
    let want = "https://go.example.com/spring24";
    let mut decoded = 0;
    for ec in ["L", "M", "Q", "H"] {
        for (size, margin) in [(128, 4), (256, 1), (1024, 8)] {
            let path = format!("/admin/v1/codes/spring24/qr?format=png&size={size}&margin={margin}&ec={ec}");
            let response = server.get_admin(&path);
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.headers()["content-type"], "image/png");
            assert_eq!(response.headers()["qrlaunch-qr-url"], want);
            let file = dir.path().join(format!("{ec}-{size}-{margin}.png"));
            std::fs::write(&file, response.bytes().unwrap()).unwrap();
            let Some(texts) = zbarimg(&file) else { return };
            assert_eq!(texts, [want], "{path}");
            decoded += 1;
        }
    }
    assert_eq!(decoded, 12);
    // SVG, drawn by a real browser, then decoded.
    if let Some(chromium) = Chromium::find() {
        for ec in ["L", "M", "Q", "H"] {
            let svg = server.get_admin(&format!("/admin/v1/codes/spring24/qr?ec={ec}&size=400"));
            assert_eq!(svg.headers()["content-type"], "image/svg+xml");
            let svg_file = dir.path().join(format!("{ec}.svg"));
            std::fs::write(&svg_file, svg.bytes().unwrap()).unwrap();
            let shot = dir.path().join(format!("{ec}-svg.png"));
            chromium.load("qrlaunch-test", &format!("file://{}", svg_file.display()), Some(&shot));
            assert_eq!(zbarimg(&shot).unwrap_or_default(), [want], "SVG at level {ec}");
        }
    }
    // Bad parameters are named; unknown codes are 404.
    for (query, status) in [("format=gif", 400), ("size=10", 400), ("ec=X", 400), ("margin=99", 400)] {
        assert_eq!(
            server
                .get_admin(&format!("/admin/v1/codes/spring24/qr?{query}"))
                .status(),
            status,
            "{query}"
        );
    }
    assert_eq!(server.get_admin("/admin/v1/codes/nope/qr").status(), 404);
    // The CLI writes one file, or one a code.
    let one = dir.path().join("one.png");
    let written = cli(&server, &["code", "qr", "spring24", "-o", one.to_str().unwrap()]);
    assert!(written.status.success(), "{}", stderr(&written));
    assert_eq!(zbarimg(&one).unwrap_or_default(), [want]);
}

/// A campaign as an operator runs it: 500 generated codes for a tag from a
/// pipe, their numbers mapped back to lines, images for all, a bulk change.
#[test]
fn a_campaign_of_generated_codes() {
    let server = Server::start(&["--public-url", "https://go.example.com/"]);
    let dir = temp_dir();
    let lines: String = (0..500)
        .map(|i| format!("{{\"appid\":\"wx1234567890abcdef\",\"path\":\"pages/spring/index\",\"query\":\"n={i}\",\"tags\":[\"spring24\"],\"valid_from\":\"2026-01-05T00:00:00Z\"}}\n"))
        .collect();
    let out = dir.path().join("generated.ndjson");
    let mut import = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args([
            "import",
            "-",
            "--out",
            out.to_str().unwrap(),
            "--admin-url",
            &server.admin,
        ])
        .env("QRLAUNCH_ADMIN_TOKEN", &server.token)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let import = import.wait_with_output().unwrap();
    assert!(import.status.success(), "{}", stderr(&import));
    let generated: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(generated.len(), 500);
    // Line numbers map codes back to the input.
    for g in generated.iter().step_by(50) {
        let line = g["line"].as_u64().unwrap();
        let code = g["code"].as_str().unwrap();
        let stored = json_of(server.get_admin(&format!("/admin/v1/codes/{code}")));
        assert_eq!(stored["query"], format!("n={}", line - 1));
        assert_eq!(stored["tags"], json!(["spring24"]));
    }
    // Listing by tag pages with --after and says when more follow.
    let page = cli(&server, &["code", "ls", "--tag", "spring24", "--limit", "200"]);
    assert_eq!(String::from_utf8_lossy(&page.stdout).lines().count(), 200);
    let more = stderr(&page);
    assert!(more.contains("more entries follow: qrlaunch code ls --after"), "{more}");
    let all = cli(&server, &["code", "ls", "--tag", "spring24", "--all", "--limit", "300"]);
    assert_eq!(String::from_utf8_lossy(&all.stdout).lines().count(), 500);
    // Images of the whole campaign, named by code.
    let images = dir.path().join("qr");
    let written = cli(
        &server,
        &["qr", "--all", "--tag", "spring24", "-o", images.to_str().unwrap()],
    );
    assert!(written.status.success(), "{}", stderr(&written));
    assert_eq!(std::fs::read_dir(&images).unwrap().count(), 500);
    let sample = generated[7]["code"].as_str().unwrap();
    let decoded = zbarimg(&images.join(format!("{sample}.png")));
    if let Some(decoded) = decoded {
        assert_eq!(decoded, [format!("https://go.example.com/{sample}")]);
    }
    // One change for the whole tag, in one transaction.
    let set = cli(&server, &["code", "set", "--tag", "spring24", "--disable"]);
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(stderr(&set).contains("changed 500 entries"));
    let scan = server
        .client()
        .get(format!("{}/{sample}", server.scan))
        .header("host", "go.example.com")
        .send()
        .unwrap();
    assert_eq!(scan.status(), 410);
    // Export and import keep the tags.
    let exported = server.get_admin("/admin/v1/export").text().unwrap();
    assert_eq!(exported.matches("\"tags\":[\"spring24\"]").count(), 500);
    let copy = Server::with_table(&exported, &[]);
    let listed = json_of(copy.get_admin("/admin/v1/codes?tag=spring24&limit=1000"));
    assert_eq!(listed["items"].as_array().unwrap().len(), 500);
}

#[test]
fn pipes_work_and_an_empty_input_is_an_error() {
    let from = Server::start(&[]);
    let to = Server::with_table("", &[]);
    // qrlaunch export | qrlaunch import /dev/stdin
    let mut export = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["export", "--admin-url", &from.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", &from.token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["import", "/dev/stdin", "--admin-url", &to.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", &to.token)
        .stdin(export.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(export.wait().unwrap().success());
    assert!(import.status.success(), "{}", stderr(&import));
    assert_eq!(
        from.get_admin("/admin/v1/export").text().unwrap(),
        to.get_admin("/admin/v1/export").text().unwrap()
    );
    // An empty input is refused, not a silent success.
    let empty = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["import", "-", "--admin-url", &to.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", &to.token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("the input is empty"), "{}", stderr(&empty));
    // qrlaunch export | head -1: no error when the reader goes away.
    let big: String = (0..20_000)
        .map(|i| format!("{{\"code\":\"h{i}\",\"appid\":\"wx1234567890abcdef\",\"path\":\"p\"}}\n"))
        .collect();
    let many = Server::with_table(&big, &[]);
    let mut export = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["export", "--admin-url", &many.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", &many.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(export.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
    }
    let exported = export.wait_with_output().unwrap();
    assert!(first.contains("\"code\":\"h0\""), "{first}");
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert_eq!(stderr(&exported), "", "no broken-pipe message");
}

/// Scans `path` `n` times as each of `uas`, in turn.
fn scan_as(server: &Server, path: &str, uas: &[&str], n: usize) {
    for i in 0..n {
        let response = server
            .client()
            .get(format!("{}{path}", server.scan))
            .header("user-agent", uas[i % uas.len()])
            .send()
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 200 | 302 | 404),
            "{}",
            response.status()
        );
    }
}

fn stats(server: &Server, path: &str) -> Value {
    json_of(server.get_admin(path))
}

#[test]
fn scan_counts_survive_a_clean_stop_and_a_crash_loses_at_most_one_interval() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    // A long interval: only the stop flushes.
    let mut server = Server::start_on(&data, &["--stats-flush", "1h"]);
    scan_as(&server, "/spring24", &[ANDROID, IPHONE, ""], 37);
    // Changes while scanning: tables are replaced, counts must not be lost.
    for i in 0..5 {
        server.send_json(Method::PUT, &format!("/admin/v1/codes/w{i}"), &code_body("p", ""));
        scan_as(&server, "/spring24", &[IPHONE], 2);
    }
    scan_as(&server, "/no-such-code", &[IPHONE], 3);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    drop(server);

    let restarted = Server::start_on(&data, &["--stats-flush", "300ms"]);
    let counted = stats(&restarted, "/admin/v1/codes/spring24/stats");
    // Bots and link previews (`other`) are shown, not totalled.
    assert_eq!(counted["total"]["total"], 35, "{counted}");
    assert_eq!(counted["total"]["android"], 13, "{counted}");
    assert_eq!(counted["total"]["ios"], 12 + 10, "{counted}");
    assert_eq!(counted["total"]["other"], 12, "{counted}");
    assert_eq!(counted["days"].as_array().unwrap().len(), 1);
    let with_other = stats(&restarted, "/admin/v1/codes/spring24/stats?include_other=true");
    assert_eq!(with_other["total"]["total"], 47, "{with_other}");
    assert_eq!(with_other["include_other"], true, "{with_other}");
    assert_eq!(
        restarted
            .get_admin("/admin/v1/codes/spring24/stats?include_other=maybe")
            .status(),
        422
    );
    let not_found = stats(&restarted, "/admin/v1/hosts/(other%20hosts)/stats");
    assert_eq!(not_found["total"]["not_found"], 3, "{not_found}");

    // A crash after a flush interval has passed loses nothing either.
    scan_as(&restarted, "/spring24", &[ANDROID], 20);
    eventually(Duration::from_secs(10), "a flush stored the 20 scans", || {
        stats(&restarted, "/admin/v1/codes/spring24/stats")["total"]["total"] == 55
    });
    restarted.kill9();
    let again = Server::start_on(&data, &[]);
    let counted = stats(&again, "/admin/v1/codes/spring24/stats");
    assert_eq!(counted["total"]["total"], 55, "{counted}");

    // The CLI prints a table, and CSV for spreadsheets.
    let table = cli(&again, &["stats", "spring24"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("android") && text.contains("(UTC)") && text.lines().last().unwrap().ends_with("55"),
        "{text}"
    );
    let with_other = cli(&again, &["stats", "spring24", "--include-other"]);
    let text = String::from_utf8_lossy(&with_other.stdout);
    assert!(text.lines().last().unwrap().ends_with("67"), "{text}");
    let csv = cli(&again, &["stats", "spring24", "--csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.starts_with("day,ios,android,wechat,wechat-scan,inapp,desktop,other,total_without_other\n"),
        "{csv}"
    );
    assert!(csv.trim_end().ends_with("total,22,33,0,0,0,0,12,55"), "{csv}");
}

#[test]
fn a_campaigns_counts_sum_over_its_codes() {
    let table: String = (0..3)
        .map(|i| format!("{{\"code\":\"t{i}\",\"appid\":\"wx1234567890abcdef\",\"path\":\"p\",\"tags\":[\"camp\"]}}\n"))
        .collect::<String>()
        + "{\"code\":\"untagged\",\"appid\":\"wx1234567890abcdef\",\"path\":\"p\"}\n";
    let server = Server::with_table(&table, &[]);
    for (i, n) in [(0, 4), (1, 2), (2, 1)] {
        scan_as(&server, &format!("/t{i}"), &[IPHONE], n);
    }
    scan_as(&server, "/untagged", &[IPHONE], 5);
    let campaign = stats(&server, "/admin/v1/stats?tag=camp");
    assert_eq!(campaign["total"]["total"], 7, "{campaign}");
    assert_eq!(campaign["entries"][0]["key"], "t0", "{campaign}");
    assert_eq!(campaign["entries"][0]["total"], 4, "{campaign}");
    let out = cli(&server, &["stats", "--tag", "camp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("tag camp (codes)") && text.contains("by entry:"),
        "{text}"
    );
    // In a spreadsheet: one row per code, day and class, under a header.
    let out = cli(&server, &["stats", "--tag", "camp", "--csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "tag,code,day,class,scans", "{csv}");
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[1].starts_with("camp,t0,") && rows[1].ends_with(",ios,4"), "{csv}");
    assert!(
        rows.iter().any(|r| r.starts_with("camp,t2,") && r.ends_with(",ios,1")),
        "{csv}"
    );
    assert_eq!(
        server.get_admin("/admin/v1/stats?tag=camp&from=2026-13-01").status(),
        400
    );
}
