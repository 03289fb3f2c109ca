//! What a platform engineer meets first: the version names its commit,
//! logs a collector can read, process metrics, flags whose environment
//! twins take the usual yes/no spellings, a way to start empty, a store
//! from a newer release refused with both versions named, and QR images
//! that would be wrong on a poster said to be so.

use crate::support::*;
use std::process::Command;

fn qrlaunch(server: &Server, args: &[&str]) -> std::process::Output {
    server.cli(args)
}

#[test]
fn the_version_names_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        version.starts_with(&format!("qrlaunch {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(version.contains(&head), "{version} names {head}");
        // Tracked files that differ from HEAD (as when this binary was built) say so.
        let dirty = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|s| !s.stdout.is_empty());
        assert_eq!(version.contains(&format!("{head}-dirty")), dirty, "{version}");
    }
}

#[test]
fn json_logs_are_one_object_a_line_and_metrics_include_the_process() {
    let server = Server::start(&["--log-format", "json"]);
    assert_eq!(server.scan("/spring24").status(), 302);
    let logs = server.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let object: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["timestamp", "level", "target", "fields"] {
            assert!(object.get(field).is_some(), "{field} missing: {line}");
        }
        assert!(!line.contains('\u{1b}'), "no colour codes: {line}");
    }
    assert!(lines.iter().any(|l| l.contains("admin API on")), "{logs}");
    let metrics = server.metrics_text();
    for series in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        let value = metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{series} missing"));
        assert!(value > 0.0, "{series} {value}");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with("process_cpu_seconds_total ")),
        "CPU time"
    );
}

