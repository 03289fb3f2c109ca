//! A short smoke run of the load generator against a started server:
//! zero errors and a sane count (not a timing).

use crate::support::*;
use std::process::Command;

#[test]
fn the_load_generator_drives_a_server_without_errors() {
    let loadtest = env!("CARGO_BIN_EXE_qrlaunch-loadtest");
    let dir = temp_dir("loadtest");
    let table = dir.join("table.ndjson");
    let workload = ["--codes", "2000", "--rules", "300", "--seed", "7"];
    let made = Command::new(loadtest)
        .arg("gen-table")
        .args(workload)
        .arg("--out")
        .arg(&table)
        .status()
        .unwrap();
    assert!(made.success());
    let server = Server::start_on(&dir.join("data"), &["--table", table.to_str().unwrap()]);
    for rate in [None, Some("300")] {
        let mut cmd = Command::new(loadtest);
        cmd.args([
            "run",
            "--addr",
            server.scan_addr(),
            "--connections",
            "4",
            "--duration",
            "2s",
            "--json",
        ])
        .args(workload);
        if let Some(rate) = rate {
            cmd.args(["--rate", rate]);
        }
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: Value = serde_json::from_slice(output.stdout.trim_ascii()).expect("one JSON line");
        assert_eq!(report["errors"], json!({}), "{report}");
        let requests = report["requests"].as_u64().unwrap();
        match rate {
            // 300/s for 2 s: about 600, whatever the machine.
            Some(_) => assert!((450..=601).contains(&requests), "{report}"),
            None => assert!(requests > 200, "{report}"),
        }
    }
    // Only loopback is ever a target.
    let refused = Command::new(loadtest)
        .args(["run", "--addr", "192.0.2.1:80", "--duration", "1s"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"));
}
