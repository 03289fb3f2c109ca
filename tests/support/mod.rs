//! Starting, stopping and talking to a real server process; shared by the
//! integration test binaries (`#[path]`-included, so each uses a subset).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use reqwest::blocking::{Client, Response};
pub use serde_json::{json, Value};

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("qrlaunch-it-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A running `qrlaunch serve`.
pub struct Server {
    child: Child,
    pub scan: String,
    pub admin: String,
    pub token: String,
    client: Client,
}

impl Server {
    /// Starts on a new data directory whose store is seeded from `table`
    /// (NDJSON lines), with the given extra flags.
    pub fn with_table(name: &str, table: &str, extra: &[&str]) -> Server {
        let dir = temp_dir(name);
        let file = dir.join("table.ndjson");
        std::fs::write(&file, table).expect("write table");
        let mut args = vec!["--table", file.to_str().expect("UTF-8 temp path")];
        args.extend_from_slice(extra);
        Server::start_on(&dir.join("data"), &args)
    }

    /// Starts on a new data directory with the given extra flags.
    pub fn start(name: &str, extra: &[&str]) -> Server {
        Server::start_on(&temp_dir(name).join("data"), extra)
    }

    /// Starts on `data` (which may hold a store already).
    pub fn start_on(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--log",
                "info",
            ])
            .arg("--data")
            .arg(data)
            .args(extra)
            .env_remove("QRLAUNCH_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qrlaunch");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut scan, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while scan.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("server did not start: {:?}", child.try_wait()));
            if let Some(url) = url_after(&line, "listening on ") {
                scan = Some(url);
            }
            if let Some(url) = url_after(&line, "admin API on ") {
                admin = Some(url);
            }
        }
        std::thread::spawn(move || for _ in rx {});
        let token = std::fs::read_to_string(data.join("admin-token"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let server = Server {
            child,
            scan: scan.unwrap(),
            admin: admin.unwrap(),
            token,
            client,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self
                .client
                .get(format!("{}/readyz", self.scan))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("not ready within 60 s");
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An authorized admin request.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
    }

    pub fn get_admin(&self, path: &str) -> Response {
        self.admin(reqwest::Method::GET, path).send().expect("admin GET")
    }

    pub fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.admin(method, path).json(body).send().expect("admin request")
    }

    /// A scan of `path` on the scan listener.
    pub fn scan(&self, path: &str) -> Response {
        self.client.get(format!("{}{path}", self.scan)).send().expect("scan")
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.expect("run kill").success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit; its status, if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The scan listener's `host:port`.
    pub fn scan_addr(&self) -> &str {
        self.scan.trim_start_matches("http://")
    }

    /// Sends raw bytes on a new TCP connection to the scan listener and
    /// returns what came back until the server closed or 5 s passed.
    pub fn raw(&self, request: &[u8]) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.scan_addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(request).expect("write");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_after(line: &str, marker: &str) -> Option<String> {
    let at = line.find(marker)? + marker.len();
    let url = line[at..].split([' ', ';']).next()?;
    url.starts_with("http://").then(|| url.to_string())
}

/// A code line for the table file / admin API.
pub fn code_body(path: &str, query: &str) -> Value {
    json!({"appid": "wx1234567890abcdef", "path": path, "query": query})
}

pub fn json_of(response: Response) -> Value {
    response.json().expect("JSON body")
}