#[test]
fn boolean_twins_take_yes_and_no_and_no_seed_starts_empty() {
    let dir = temp_dir();
    let start = |name: &str, env: &[(&str, &str)]| {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Server::try_start_with(&dir.path().join(name), &[], &move |command| {
            for (k, v) in &env {
                command.env(k, v);
            }
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let empty = start("empty", &[("QRLAUNCH_NO_SEED", "yes"), ("QRLAUNCH_ASSUME_HTTPS", "1")]);
    assert_eq!(empty.get_admin("/admin/v1/codes/spring24").status(), 404);
    let codes = json_of(empty.get_admin("/admin/v1/codes"));
    assert_eq!(codes["items"], serde_json::json!([]));
    let seeded = start(
        "seeded",
        &[("QRLAUNCH_NO_SEED", "no"), ("QRLAUNCH_ASSUME_HTTPS", "off")],
    );
    assert_eq!(seeded.get_admin("/admin/v1/codes/spring24").status(), 200);
    drop((empty, seeded));
    // A value that is neither is an error naming the variable's flag.
    let refused = Server::try_start_with(&dir.path().join("bad"), &[], &|command| {
        command.env("QRLAUNCH_NO_SEED", "perhaps");
    });
    let message = refused.err().expect("refused");
    assert!(message.contains("--no-seed"), "{message}");
    // --no-seed and --table say opposite things.
    let both = Server::try_start_on(&dir.path().join("both"), &["--no-seed", "--table", "/dev/null"]);
    assert!(both.err().expect("refused").contains("opposite things"));
}

#[test]
fn a_store_from_a_newer_release_is_refused_naming_both_versions() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    drop(Server::start_on(&data, &[]));
    let db = rusqlite::Connection::open(data.join("qrlaunch.db")).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let refused = Server::try_start_on(&data, &[]).err().expect("refused");
    assert!(
        refused.contains("schema version 99, newer than this build's"),
        "{refused}"
    );

    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("future");
    drop(Server::start_on(&dir.path().join("pg"), &["--store", &url]));
    cluster.psql(
        "future",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from the future', TRUE, '\\x00', 0)",
    );
    let refused = Server::try_start_on(&dir.path().join("pg2"), &["--store", &url])
        .err()
        .expect("refused");
    assert!(
        refused.contains("schema version 99999, newer than this build's"),
        "{refused}"
    );
}

#[test]
fn qr_images_of_a_loopback_address_are_flagged_and_not_written_in_bulk() {
    let server = Server::start(&[]);
    let image = server.get_admin("/admin/v1/codes/spring24/qr?format=png");
    let warning = image.headers()["qrlaunch-qr-warning"].to_str().unwrap().to_string();
    assert!(warning.contains("--public-url"), "{warning}");
    let dir = temp_dir();
    let one = qrlaunch(
        &server,
        &[
            "code",
            "qr",
            "spring24",
            "-o",
            dir.path().join("one.png").to_str().unwrap(),
        ],
    );
    assert!(one.status.success());
    assert!(String::from_utf8_lossy(&one.stderr).contains("warning: this image encodes"));
    let out = dir.path().join("all");
    let refused = qrlaunch(&server, &["qr", "--all", "-o", out.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-loopback"));
    assert_eq!(
        std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0),
        0,
        "nothing written"
    );
    let written = qrlaunch(
        &server,
        &["qr", "--all", "--allow-loopback", "-o", out.to_str().unwrap()],
    );
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));

    let public = Server::start(&["--public-url", "https://go.example.com"]);
    let image = public.get_admin("/admin/v1/codes/spring24/qr");
    assert!(image.headers().get("qrlaunch-qr-warning").is_none());
}

/// Every metric name an expression reads.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("qrlaunch_") || w.starts_with("process_"))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_shipped_alerts_pass_promtool_and_the_dashboard_reads_only_real_metrics() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let alerts = std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).unwrap();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy.join("grafana/qrlaunch.json")).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 10);
    let server = Server::start(&[]);
    assert_eq!(server.scan("/spring24").status(), 302);
    let metrics = server.metrics_text();
    for name in metric_names(&alerts).into_iter().chain(metric_names(&exprs.join("\n"))) {
        let base = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            metrics.contains(&format!("# TYPE {base} ")),
            "{name} is read by deploy/ but not served on /metrics"
        );
    }
    assert!(
        metrics.contains(&format!("commit=\"{}\"", env!("QRLAUNCH_COMMIT"))),
        "build info names the commit"
    );
    let Some(promtool) = require_program("promtool", "prometheus") else {
        return;
    };
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(deploy.join("prometheus"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = require_program("systemd-analyze", "systemd") else {
        return;
    };
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let unit = std::fs::read_to_string(deploy.join("qrlaunch.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/qrlaunch serve"));
    // verify wants the binary to exist: point it at the one just built.
    let dir = temp_dir();
    let path = dir.path().join("qrlaunch.service");
    std::fs::write(&path, unit.replace("/usr/bin/qrlaunch", env!("CARGO_BIN_EXE_qrlaunch"))).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("qrlaunch.service"), "systemd-analyze verify: {said}");
    // Every setting of the example environment file is a real flag's twin.
    let env = std::fs::read_to_string(deploy.join("qrlaunch.env")).unwrap();
    let help = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for line in env.lines().map(|l| l.trim_start_matches('#')) {
        if let Some((name, _)) = line.split_once('=').filter(|(n, _)| n.starts_with("QRLAUNCH_")) {
            let named = help.contains(&format!("env: {name}=")) || help.contains(&format!("env: {name}]"));
            assert!(named, "{name} is no flag's twin");
        }
    }
}

