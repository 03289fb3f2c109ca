//! Never acknowledge what was not kept: writes on a full disk, on deleted
//! or immutable database files, from clients that vanish mid-request, and
//! everything else that must not leave the store and the table apart.

use crate::support::*;
use reqwest::Method;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A size-limited tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs { path: path.into() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes zeros into `path` until the filesystem refuses.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    for _ in 0..64 {
        if file.write_all(&[0u8; 512]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
}

fn code_line(code: &str, query: &str) -> String {
    format!(
        r#"{{"code":"{code}","appid":"wx1234567890abcdef","path":"pages/f/index","query":"{query}","tags":["fault"]}}"#
    )
}

fn import(server: &Server, lines: &[String]) -> Response {
    server
        .admin(Method::POST, "/admin/v1/import")
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .expect("import")
}

/// What a write should have left behind if it was acknowledged, and what
/// must be there instead if it was not.
#[derive(Debug)]
enum Effect {
    /// `code` exists (query `query`) if acknowledged, else does not.
    Created { code: String, query: String },
    /// `code` is gone if acknowledged, else still there.
    Deleted { code: String },
    /// `code`'s query is `new` if acknowledged, else `old`.
    Patched { code: String, old: String, new: String },
    /// The host's settings exist if acknowledged.
    Host { host: String },
}

fn query_of(server: &Server, code: &str) -> Option<String> {
    let response = server.get_admin(&format!("/admin/v1/codes/{code}"));
    (response.status() == 200).then(|| json_of(response)["query"].as_str().unwrap_or_default().to_string())
}

/// A mix of every write kind on a full disk: each is either `2xx` and
/// still there after SIGKILL and a restart, or a `5xx` with a JSON error
/// and no effect at all.
#[test]
fn a_full_disk_never_acknowledges_a_lost_write() {
    let tmp = temp_dir();
    let mnt = tmp.path().join("mnt");
    let tmpfs = if is_root() { Tmpfs::mount(&mnt, "8m") } else { None };
    // Without root: a 1 MiB file-size limit on the server's files instead.
    let limit = tmpfs.is_none();
    if limit {
        assert!(
            !in_ci() || !is_root(),
            "running as root but could not mount a tmpfs for the full-disk test"
        );
        std::fs::create_dir_all(&mnt).unwrap();
    }
    let data = mnt.join("data");
    let configure = move |command: &mut Command| {
        if limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and only touches the child.
            unsafe {
                command.pre_exec(|| {
                    let cap = rustix::process::Rlimit {
                        current: Some(1 << 20),
                        maximum: Some(1 << 20),
                    };
                    rustix::process::setrlimit(rustix::process::Resource::Fsize, cap)?;
                    Ok(())
                });
            }
        }
    };
    let server = Server::try_start_with(&data, &[], &configure).unwrap_or_else(|e| panic!("{e}"));
    // Entries to delete and patch, made while there is room.
    let mut lines: Vec<String> = (0..20).map(|i| code_line(&format!("del{i}"), "v=old")).collect();
    lines.extend((0..20).map(|i| code_line(&format!("pat{i}"), "v=old")));
    assert_eq!(import(&server, &lines).status(), 200);
    if limit {
        // Grow the write-ahead log toward the limit with harmless writes.
        let big = "x".repeat(400);
        for i in 0..400 {
            let r = server.send_json(
                Method::PUT,
                &format!("/admin/v1/codes/pad{i}"),
                &code_body("p", &format!("q={big}")),
            );
            if !r.status().is_success() {
                break;
            }
        }
    } else {
        fill(&mnt.join("filler"));
    }

    let mut effects: Vec<(Effect, bool)> = Vec::new();
    let mut failures = 0;
    for i in 0..100 {
        let (response, effect) = match i % 6 {
            0 => (
                server.send_json(
                    Method::POST,
                    "/admin/v1/codes",
                    &json!({"code": format!("new{i}"), "appid": "wx1234567890abcdef", "path": "p", "query": "v=1"}),
                ),
                Effect::Created {
                    code: format!("new{i}"),
                    query: "v=1".into(),
                },
            ),
            1 => (
                server.send_json(Method::PUT, &format!("/admin/v1/codes/put{i}"), &code_body("p", "v=2")),
                Effect::Created {
                    code: format!("put{i}"),
                    query: "v=2".into(),
                },
            ),
            2 => {
                let code = format!("pat{}", i % 20);
                let new = format!("v=p{i}");
                let current = query_of(&server, &code).unwrap_or_else(|| "v=old".into());
                (
                    server.send_json(
                        Method::PATCH,
                        &format!("/admin/v1/codes/{code}"),
                        &json!({"query": new}),
                    ),
                    Effect::Patched {
                        code,
                        old: current,
                        new,
                    },
                )
            }
            3 => {
                let code = format!("del{}", i % 20);
                (
                    server
                        .admin(Method::DELETE, &format!("/admin/v1/codes/{code}"))
                        .send()
                        .unwrap(),
                    Effect::Deleted { code },
                )
            }
            4 => (
                import(&server, &[code_line(&format!("imp{i}"), "v=3")]),
                Effect::Created {
                    code: format!("imp{i}"),
                    query: "v=3".into(),
                },
            ),
            _ => (
                server.send_json(Method::PUT, &format!("/admin/v1/hosts/h{i}.example.com"), &json!({})),
                Effect::Host {
                    host: format!("h{i}.example.com"),
                },
            ),
        };
        let status = response.status();
        if status.is_success() {
            effects.push((effect, true));
            continue;
        }
        // A delete of an already-deleted code is a plain 404, not a fault.
        if status == 404 {
            continue;
        }
        assert!(status.is_server_error(), "write {i}: {status} is neither 2xx nor 5xx");
        let body: Value = response.json().expect("a JSON error body");
        assert!(body["error"].is_string(), "{body}");
        failures += 1;
        effects.push((effect, false));
    }
    assert!(
        failures > 0,
        "no write failed: the disk was not full ({})",
        server.logs()
    );
    assert!(server.logs().contains("write not acknowledged"), "failures are logged");
    server.kill9();
    let _ = std::fs::remove_file(mnt.join("filler"));

    let restarted = Server::start_on(&data, &[]);
    for (effect, acknowledged) in &effects {
        match effect {
            Effect::Created { code, query } => {
                let stored = query_of(&restarted, code);
                if *acknowledged {
                    assert_eq!(stored.as_deref(), Some(query.as_str()), "acknowledged {code} lost");
                    assert_eq!(restarted.scan(&format!("/{code}")).status(), 302);
                } else {
                    assert_eq!(stored, None, "{code} was refused but exists");
                }
            }
            Effect::Deleted { code } if *acknowledged => {
                assert_eq!(query_of(&restarted, code), None, "acknowledged delete of {code} undone");
            }
            Effect::Deleted { .. } => {}
            Effect::Patched { code, old, new } => {
                let want = if *acknowledged { new } else { old };
                let stored = query_of(&restarted, code);
                // A later acknowledged patch of the same code may have won.
                let later = effects.iter().any(|(e, ack)| {
                    *ack && matches!(e, Effect::Patched { code: c, new: n, .. } if c == code && n != new)
                });
                if !later {
                    assert_eq!(stored.as_deref(), Some(want.as_str()), "{code}");
                }
            }
            Effect::Host { host } => {
                let status = restarted.get_admin(&format!("/admin/v1/hosts/{host}")).status();
                assert_eq!(status == 200, *acknowledged, "host {host}");
            }
        }
    }
    drop(restarted);
    drop(tmpfs);
}

/// Database files deleted under a running server: no write is acknowledged.
#[test]
fn deleted_database_files_refuse_writes() {
    let server = Server::start(&[]);
    let data = server.data.clone();
    assert_eq!(
        server
            .send_json(Method::PUT, "/admin/v1/codes/before", &code_body("p", ""))
            .status(),
        201
    );
    for file in ["qrlaunch.db", "qrlaunch.db-wal"] {
        std::fs::remove_file(data.join(file)).unwrap();
    }
    for i in 0..5 {
        let response = server.send_json(Method::PUT, &format!("/admin/v1/codes/after{i}"), &code_body("p", ""));
        assert_eq!(response.status(), 500, "{:?}", response.text());
    }
    let answer = json_of(server.send_json(Method::PUT, "/admin/v1/codes/x", &code_body("p", "")));
    assert!(
        answer["message"].as_str().unwrap().contains("deleted or replaced"),
        "{answer}"
    );
    assert_eq!(server.scan("/after0").status(), 404, "the table did not change");
}

/// A clean stop leaves the write-ahead log empty, with every write in the
/// database: the next start does not read the log back (after a first seed
/// of a million codes that was 136 MB and 0.18 s of the restart).
#[test]
fn a_clean_stop_empties_the_write_ahead_log_and_keeps_every_write() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    for i in 0..20 {
        let path = format!("/admin/v1/codes/kept{i}");
        assert_eq!(server.send_json(Method::PUT, &path, &code_body("p", "")).status(), 201);
    }
    let wal = data.join("qrlaunch.db-wal");
    let wal_bytes = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(wal_bytes() > 0, "the writes went through the log");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    drop(server);
    assert_eq!(wal_bytes(), 0, "the log was checkpointed and truncated at the stop");

    let restarted = Server::start_on(&data, &[]);
    for i in 0..20 {
        let status = restarted.get_admin(&format!("/admin/v1/codes/kept{i}")).status();
        assert_eq!(status, 200, "kept{i} after the restart");
    }
}

