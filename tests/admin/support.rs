//! Starting, stopping and talking to a real server process.

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