#[test]
fn a_backup_taken_under_writes_restores_to_one_consistent_moment() {
    let server = Server::start(&["--no-seed"]);
    let (admin, token) = (server.admin.clone(), server.token.clone());
    let writer = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        for i in 0..150 {
            let created = client
                .post(format!("{admin}/admin/v1/codes"))
                .bearer_auth(&token)
                .json(&json!({"code": format!("b{i:03}"), "appid": "wx1234567890abcdef", "path": "pages/a"}))
                .send()
                .unwrap();
            assert_eq!(created.status(), 201);
        }
    });
    eventually(std::time::Duration::from_secs(30), "some codes are written", || {
        server.get_admin("/admin/v1/codes/b020").status() == 200
    });
    let dir = temp_dir();
    let file = dir.path().join("store.backup");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(args)
            .output()
            .unwrap()
    };
    let data = server.data.to_str().unwrap().to_string();
    let backup = qrlaunch(&server, &["backup", file.to_str().unwrap()]);
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let info: Value = serde_json::from_slice(backup.stdout.trim_ascii()).unwrap();
    writer.join().unwrap();
    let taken = info["codes"].as_u64().unwrap();
    assert!((21..=150).contains(&taken), "{info}");
    // Not over an existing file, not into a running node's directory, not
    // over a store.
    assert!(!qrlaunch(&server, &["backup", file.to_str().unwrap()]).status.success());
    let busy = run(&["restore", file.to_str().unwrap(), "--data", &data]);
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("another qrlaunch"),
        "{busy:?}"
    );
    let target = dir.path().join("restored");
    let restored = run(&["restore", file.to_str().unwrap(), "--data", target.to_str().unwrap()]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let restored: Value = serde_json::from_slice(restored.stdout.trim_ascii()).unwrap();
    assert_eq!(restored["position"], info["position"]);
    assert_ne!(
        restored["epoch"], info["epoch"],
        "a restored store has an epoch of its own"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the copy is for its owner only: {mode:o}");
    let again = run(&["restore", file.to_str().unwrap(), "--data", target.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("holds a store already"));
    assert!(target.join("qrlaunch.db.restored").exists(), "marked as restored");
    // A cache in front holds an answer from before the restore; the node
    // that first serves the restored store purges it.
    let cache_port = free_port();
    let varnish = Varnish::start_on(&server, cache_port);
    let through_cache = || {
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{cache_port}/b000"))
            .send()
            .unwrap()
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    if varnish.is_some() {
        through_cache();
        assert_eq!(through_cache(), "HIT", "cached before the restored node starts");
    }
    // The copy is one moment: the first N codes in order, at its position.
    let purge = format!("http://127.0.0.1:{cache_port}");
    let copy = Server::start_on(&target, &["--purge-url", &purge, "--purge-header", PURGE_HEADER]);
    if varnish.is_some() {
        eventually(
            std::time::Duration::from_secs(20),
            "the restored node purged the cache",
            || through_cache() == "MISS",
        );
    }
    eventually(
        std::time::Duration::from_secs(20),
        "the mark is removed once served",
        || !target.join("qrlaunch.db.restored").exists(),
    );
    let listed = json_of(copy.get_admin("/admin/v1/codes?limit=1000"));
    let codes: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..taken).map(|i| format!("b{i:03}")).collect();
    assert_eq!(codes, expected);
    assert_eq!(
        copy.metric("qrlaunch_table_position"),
        info["position"].as_f64().unwrap()
    );
    assert_eq!(copy.scan("/b000").status(), 302);
    // A file that is not a backup is refused, naming it.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a database").unwrap();
    let refused = run(&[
        "restore",
        junk.to_str().unwrap(),
        "--data",
        dir.path().join("j").to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("junk"));
    assert!(
        !dir.path().join("j").exists(),
        "a refused file leaves no directory behind"
    );
}

/// The start-up hint to try a code, as logged.
fn code_hint(server: &Server) -> String {
    let mut hint = None;
    eventually(std::time::Duration::from_secs(10), "the try: hint", || {
        hint = server
            .logs()
            .lines()
            .find_map(|l| l.split_once("try: curl -si ").map(|(_, h)| h.to_string()));
        hint.is_some()
    });
    hint.unwrap()
}

#[test]
fn the_start_up_hint_asks_where_the_code_answers() {
    for public in [None, Some("https://go.example.com/p/")] {
        let extra: Vec<&str> = public.map(|p| vec!["--public-url", p]).unwrap_or_default();
        let server = Server::start(&extra);
        let hint = code_hint(&server);
        // `-H 'Host: H' URL` or just `URL`, as a person would paste it.
        let (host, url) = match hint.strip_prefix("-H 'Host: ") {
            Some(rest) => {
                let (host, url) = rest.split_once("' ").expect("a header and a URL");
                (Some(host.to_string()), url.to_string())
            }
            None => (None, hint.clone()),
        };
        assert!(url.starts_with(&server.scan), "{hint}");
        let mut request = server.client().get(&url);
        if let Some(host) = &host {
            request = request.header("host", host);
        }
        let answer = request.send().unwrap();
        assert_eq!(answer.status(), 302, "{public:?}: {hint}");
        if public.is_some() {
            assert_eq!(host.as_deref(), Some("go.example.com"));
            assert!(url.contains("/p/"), "{hint}");
        }
    }
}

/// `deploy/fleet.sh` running; on drop, SIGTERM (its own clean-up) and then
/// SIGKILL to whatever of its process group is left.
struct FleetScript {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Drop for FleetScript {
    fn drop(&mut self) {
        signal_child(self.child.id(), rustix::process::Signal::TERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

#[test]
fn the_fleet_script_passes_flags_to_every_node_and_stops_on_sigterm() {
    use std::os::unix::process::CommandExt;
    if require_program("psql", "postgresql").is_none() {
        return;
    }
    let dir = temp_dir();
    let (pg_port, first) = (free_port(), free_port());
    let out = dir.path().join("fleet.out");
    let child = Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/fleet.sh"))
        .args(["--log-format", "json"])
        .env("NODES", "2")
        .env("PG_PORT", pg_port.to_string())
        .env("FIRST_PORT", first.to_string())
        .env("QRLAUNCH", env!("CARGO_BIN_EXE_qrlaunch"))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(dir.path().join("fleet.err")).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut fleet = FleetScript { child, out };
    eventually(std::time::Duration::from_secs(120), "the fleet is up", || {
        std::fs::read_to_string(&fleet.out)
            .unwrap_or_default()
            .contains("A fleet of 2 nodes")
    });
    let said = std::fs::read_to_string(&fleet.out).unwrap();
    let fleet_dir = said
        .split("(data in ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the data directory")
        .to_string();
    let second = format!("http://127.0.0.1:{}/spring24", first + 10);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(client.get(&second).send().unwrap().status(), 302);
    let log = std::fs::read_to_string(format!("{fleet_dir}/node1.log")).unwrap();
    let first_line = log.lines().next().expect("a log line");
    assert!(
        serde_json::from_str::<Value>(first_line).is_ok(),
        "flags reach every node: {first_line}"
    );
    // SIGTERM stops it at once (not after its wait), nodes and cluster gone.
    signal_child(fleet.child.id(), rustix::process::Signal::TERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut status = None;
    while status.is_none() && std::time::Instant::now() < deadline {
        status = fleet.child.try_wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(status.is_some(), "the script did not stop within 30 s of SIGTERM");
    assert!(!std::path::Path::new(&fleet_dir).exists(), "{fleet_dir} removed");
    assert!(client.get(&second).send().is_err(), "the nodes are stopped");
}

#[test]
fn the_manual_page_and_completions_come_from_the_command_line() {
    let generate = |what: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(["generate", what])
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let man = generate("man");
    assert!(man.contains(".TH qrlaunch 1"), "{man}");
    for flag in ["public\\-url", "no\\-seed", "backup"] {
        assert!(man.contains(flag), "the manual names {flag}");
    }
    let bash = generate("bash");
    assert!(bash.contains("_qrlaunch()") && bash.contains("--no-seed"));
    let dir = temp_dir();
    let file = dir.path().join("qrlaunch.bash");
    std::fs::write(&file, &bash).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    for shell in ["zsh", "fish"] {
        assert!(generate(shell).contains("qrlaunch"), "{shell}");
    }
}

#[test]
fn healthcheck_says_whether_a_node_answers() {
    let server = Server::start(&[]);
    let check = |listen: &str| {
        Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(["healthcheck", "--listen", listen, "--timeout", "2s"])
            .env_remove("QRLAUNCH_LISTEN")
            .output()
            .unwrap()
    };
    let healthy = check(server.scan_addr());
    assert!(healthy.status.success(), "{healthy:?}");
    // An unspecified address is asked on loopback.
    let port = server.scan_addr().rsplit(':').next().unwrap();
    assert!(check(&format!("0.0.0.0:{port}")).status.success());
    let closed = check(&format!("127.0.0.1:{}", free_port()));
    assert_eq!(closed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&closed.stderr);
    assert!(said.contains("unhealthy") && said.contains("/healthz"), "{said}");
}