/// `chattr +i` on the database under a running server: writes fail with a
/// 5xx and the server keeps serving; at start the file is named.
#[test]
fn immutable_database_files_refuse_writes_and_are_named_at_start() {
    if !is_root() {
        assert!(!in_ci(), "the immutable-file test needs root (chattr)");
        eprintln!("skipped: chattr +i needs root");
        return;
    }
    let Some(chattr) = require_program("chattr", "e2fsprogs") else {
        return;
    };
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start_on(&data, &[]);
    let db = data.join("qrlaunch.db");
    let wal = data.join("qrlaunch.db-wal");
    let set = |flag: &str, file: &Path| {
        Command::new(&chattr)
            .arg(flag)
            .arg(file)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !set("+i", &db) {
        assert!(
            !in_ci(),
            "chattr +i failed on {}: this filesystem has no immutable flag",
            db.display()
        );
        eprintln!("skipped: the filesystem has no immutable flag");
        return;
    }
    set("+i", &wal);
    let refused = server.send_json(Method::PUT, "/admin/v1/codes/frozen", &code_body("p", ""));
    assert_eq!(refused.status(), 500, "{:?}", refused.text());
    assert_eq!(server.scan("/spring24").status(), 302, "scans go on");
    assert_eq!(server.scan("/frozen").status(), 404);
    server.kill9();
    let started = Server::try_start_on(&data, &[]);
    set("-i", &db);
    set("-i", &wal);
    let failure = started.err().expect("a start on immutable files fails");
    assert!(
        failure.contains("qrlaunch.db") && failure.contains("cannot be written"),
        "{failure}"
    );
    let again = Server::start_on(&data, &[]);
    assert_eq!(again.scan("/frozen").status(), 404);
    assert_eq!(
        again
            .send_json(Method::PUT, "/admin/v1/codes/thawed", &code_body("p", ""))
            .status(),
        201
    );
}

/// Sends a raw admin request and resets the connection at once, as
/// `curl -m 0.001` does.
fn send_and_vanish(admin: &str, request: &str) {
    let mut stream = TcpStream::connect(admin.trim_start_matches("http://")).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let _ = socket2_linger_zero(&stream);
}

/// SO_LINGER 0: closing sends RST instead of FIN.
fn socket2_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// Waits until `/readyz` says the table has applied everything the store has.
fn wait_current(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.scan("/readyz").text().unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        if field("position:").is_some() && field("position:") == field("store_position:") {
            return;
        }
        assert!(Instant::now() < deadline, "the table did not catch up: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A committed change reaches the table whatever the client does after
/// sending it.
#[test]
fn a_client_that_vanishes_cannot_leave_store_and_table_apart() {
    let server = Server::start(&[]);
    let lines: Vec<String> = (0..100).map(|i| code_line(&format!("gone{i}"), "v=1")).collect();
    assert_eq!(import(&server, &lines).status(), 200);
    for i in 0..100 {
        send_and_vanish(
            &server.admin,
            &format!(
                "DELETE /admin/v1/codes/gone{i} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\n\r\n",
                server.token
            ),
        );
    }
    // A big import whose client leaves right after the body.
    let body: String = (0..20_000)
        .map(|i| code_line(&format!("bulk{i}"), "v=2") + "\n")
        .collect();
    let answered = server.metric("qrlaunch_admin_requests_total{");
    send_and_vanish(
        &server.admin,
        &format!(
            "POST /admin/v1/import HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
            server.token,
            body.len()
        ),
    );
    // The import is answered (to no one) once it is committed or refused.
    eventually(
        Duration::from_secs(10),
        "the vanished client's import was answered",
        || server.metric("qrlaunch_admin_requests_total{") > answered,
    );
    wait_current(&server);
    for i in 0..100 {
        let stored = server.get_admin(&format!("/admin/v1/codes/gone{i}")).status();
        let scanned = server.scan(&format!("/gone{i}")).status();
        assert_eq!(stored == 200, scanned == 302, "gone{i}: store {stored}, scan {scanned}");
    }
    let exported = server.get_admin("/admin/v1/export").text().unwrap();
    let bulk_stored = exported.lines().filter(|l| l.contains("\"bulk")).count();
    let bulk_scanned = (0..20_000)
        .step_by(997)
        .filter(|i| server.scan(&format!("/bulk{i}")).status() == 302)
        .count();
    if bulk_stored == 20_000 {
        assert_eq!(
            bulk_scanned,
            (0..20_000).step_by(997).count(),
            "the import is in the table"
        );
    } else {
        assert_eq!((bulk_stored, bulk_scanned), (0, 0), "an import is all or nothing");
    }
}

#[test]
fn a_second_server_on_one_data_directory_refuses_to_start() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let first = Server::start_on(&data, &[]);
    let second = Server::try_start_on(&data, &[]);
    let failure = second.err().expect("the second start fails");
    assert!(
        failure.contains("another qrlaunch") && failure.contains(&format!("pid {}", first.pid())),
        "{failure}"
    );
    assert_eq!(first.scan("/spring24").status(), 302, "the first one serves on");
}

#[test]
fn a_store_that_held_data_is_never_seeded_again() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start_on(&data, &[]);
    let exported = server.get_admin("/admin/v1/export").text().unwrap();
    for line in exported.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let path = match (entry["code"].as_str(), entry["prefix"].as_str()) {
            (Some(code), _) => format!("/admin/v1/codes/{code}"),
            (None, Some(prefix)) => format!(
                "/admin/v1/rules?prefix={}",
                percent_encoding::utf8_percent_encode(prefix, percent_encoding::NON_ALPHANUMERIC)
            ),
            _ => continue,
        };
        assert_eq!(
            server.admin(Method::DELETE, &path).send().unwrap().status(),
            204,
            "{path}"
        );
    }
    drop(server);
    let table = tmp.path().join("table.ndjson");
    std::fs::write(&table, code_line("fromfile", "v=1")).unwrap();
    let restarted = Server::start_on(&data, &["--table", table.to_str().unwrap()]);
    assert_eq!(restarted.scan("/spring24").status(), 404, "the demo codes stay deleted");
    assert_eq!(
        restarted.scan("/fromfile").status(),
        404,
        "--table only seeds a new store"
    );
    assert_eq!(restarted.get_admin("/admin/v1/export").text().unwrap(), "");
    assert!(restarted.logs().contains("--table is only imported into a new store"));

    // An explicitly empty --table initialises a store too.
    let other = tmp.path().join("other");
    let empty = tmp.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    drop(Server::start_on(&other, &["--table", empty.to_str().unwrap()]));
    let again = Server::start_on(&other, &[]);
    assert_eq!(again.scan("/spring24").status(), 404, "no example after an empty seed");
}

