//! The `Containerfile`, built and run with podman.
//!
//! No registry can be reached from the machines this runs on, so the two
//! base images it names are stood in for: Debian 12 made here with
//! `debootstrap --variant=minbase` for `debian:bookworm-slim`, and an image
//! holding the binary under test for the build stage (`BINARY_FROM`;
//! podman skips the unused Rust stage). Everything of the runtime stage is
//! the file's own: the user, the volume, the environment, the health check,
//! the entry point. Containers run with runc (this machine's cgroups are
//! hybrid, which crun refuses), on the host's network (loopback only).

use crate::support::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn podman() -> Command {
    let mut command = Command::new("podman");
    command.arg("--runtime").arg("runc");
    command
}

/// What the test made in podman's storage, removed when dropped.
#[derive(Default)]
struct Made {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman().args(["rm", "--force", "--time", "5", c]).output();
        }
        for v in &self.volumes {
            let _ = podman().args(["volume", "rm", "--force", v]).output();
        }
        for i in self.images.iter().rev() {
            let _ = podman().args(["rmi", "--force", i]).output();
        }
    }
}

/// A container of `image` on the host's network, scans on `port`.
fn start(made: &mut Made, image: &str, name: &str, volume: &str, port: u16) {
    made.containers.push(name.to_string());
    run_ok(
        podman()
            .args(["run", "--detach", "--name", name, "--network", "host"])
            // Within the limits this process has (podman would raise them).
            .args(["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"])
            .arg("--env")
            .arg(format!("QRLAUNCH_LISTEN=127.0.0.1:{port}"))
            .args(["--env", "QRLAUNCH_ADMIN_LISTEN=127.0.0.1:0"])
            .args(["--env", "QRLAUNCH_METRICS_LISTEN=127.0.0.1:0"])
            .arg("--volume")
            .arg(format!("{volume}:/var/lib/qrlaunch"))
            .arg(image),
    );
}

/// What a container wrote, both streams (its log lines are on stderr).
fn logs(name: &str) -> String {
    let out = podman().args(["logs", name]).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn scan(port: u16, path: &str) -> Option<u16> {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

#[test]
fn the_containerfile_builds_an_image_that_runs_as_its_own_user_with_a_health_check() {
    if require_program("podman", "podman").is_none()
        || require_program("runc", "runc").is_none()
        || require_program("debootstrap", "debootstrap").is_none()
        || require_program("objcopy", "binutils").is_none()
    {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        assert!(!in_ci(), "the container test runs as root in CI");
        eprintln!("skipped: debootstrap and podman's storage need root here");
        return;
    }
    let tag = format!("it-{}", std::process::id());
    let mut made = Made::default();
    let dir = temp_dir();

    // debian:bookworm-slim's stand-in.
    let rootfs = dir.path().join("rootfs");
    run_ok(
        Command::new("timeout")
            .args(["600", "debootstrap", "--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg("http://deb.debian.org/debian")
            .stdout(Stdio::null()),
    );
    let base = format!("localhost/qrlaunch-base:{tag}");
    made.images.push(base.clone());
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let archive = tar.stdout.take().unwrap();
    run_ok(podman().args(["import", "--quiet", "-", &base]).stdin(archive));
    assert!(tar.wait().unwrap().success(), "tar of the base image");

    // The build stage's stand-in: the binary under test (without its debug
    // sections), the CA roots, an empty data directory.
    let binary = dir.path().join("binary");
    std::fs::create_dir_all(binary.join("etc/ssl/certs")).unwrap();
    std::fs::create_dir_all(binary.join("var/lib/qrlaunch")).unwrap();
    run_ok(
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(env!("CARGO_BIN_EXE_qrlaunch"))
            .arg(binary.join("qrlaunch")),
    );
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        binary.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    std::fs::write(dir.path().join("Binary.Containerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    let binary_image = format!("localhost/qrlaunch-binary:{tag}");
    made.images.push(binary_image.clone());
    run_ok(
        podman()
            .args(["build", "--quiet", "--file"])
            .arg(dir.path().join("Binary.Containerfile"))
            .args(["--tag", &binary_image])
            .arg(&binary),
    );

    // The repository's Containerfile; the context holds nothing, as the
    // runtime stage takes everything from the two images.
    let image = format!("localhost/qrlaunch:{tag}");
    made.images.push(image.clone());
    let context = dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    run_ok(
        podman()
            .args(["build", "--quiet", "--format", "docker", "--file"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile"))
            .arg("--build-arg")
            .arg(format!("BASE_IMAGE={base}"))
            .arg("--build-arg")
            .arg(format!("BINARY_FROM={binary_image}"))
            .args(["--tag", &image])
            .arg(&context),
    );
    let config = run_ok(podman().args(["image", "inspect", "--format", "{{json .Config}}", &image]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["User"], "10001:10001", "{config}");
    assert!(config["Volumes"].get("/var/lib/qrlaunch").is_some(), "{config}");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/bin/qrlaunch"]));
    let health = run_ok(podman().args(["image", "inspect", "--format", "{{json .HealthCheck}}", &image]));
    assert!(
        health.contains("/usr/bin/qrlaunch") && health.contains("healthcheck"),
        "{health}"
    );

    // Runs, answers, passes its own health check, as its own user, with
    // its data in the volume.
    let volume = format!("qrlaunch-data-{tag}");
    made.volumes.push(volume.clone());
    let port = free_port();
    let first = format!("qrlaunch-{tag}-1");
    start(&mut made, &image, &first, &volume, port);
    eventually(Duration::from_secs(60), "the container answers scans", || {
        scan(port, "/readyz") == Some(200)
    });
    assert_eq!(scan(port, "/spring24"), Some(302), "the embedded example table");
    run_ok(podman().args(["healthcheck", "run", &first]));
    assert_eq!(run_ok(podman().args(["exec", &first, "id", "-u"])), "10001");
    let files = run_ok(podman().args(["exec", &first, "ls", "/var/lib/qrlaunch"]));
    assert!(files.contains("qrlaunch.db"), "{files}");
    let said = logs(&first);
    assert!(
        said.contains("imported into the new store") && said.contains(r#""level":"INFO""#),
        "the example table seeded, logged as JSON: {said}"
    );

    // Stops on the runtime's SIGTERM, cleanly; a new container on the same
    // volume serves the same store.
    run_ok(podman().args(["stop", "--time", "20", &first]));
    let exit = run_ok(podman().args(["inspect", "--format", "{{.State.ExitCode}}", &first]));
    assert_eq!(exit, "0", "a clean stop");
    let second = format!("qrlaunch-{tag}-2");
    start(&mut made, &image, &second, &volume, port);
    eventually(Duration::from_secs(60), "the second container answers", || {
        scan(port, "/spring24") == Some(302)
    });
    let said = logs(&second);
    assert!(
        !said.contains("imported into the new store"),
        "a store already there is not seeded again: {said}"
    );
    // The health check fails when nothing answers where it asks.
    let unhealthy = podman()
        .args([
            "exec",
            &second,
            "/usr/bin/qrlaunch",
            "healthcheck",
            "--listen",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(unhealthy.status.code(), Some(1), "{unhealthy:?}");
    assert!(String::from_utf8_lossy(&unhealthy.stderr).contains("unhealthy"));
    run_ok(podman().args(["stop", "--time", "20", &second]));
}
