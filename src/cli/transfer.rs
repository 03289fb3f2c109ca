//! `qrlaunch import FILE` and `qrlaunch export [FILE]`.

use super::client::{AdminClient, CliError};
use reqwest::blocking::Body;
use reqwest::Method;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Streams `file` to `POST /admin/v1/import`, with a progress line on a
/// terminal, and prints the server's summary.
pub fn import(client: &AdminClient, file: &Path, mode: &str) -> Result<(), CliError> {
    let opened = std::fs::File::open(file).map_err(|e| CliError::File {
        path: file.into(),
        reason: e.to_string(),
    })?;
    let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = Progress {
        inner: opened,
        sent: 0,
        size,
        shown: None,
        enabled: std::io::stderr().is_terminal(),
    };
    let request = client
        .request(Method::POST, &format!("/admin/v1/import?mode={mode}"))
        .header("content-type", "application/x-ndjson")
        .body(Body::sized(reader, size));
    let started = Instant::now();
    let response = client.send(request);
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let summary: serde_json::Value = response?.json().unwrap_or_default();
    eprintln!("imported in {:.1} s: {summary}", started.elapsed().as_secs_f64());
    Ok(())
}

/// Streams `GET /admin/v1/export` to `file` or standard output.
pub fn export(client: &AdminClient, file: Option<&Path>) -> Result<(), CliError> {
    let mut response = client.send(client.request(Method::GET, "/admin/v1/export"))?;
    let failed = |reason: String| CliError::File {
        path: file.map_or_else(|| "(standard output)".into(), Path::to_path_buf),
        reason,
    };
    match file {
        Some(path) => {
            let mut out = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
            response.copy_to(&mut out).map_err(|e| failed(e.to_string()))?;
            out.sync_all().map_err(|e| failed(e.to_string()))
        }
        None => response
            .copy_to(&mut std::io::stdout().lock())
            .map(drop)
            .map_err(|e| failed(e.to_string())),
    }
}

/// A reader that reports how much of the file has been sent.
struct Progress<R> {
    inner: R,
    sent: u64,
    size: u64,
    shown: Option<Instant>,
    enabled: bool,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        let due = self.shown.is_none_or(|t| t.elapsed() > Duration::from_millis(200));
        if self.enabled && (due || n == 0) {
            let percent = (self.sent * 100).checked_div(self.size).unwrap_or(100);
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            eprint!(
                "\rimporting: {percent:>3}% ({:.1} of {:.1} MiB sent)",
                mib(self.sent),
                mib(self.size)
            );
            let _ = std::io::stderr().flush();
            self.shown = Some(Instant::now());
        }
        Ok(n)
    }
}