#[test]
fn concurrent_creating_puts_get_exactly_one_201() {
    let server = std::sync::Arc::new(Server::start(&[]));
    for round in 0..3 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let (server, barrier) = (server.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    server
                        .send_json(
                            Method::PUT,
                            &format!("/admin/v1/codes/race{round}"),
                            &code_body("p", ""),
                        )
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for t in threads {
            *statuses.entry(t.join().unwrap()).or_default() += 1;
        }
        assert_eq!(statuses, BTreeMap::from([(200, 19), (201, 1)]), "round {round}");
    }
}

/// A client that stalls in the middle of an import holds nothing: other
/// writes go on, and the import ends with 408 and no effect.
#[test]
fn a_stalled_import_holds_no_writer() {
    let server = Server::start(&["--admin-body-timeout", "2s"]);
    let mut stalled = TcpStream::connect(server.admin.trim_start_matches("http://")).unwrap();
    let partial = code_line("stall1", "v=1") + "\n" + &code_line("stall2", "v=1");
    write!(
        stalled,
        "POST /admin/v1/import HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000000\r\n\r\n{partial}",
        server.token
    )
    .unwrap();
    eventually(
        Duration::from_secs(5),
        "the stalled import's connection is open",
        || server.metric("qrlaunch_connections{listener=\"admin\"}") >= 1.0,
    );
    let started = Instant::now();
    let put = server.send_json(Method::PUT, "/admin/v1/codes/meanwhile", &code_body("p", ""));
    assert_eq!(put.status(), 201);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a write waited {:?}",
        started.elapsed()
    );
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(server.scan("/stall1").status(), 404);
}

