//! The Debian package: built with cargo-deb from the binary under test
//! (`scripts/package-deb --profile dev --no-build`), installed with a real
//! `dpkg -i` into a root of its own (`--root`, so the machine's own
//! packages are never touched), and started by hand from the installed
//! paths.

use crate::support::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether cargo-deb is there (under `CI=true`, it must be).
fn have_cargo_deb() -> bool {
    let found = Command::new("cargo")
        .args(["deb", "--version"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains("3.8."));
    if !found {
        let advice = "cargo-deb is missing: `cargo install cargo-deb --version 3.8.0 --locked` (or run .ci/run)";
        assert!(!in_ci(), "{advice}");
        eprintln!("skipped: {advice}");
    }
    found
}

#[test]
fn the_debian_package_installs_with_dpkg_and_runs_from_its_paths() {
    if !have_cargo_deb() || require_program("dpkg", "dpkg").is_none() {
        return;
    }
    // dpkg sets owners as it unpacks: only root can, even into a root of
    // its own.
    if !rustix::process::geteuid().is_root() {
        assert!(!in_ci(), "the package test runs as root in CI");
        eprintln!("skipped: installing a package needs root");
        return;
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_qrlaunch"));
    let target = binary.parent().and_then(Path::parent).expect("target/debug/qrlaunch");
    let dir = temp_dir();
    let deb = dir.path().join("qrlaunch.deb");
    run_ok(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package-deb"))
            .args(["--profile", "dev", "--no-build", "--fast", "--quiet", "--output"])
            .arg(&deb)
            .env("CARGO_TARGET_DIR", target),
    );

    let fields = run_ok(Command::new("dpkg-deb").arg("--field").arg(&deb));
    assert!(fields.contains("Package: qrlaunch"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {}-1", env!("CARGO_PKG_VERSION"))),
        "{fields}"
    );
    assert!(fields.contains("Depends:") && fields.contains("libc6"), "{fields}");
    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/qrlaunch",
        "./usr/lib/systemd/system/qrlaunch.service",
        "./etc/default/qrlaunch",
        "./usr/share/man/man1/qrlaunch.1.gz",
        "./usr/share/bash-completion/completions/qrlaunch",
        "./usr/share/zsh/vendor-completions/_qrlaunch",
        "./usr/share/fish/vendor_completions.d/qrlaunch.fish",
        "./usr/share/doc/qrlaunch/copyright",
        "./usr/share/doc/qrlaunch/LICENSE-APACHE",
    ] {
        assert!(contents.contains(path), "{path} is not in the package:\n{contents}");
    }
    assert!(!contents.contains("qrlaunch-loadtest"), "the load generator stays out");

    // A real `dpkg -i`, into a root of its own.
    let root = dir.path().join("root");
    for sub in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    // The libraries it depends on are the machine's, not the empty root's.
    run_ok(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            // Every path, whatever the machine's dpkg.cfg.d excludes (minimal
            // images drop /usr/share/man and /usr/share/doc).
            .args(["--force-depends", "--path-include=*", "--log=/dev/null", "-i"])
            .arg(&deb),
    );
    let status = run_ok(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["--status", "qrlaunch"]),
    );
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(
        status.contains("/etc/default/qrlaunch"),
        "the settings file is a conffile: {status}"
    );
    let settings = std::fs::metadata(root.join("etc/default/qrlaunch")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        settings.permissions().mode() & 0o777,
        0o600,
        "the settings file may hold secrets"
    );

    // Started by hand from the installed paths.
    let installed = root.join("usr/bin/qrlaunch");
    let version = run_ok(Command::new(&installed).arg("--version"));
    assert!(version.starts_with("qrlaunch "), "{version}");
    let man = run_ok(
        Command::new("gzip")
            .arg("-dc")
            .arg(root.join("usr/share/man/man1/qrlaunch.1.gz")),
    );
    assert!(man.contains(".TH qrlaunch"), "a man page");
    let bash = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/qrlaunch")).unwrap();
    assert!(bash.contains("complete -F"), "bash completion");
    let port = free_port();
    let data = dir.path().join("data");
    let child = Command::new(&installed)
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Stop(child);
    eventually(Duration::from_secs(30), "the installed binary answers scans", || {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/readyz")).is_ok_and(|r| r.status() == 200)
    });
    let scan = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/spring24"))
        .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
        .send()
        .unwrap();
    assert_eq!(scan.status(), 302, "the embedded example table answers");
    drop(guard);
}
