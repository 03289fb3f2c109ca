//! Names the commit a binary is built from, for `qrlaunch --version`:
//! `QRLAUNCH_COMMIT` when set (a package built outside a git checkout),
//! else the checkout's `HEAD` with `-dirty` when tracked files differ
//! from it, else `unknown`. Only a checkout whose top is this crate counts:
//! a source tarball unpacked inside some other repository is `unknown`,
//! not that repository's commit. Works in a `git worktree` too (its `.git`
//! is a file naming the real directory).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git ARGS` in the crate's directory, its trimmed output on success.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    String::from_utf8(out.stdout).ok().map(|s| s.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=QRLAUNCH_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ours = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| std::fs::canonicalize(top).ok())
        .is_some_and(|top| std::fs::canonicalize(&manifest_dir).is_ok_and(|dir| dir == top));
    if ours {
        // Run again when HEAD moves (a commit, a checkout) or the sources
        // change (dirty or clean again). A path that does not exist would
        // make Cargo run this every time, so only existing ones are named.
        let git_dir = git(&["rev-parse", "--git-dir"]).map(|d| manifest_dir.join(d));
        let common_dir = git(&["rev-parse", "--git-common-dir"]).map(|d| manifest_dir.join(d));
        let mut watched: Vec<PathBuf> = Vec::new();
        if let Some(dir) = &git_dir {
            watched.extend([dir.join("HEAD"), dir.join("index")]);
        }
        if let Some(dir) = &common_dir {
            watched.extend([dir.join("refs/heads"), dir.join("packed-refs")]);
        }
        watched.extend(["src", "Cargo.toml", "Cargo.lock", "templates"].map(|p| manifest_dir.join(p)));
        for path in watched.iter().filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let from_git = || {
        let head = git(&["rev-parse", "--short=12", "HEAD"])?;
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{head}-dirty") } else { head })
    };
    let commit = std::env::var("QRLAUNCH_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| if ours { from_git() } else { None })
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=QRLAUNCH_COMMIT={commit}");
}