/// Clients that open exports and stop reading hold at most two database
/// connections, for at most the body deadline; the admin API answers.
#[test]
fn stalled_exports_do_not_starve_the_admin_api() {
    let lines: String = (0..30_000)
        .map(|i| code_line(&format!("e{i:05}"), "v=1") + "\n")
        .collect();
    let tmp = temp_dir();
    let table = tmp.path().join("t.ndjson");
    std::fs::write(&table, lines).unwrap();
    let server = Server::start_on(
        &tmp.path().join("data"),
        &["--table", table.to_str().unwrap(), "--admin-body-timeout", "2s"],
    );
    let mut stalled = Vec::new();
    let mut refused = 0;
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.admin.trim_start_matches("http://")).unwrap();
        write!(
            stream,
            "GET /admin/v1/export HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\n\r\n",
            server.token
        )
        .unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut head = [0u8; 12];
        if stream.read_exact(&mut head).is_ok() && &head[9..12] == b"503" {
            refused += 1;
        }
        stalled.push(stream);
    }
    assert_eq!(refused, 2, "two exports at a time");
    let started = Instant::now();
    assert_eq!(server.get_admin("/admin/v1/codes/e00001").status(), 200);
    assert_eq!(
        server
            .send_json(Method::PUT, "/admin/v1/codes/during", &code_body("p", ""))
            .status(),
        201
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // After the deadline the stalled exports are given up and a new one runs.
    let mut fresh = None;
    eventually(Duration::from_secs(15), "a new export runs after the deadline", || {
        let answer = server.get_admin("/admin/v1/export");
        let ok = answer.status() == 200;
        fresh = ok.then_some(answer);
        ok
    });
    assert_eq!(fresh.unwrap().text().unwrap().lines().count(), 30_001);
    drop(stalled);
}

