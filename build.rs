//! Names the commit a binary is built from, for `qrlaunch --version`:
//! `QRLAUNCH_COMMIT` when set (a package built outside a git checkout),
//! else `git rev-parse`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=QRLAUNCH_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    // A path that does not exist would make Cargo run this every time.
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    let commit = std::env::var("QRLAUNCH_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| String::from_utf8(out.stdout).ok())
        })
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=QRLAUNCH_COMMIT={commit}");
}
