//! Start-up errors, `check`, `--help`, graceful shutdown.

use super::TABLE;
use crate::support::*;
use std::process::Command;
use std::time::Duration;

fn qrlaunch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qrlaunch"));
    cmd.env_remove("QRLAUNCH_ADMIN_TOKEN");
    cmd
}

#[test]
fn a_bad_table_line_stops_the_start_with_its_line_and_field() {
    let dir_tmp = temp_dir();
    let dir = dir_tmp.path();
    let table = dir.join("table.ndjson");
    std::fs::write(
        &table,
        format!(
            "{}\n\n{{\"code\":\"x\",\"appid\":\"wx12\",\"path\":\"p\"}}\n",
            TABLE.lines().next().unwrap()
        ),
    )
    .unwrap();
    let output = qrlaunch()
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("data"))
        .arg("--table")
        .arg(&table)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3: field `appid`"), "{stderr}");

    let check = qrlaunch().arg("check").arg(&table).output().unwrap();
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("line 3: field `appid`"));
    let good = dir.join("good.ndjson");
    std::fs::write(&good, TABLE).unwrap();
    let check = qrlaunch().arg("check").arg(&good).output().unwrap();
    assert!(check.status.success());
    let codes = TABLE.lines().filter(|l| l.contains(r#""code""#)).count();
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(&format!("{codes} codes")),
        "{check:?}"
    );
}

/// The first start reads `--table` once, importing as it checks: a bad
/// line after thousands of good ones (several of the import's batches,
/// already written inside its transaction) still leaves the store as it
/// was, never initialised, so the next start seeds it from a good file.
#[test]
fn a_table_that_fails_late_writes_nothing_and_the_next_start_seeds() {
    let dir_tmp = temp_dir();
    let dir = dir_tmp.path();
    let data = dir.join("data");
    let code = |i: usize| {
        format!(r#"{{"code":"late{i}","appid":"wx1234567890abcdef","path":"pages/i/index","query":"n={i}"}}"#)
    };
    let mut lines: Vec<String> = (0..10_000).map(code).collect();
    lines.push(r#"{"code":"bad","appid":"wx1234567890abcdef","path":"pages/i/index","query":"?n=1"}"#.into());
    let bad = dir.join("bad.ndjson");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let failure = Server::try_start_on(&data, &["--table", bad.to_str().unwrap()])
        .err()
        .expect("a bad last line stops the start");
    let named = format!("table {}: line 10001: field `query`", bad.display());
    assert!(failure.contains(&named), "{failure}");

    let good = dir.join("good.ndjson");
    std::fs::write(&good, TABLE).unwrap();
    let server = Server::start_on(&data, &["--table", good.to_str().unwrap()]);
    let logs = server.logs();
    assert!(logs.contains("imported into the new store"), "{logs}");
    assert!(logs.contains("table built from the imported table file"), "{logs}");
    assert_eq!(
        server.scan("/late0").status(),
        404,
        "nothing of the failed seed was kept"
    );
    let seeded = answers(&server);
    assert!(
        seeded.iter().any(|(_, status, _)| *status != 404),
        "the good table was seeded"
    );
    drop(server);

    // The first table was built from the file's lines as they were read;
    // a restart builds it from the store. Both answer alike.
    let restarted = Server::start_on(&data, &[]);
    assert!(restarted.logs().contains("table built from a store snapshot"));
    assert_eq!(answers(&restarted), seeded);
}

/// Every code and rule of [`TABLE`] as the node answers it: the path asked,
/// the status, and the `Location` and body.
fn answers(server: &Server) -> Vec<(String, u16, String)> {
    let mut asked = Vec::new();
    for line in TABLE.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(code) = entry["code"].as_str() {
            asked.push(format!("/{code}"));
        }
        if let Some(prefix) = entry["prefix"].as_str() {
            asked.push(format!("/v1/resolve?url={}", percent_encoded(prefix)));
        }
    }
    assert!(asked.len() > 2, "the fixture has codes and rules");
    asked
        .into_iter()
        .map(|path| {
            let response = server.scan(&path);
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = response.text().unwrap();
            (path, status, without_scan_time(&format!("{location} {body}")))
        })
        .collect()
}

/// `answer` with every scan time (unix seconds, which two nodes asked a
/// moment apart need not share) written as `T`.
fn without_scan_time(answer: &str) -> String {
    let mut out = String::with_capacity(answer.len());
    let mut rest = answer;
    while let Some((at, len)) = ["scancode_time=", "scancode_time%3D"]
        .iter()
        .filter_map(|mark| rest.find(mark).map(|at| (at, mark.len())))
        .min()
    {
        out.push_str(&rest[..at + len]);
        out.push('T');
        rest = rest[at + len..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn help_documents_every_flag_and_its_variable() {
    let help = qrlaunch().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--data",
        "--table",
        "--admin-listen",
        "--admin-token-file",
        "--trusted-proxy",
        "--cache-max-age",
        "--header-read-timeout",
        "--shutdown-grace",
        "--threads",
        "--no-metrics",
        "--log",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
    for var in [
        "QRLAUNCH_LISTEN",
        "QRLAUNCH_DATA",
        "QRLAUNCH_TABLE",
        "QRLAUNCH_TRUSTED_PROXIES",
        "QRLAUNCH_ADMIN_TOKEN",
    ] {
        assert!(text.contains(var), "{var} missing from --help");
    }
}

#[test]
fn sigterm_and_sigint_stop_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::with_table(TABLE, &[]);
        // A kept-alive connection with a finished request.
        let client = server.client().clone();
        assert_eq!(
            client.get(format!("{}/spring24", server.scan)).send().unwrap().status(),
            302
        );
        let addr = server.scan_addr().to_string();
        server.signal(signal);
        let status = server.wait_exit(Duration::from_secs(10)).expect("exited within 10 s");
        assert!(status.success(), "SIGTERM/SIGINT exit status {status}");
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "new connections are refused after shutdown"
        );
    }
}