/// One duplicate-key message, whichever reader meets it.
#[test]
fn duplicate_keys_are_reported_alike_by_every_reader() {
    let tmp = temp_dir();
    let table = tmp.path().join("dup.ndjson");
    let text = [
        code_line("twice", "v=1"),
        code_line("other", "v=1"),
        code_line("twice", "v=2"),
    ]
    .join("\n");
    std::fs::write(&table, &text).unwrap();
    let want = "line 3: field `code`: same code as line 1";

    let check = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .arg("check")
        .arg(&table)
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(
        String::from_utf8_lossy(&check.stderr).contains(want),
        "check: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let seeded = Server::try_start_on(&tmp.path().join("data"), &["--table", table.to_str().unwrap()]);
    let failure = seeded.err().expect("a duplicate in --table stops the start");
    assert!(failure.contains(want), "seeding: {failure}");

    let server = Server::start(&[]);
    let answer = json_of(
        server
            .admin(Method::POST, "/admin/v1/import")
            .header("content-type", "application/x-ndjson")
            .body(text)
            .send()
            .unwrap(),
    );
    let error = &answer["errors"][0];
    assert_eq!(
        (error["line"].as_u64(), error["field"].as_str()),
        (Some(3), Some("code")),
        "{answer}"
    );
    assert_eq!(error["message"], "same code as line 1");
}
