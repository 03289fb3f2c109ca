//! The operator CLI as a subprocess against a real server.

use super::FIXTURE;
use crate::support::*;
use std::process::{Command, Output};

fn qrlaunch(server: &Server, args: &[&str]) -> std::process::Output {
    server.cli(args)
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(output.stdout.trim_ascii()).expect("one JSON object")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn codes_and_rules_from_the_command_line() {
    let server = Server::with_table(FIXTURE, &[]);
    let added = stdout_json(&qrlaunch(
        &server,
        &[
            "code",
            "add",
            "--appid",
            "wx1234567890abcdef",
            "--path",
            "pages/a/index",
        ],
    ));
    let generated = added["code"].as_str().unwrap().to_string();
    assert_eq!(generated.len(), 7);
    assert_eq!(server.scan(&format!("/{generated}")).status(), 302);

    let custom = [
        "code",
        "add",
        "--code",
        "cli1",
        "--appid",
        "wx1234567890abcdef",
        "--path",
        "p",
        "--query",
        "a=1&b=2",
    ];
    assert_eq!(stdout_json(&qrlaunch(&server, &custom))["query"], "a=1&b=2");
    assert_eq!(stdout_json(&qrlaunch(&server, &["code", "get", "cli1"]))["path"], "p");
    assert_eq!(
        stdout_json(&qrlaunch(&server, &["code", "set", "cli1", "--disable"]))["disabled"],
        true
    );
    assert_eq!(server.scan("/cli1").status(), 410);
    let listed = qrlaunch(&server, &["code", "ls", "--limit", "2", "--all"]);
    assert!(listed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        6 + 2,
        "example codes plus two"
    );
    assert!(qrlaunch(&server, &["code", "rm", "cli1"]).status.success());
    let gone = qrlaunch(&server, &["code", "get", "cli1"]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("no such code"), "{}", stderr(&gone));

    let prefix = "https://cli.example.com/dl?c=";
    let rule = [
        "rule",
        "add",
        "--prefix",
        prefix,
        "--appid",
        "wx1234567890abcdef",
        "--path",
        "r",
    ];
    assert_eq!(stdout_json(&qrlaunch(&server, &rule))["prefix"], prefix);
    assert_eq!(stdout_json(&qrlaunch(&server, &["rule", "get", prefix]))["path"], "r");
    assert!(qrlaunch(&server, &["rule", "rm", prefix]).status.success());
    assert!(!qrlaunch(&server, &["rule", "get", prefix]).status.success());
}

#[test]
fn errors_name_the_field_and_exit_non_zero() {
    let server = Server::with_table(FIXTURE, &[]);
    let bad = qrlaunch(&server, &["code", "add", "--appid", "wx12", "--path", "p"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).starts_with("qrlaunch: appid: must be `wx`"),
        "{}",
        stderr(&bad)
    );

    let dir_tmp = temp_dir();
    let dir = dir_tmp.path();
    let file = dir.join("bad.ndjson");
    std::fs::write(&file, "{\"code\":\"ok1\",\"appid\":\"wx1234567890abcdef\",\"path\":\"p\"}\n{\"code\":\"z\",\"appid\":\"wx1\",\"path\":\"p\"}\n").unwrap();
    let rejected = qrlaunch(&server, &["import", file.to_str().unwrap()]);
    assert!(!rejected.status.success());
    assert!(
        stderr(&rejected).contains("line 2: field `appid`"),
        "{}",
        stderr(&rejected)
    );
    assert_eq!(server.scan("/ok1").status(), 404, "nothing imported");

    // CSV: the same answer, with the file's own line numbers.
    let csv = dir.join("codes.csv");
    std::fs::write(
        &csv,
        "code,appid,path,query,tags\nok1,wx1234567890abcdef,p,\"a=1\nb=2\",csv\nz,wx1,p,,csv\n",
    )
    .unwrap();
    let rejected = qrlaunch(&server, &["import", csv.to_str().unwrap()]);
    assert!(!rejected.status.success());
    assert!(
        stderr(&rejected).contains("line 4: field `appid`"),
        "{}",
        stderr(&rejected)
    );
    std::fs::write(&csv, "code,appid,path,tags\nok1,wx1234567890abcdef,p,\"csv spring\"\n").unwrap();
    let imported = qrlaunch(&server, &["import", csv.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert_eq!(
        json_of(server.get_admin("/admin/v1/codes/ok1"))["tags"],
        serde_json::json!(["csv", "spring"])
    );
    let not_csv = dir.join("codes.txt");
    std::fs::write(&not_csv, "code,colour\na,red\n").unwrap();
    let refused = qrlaunch(&server, &["import", not_csv.to_str().unwrap(), "--format", "csv"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("`colour`"), "{}", stderr(&refused));

    let wrong_token = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["code", "get", "spring24", "--admin-url", &server.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!wrong_token.status.success());
    assert!(stderr(&wrong_token).contains("Bearer"), "{}", stderr(&wrong_token));
    let unreachable = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["code", "get", "spring24", "--admin-url", "http://127.0.0.1:9"])
        .env("QRLAUNCH_ADMIN_TOKEN", "t")
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(
        stderr(&unreachable).contains("cannot reach the admin API"),
        "{}",
        stderr(&unreachable)
    );
}

#[test]
fn export_to_a_file_then_import_into_another_server() {
    let first = Server::with_table(FIXTURE, &[]);
    let dir_tmp = temp_dir();
    let dir = dir_tmp.path();
    let file = dir.join("export.ndjson");
    assert!(qrlaunch(&first, &["export", file.to_str().unwrap()]).status.success());
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 10);

    let empty = dir.join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    let second = Server::start(&["--table", empty.to_str().unwrap()]);
    let imported = qrlaunch(&second, &["import", file.to_str().unwrap(), "--mode", "insert"]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let again = qrlaunch(&second, &["export"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), exported);
}
