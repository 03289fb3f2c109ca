//! A short smoke run of the load generator (`qrlaunch-loadtest`) against a
//! started `qrlaunch`: zero errors and a sane count, never a timing.

use crate::support::{require_program, temp_dir, Server, Value};
use std::process::{Command, Output};

const LOADTEST: &str = env!("CARGO_BIN_EXE_qrlaunch-loadtest");
const WORKLOAD: [&str; 6] = ["--codes", "2000", "--rules", "300", "--seed", "7"];

fn loadtest(args: &[&str]) -> Output {
    Command::new(LOADTEST)
        .args(args)
        .output()
        .expect("run qrlaunch-loadtest")
}

/// Runs the generator and returns its JSON report.
fn run_json(args: &[&str]) -> Value {
    let output = loadtest(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "qrlaunch-loadtest {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a JSON line last");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"))
}

#[test]
fn the_load_generator_drives_a_real_server_without_errors() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let table = dir.join("table.ndjson");
    let requests = dir.join("requests.tsv");
    let made = loadtest(&[&["gen-table"][..], &WORKLOAD, &["--out", table.to_str().unwrap()]].concat());
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let lines = std::fs::read_to_string(&table).unwrap();
    assert_eq!(lines.lines().count(), 2300, "2000 codes and 300 rules");
    let made = loadtest(
        &[
            &["gen-requests"][..],
            &WORKLOAD,
            &["--count", "5000", "--out", requests.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let server = Server::start_on(&dir.join("data"), &["--table", table.to_str().unwrap()]);
    let addr = server.scan_addr().to_string();
    let pid = server.pid().to_string();

    // Closed loop, the mix generated in memory: as fast as it goes for 2 s.
    let closed = run_json(
        &[
            &["run", "--addr", &addr, "--connections", "4", "--duration", "2s"][..],
            &WORKLOAD,
            &["--server-pid", &pid, "--watch-cores", "0"],
        ]
        .concat(),
    );
    assert_eq!(closed["mode"], "closed");
    assert_eq!(closed["errors"], serde_json::json!({}), "{closed}");
    assert!(closed["requests"].as_u64().unwrap() > 200, "{closed}");
    assert!(closed["p50_us"].as_f64().unwrap() > 0.0, "{closed}");
    assert!(closed["server_cpu_percent"].as_f64().is_some(), "{closed}");

    // Open loop at 400/s from the request file: about 800 in 2 s, whatever the machine.
    let open = run_json(&[
        "run",
        "--addr",
        &addr,
        "--connections",
        "4",
        "--duration",
        "2s",
        "--rate",
        "400",
        "--requests",
        requests.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(open["mode"], "open");
    assert_eq!(open["errors"], serde_json::json!({}), "{open}");
    let n = open["requests"].as_u64().unwrap();
    assert!((790..=800).contains(&n), "400/s for 2 s is 800 requests: {open}");
    assert!(open["pacer_lag_max_us"].as_f64().is_some(), "{open}");

    // --max-requests bounds a run too.
    let bounded = run_json(&[
        "run",
        "--addr",
        &addr,
        "--connections",
        "2",
        "--duration",
        "30s",
        "--max-requests",
        "300",
        "--json",
        "--codes",
        "2000",
        "--rules",
        "300",
        "--seed",
        "7",
    ]);
    assert_eq!(bounded["requests"], 300, "{bounded}");
    assert!(bounded["seconds"].as_f64().unwrap() < 30.0, "{bounded}");

    // A wrong expectation is counted as an error of kind `status`, not hidden.
    let wrong = dir.join("wrong.tsv");
    std::fs::write(&wrong, "go.example.com\t/no-such-code\t302\n").unwrap();
    let mismatched = run_json(&[
        "run",
        "--addr",
        &addr,
        "--connections",
        "1",
        "--duration",
        "10s",
        "--max-requests",
        "5",
        "--requests",
        wrong.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(mismatched["errors"]["status"], 5, "{mismatched}");
    assert_eq!(mismatched["requests"], 0, "{mismatched}");
    drop(server);
}

#[test]
fn only_loopback_is_ever_a_target() {
    let refused = loadtest(&["run", "--addr", "192.0.2.1:80", "--duration", "1s"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"));
}

#[test]
fn the_nginx_map_carries_the_same_location_qrlaunch_renders() {
    let dir = temp_dir();
    let map = dir.path().join("map.conf");
    let out = loadtest(&[
        "gen-nginx-map",
        "--codes",
        "50",
        "--seed",
        "3",
        "--out",
        map.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&map).unwrap();
    assert!(text.starts_with("map $uri $qr_target {"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("weixin://dl/business/?appid=wx"))
            .count(),
        50
    );
    let code = qrlaunch::workload::code(3, 0);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"/{code}\"")))
        .expect("code 0 is in the map");
    assert!(line.contains("&env_version=release\";"), "{line}");
}

/// `loadtest/first-start.sh` on a small table with the binary under test:
/// it seeds, restarts, prints a row per start and the medians, and leaves
/// no node and no temporary directory behind.
#[test]
fn the_first_start_script_times_a_seed_and_a_restart() {
    let stdout = run_script(
        "first-start.sh",
        &[("CODES", "2000"), ("RULES", "30"), ("ROUNDS", "1"), ("PIN", "")],
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains("(commit")).collect();
    assert_eq!(rows.len(), 2, "one round and the median:\n{stdout}");
    let seconds: Vec<f64> = rows[0]
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    // round, seed s, seed MiB, restart s, restart MiB.
    assert_eq!(seconds.len(), 5, "{}", rows[0]);
    assert!(
        seconds[1] > 0.0 && seconds[2] > 1.0 && seconds[3] > 0.0 && seconds[4] > 1.0,
        "{}",
        rows[0]
    );
}

/// `loadtest/writes.sh` on a small table with the binary under test: the
/// writes are all made and seen, the control thread's CPU is measured, and
/// no node and no temporary directory is left behind.
#[test]
fn the_writes_script_measures_writes_beside_scans() {
    if require_program("python3", "python3").is_none() {
        return;
    }
    let load_cpu = if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        "1"
    } else {
        "0"
    };
    let stdout = run_script(
        "writes.sh",
        &[
            ("CODES", "2000"),
            ("RULES", "30"),
            ("ROUNDS", "1"),
            ("RATE", "500"),
            ("DURATION", "3"),
            ("WRITES", "40"),
            ("WRITE_RATE", "40"),
            ("NODE_CPU", "0"),
            ("LOAD_CPU", load_cpu),
        ],
    );
    assert!(stdout.contains("40 writes each, lost 0"), "{stdout}");
    let cpu: f64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("control thread CPU, s"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a control thread CPU row:\n{stdout}"));
    assert!(cpu >= 0.0, "{stdout}");
}

/// Runs `loadtest/SCRIPT` with the binary under test and `envs`; asserts
/// it succeeded and left none of its temporary directories
/// (`/tmp/qrlaunch-NAME.*`) behind; returns its standard output.
fn run_script(script: &str, envs: &[(&str, &str)]) -> String {
    let prefix = format!("qrlaunch-{}.", script.trim_end_matches(".sh"));
    let before = script_dirs(&prefix);
    let output = Command::new("bash")
        .arg(format!("{}/loadtest/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(env!("CARGO_BIN_EXE_qrlaunch"))
        .env("LOADTEST", LOADTEST)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = script_dirs(&prefix);
    assert!(
        after.iter().all(|name| before.contains(name)),
        "{script} left {after:?}"
    );
    stdout
}

/// The temporary directories a script makes, by their prefix.
fn script_dirs(prefix: &str) -> Vec<std::ffi::OsString> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|name| name.to_string_lossy().starts_with(prefix))
        .collect()
}
