//! Starting, stopping and talking to a real `qrlaunch` process.
//!
//! Every server gets its own temporary directory ([`tempfile::TempDir`]),
//! removed when the server is dropped, passing or failing; the process is
//! killed on drop too. Addresses come from the one JSON line the binary
//! prints on standard output, not from its logs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use reqwest::blocking::{Client, Response};
pub use serde_json::{json, Value};

/// Waits until `check` holds, looking every few milliseconds; fails with
/// `what` after `limit`. Tests await conditions instead of sleeping.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The seed of a randomised test: `QRLAUNCH_TEST_SEED` when set, else
/// drawn; printed either way, so a failing run can be repeated.
pub fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("QRLAUNCH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test}: seed {seed} (QRLAUNCH_TEST_SEED={seed} repeats it)");
    seed
}

/// SIGKILL to the process group led by `leader` (a child started with
/// `process_group(0)`).
pub fn kill_group(leader: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(leader as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Sends `signal` to our own child `pid`.
pub fn signal_child(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// A new temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("qrlaunch-it-")
        .tempdir()
        .expect("create a temporary directory")
}

/// A running `qrlaunch serve`.
pub struct Server {
    child: Child,
    pub scan: String,
    pub admin: String,
    /// The metrics listener.
    pub metrics: String,
    pub token: String,
    /// The TLS scan listener (`--tls-listen`), when there is one.
    pub tls: Option<String>,
    /// The data directory.
    pub data: PathBuf,
    client: Client,
    logs: Arc<Mutex<Vec<String>>>,
    /// Removed after the process is killed (fields drop after `Drop::drop`).
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts on a new data directory whose store is seeded from `table`
    /// (NDJSON lines), with the given extra flags.
    pub fn with_table(table: &str, extra: &[&str]) -> Server {
        let dir = temp_dir();
        let file = dir.path().join("table.ndjson");
        std::fs::write(&file, table).expect("write table");
        let mut args = vec!["--table", file.to_str().expect("UTF-8 temp path")];
        args.extend_from_slice(extra);
        let mut server = Server::start_on(&dir.path().join("data"), &args);
        server._dir = Some(dir);
        server
    }

    /// Starts on a new data directory (seeded with the embedded example
    /// table) with the given extra flags.
    pub fn start(extra: &[&str]) -> Server {
        let dir = temp_dir();
        let mut server = Server::start_on(&dir.path().join("data"), extra);
        server._dir = Some(dir);
        server
    }

    /// Starts on `data` (which may hold a store already); the caller owns
    /// the directory.
    pub fn start_on(data: &Path, extra: &[&str]) -> Server {
        match Server::try_start_on(data, extra) {
            Ok(server) => server,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Like [`Server::start_on`], but a failed start is returned with its
    /// log instead of panicking.
    pub fn try_start_on(data: &Path, extra: &[&str]) -> Result<Server, String> {
        Server::try_start_with(data, extra, &|_| {})
    }

    /// Like [`Server::try_start_on`], with a last say over the command.
    pub fn try_start_with(data: &Path, extra: &[&str], configure: &dyn Fn(&mut Command)) -> Result<Server, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_qrlaunch"));
        command.args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        if !extra.contains(&"--log") {
            command.args(["--log", "info"]);
        }
        command
            .arg("--data")
            .arg(data)
            .args(extra)
            .env_remove("QRLAUNCH_ADMIN_TOKEN")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("start qrlaunch");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30));
        let listening = first
            .as_ref()
            .ok()
            .and_then(|line| serde_json::from_str::<Value>(line).ok());
        let Some(listening) = listening else {
            let _ = child.kill();
            let status = child.wait().ok();
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!(
                "qrlaunch did not start ({status:?}; first line {first:?}):\n{}",
                logs.lock().unwrap().join("\n")
            ));
        };
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut server = Server {
            child,
            scan: listening["scan"].as_str().unwrap().to_string(),
            admin: listening["admin"].as_str().unwrap().to_string(),
            metrics: listening["metrics"].as_str().unwrap().to_string(),
            token: String::new(),
            tls: listening["tls"].as_str().map(str::to_string),
            data: data.to_path_buf(),
            client,
            logs,
            _dir: None,
        };
        server.wait_ready()?;
        server.token = std::fs::read_to_string(data.join("admin-token"))
            .unwrap_or_default()
            .trim()
            .to_string();
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("qrlaunch exited ({status}):\n{}", self.logs()));
            }
            if self
                .client
                .get(format!("{}/readyz", self.scan))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("not ready within 60 s:\n{}", self.logs()))
    }

    /// Runs the CLI (`qrlaunch ARGS`) against this server's admin API with
    /// its token.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(args)
            .args(["--admin-url", &self.admin])
            .env("QRLAUNCH_ADMIN_TOKEN", &self.token)
            .output()
            .expect("run the CLI")
    }

    /// What the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// `/metrics` from the metrics listener.
    pub fn metrics_response(&self) -> Response {
        self.client
            .get(format!("{}/metrics", self.metrics))
            .send()
            .expect("metrics")
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics_response().text().expect("metrics text")
    }

    /// The value of one series (`name{labels}` exactly as exposed), summed
    /// over every series that starts with `series` when it ends in `{`.
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_text();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| match series.strip_suffix('{') {
                Some(name) => l.starts_with(&format!("{name}{{")),
                None => l.split(' ').next() == Some(series),
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
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

/// A code line for the table file / admin API.
pub fn code_body(path: &str, query: &str) -> Value {
    json!({"appid": "wx1234567890abcdef", "path": path, "query": query})
}

pub fn json_of(response: Response) -> Value {
    response.json().expect("JSON body")
}

/// Now, in UNIX seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Whether tests must fail, not skip, when a system program is missing.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The path of a system program a test needs. Missing: under `CI=true` the
/// test fails; elsewhere it says how to install it and returns `None`.
pub fn require_program(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let advice = format!("`{name}` is missing: install it with `apt-get install {package}` (or run .ci/run)");
        assert!(!in_ci(), "{advice}");
        eprintln!("skipped: {advice}");
    }
    found
}

/// What a headless Chromium saw of one page.
pub struct BrowserLoad {
    /// The DOM after load (`--dump-dom`).
    pub dom: String,
    /// `(url, request type)` of every request made on behalf of the page
    /// (its network isolation key is the page's site), from the net log.
    pub page_requests: Vec<(String, String)>,
}

/// A real headless Chromium (Debian `chromium`), started per page load with
/// a fresh profile in a temporary directory, its whole process group killed
/// afterwards.
pub struct Chromium {
    path: PathBuf,
}

impl Chromium {
    /// `None` (and a note) when Chromium is missing outside CI; a failure in CI.
    pub fn find() -> Option<Chromium> {
        require_program("chromium", "chromium").map(|path| Chromium { path })
    }

    /// Loads `url` as a client with `user_agent`; with `screenshot`, also
    /// writes a PNG of the page (500 × 900).
    pub fn load(&self, user_agent: &str, url: &str, screenshot: Option<&Path>) -> BrowserLoad {
        self.load_with(user_agent, url, screenshot, &[])
    }

    /// [`Chromium::load`] with more command-line switches (say,
    /// `--host-resolver-rules=MAP www.example.com 127.0.0.1:8080`).
    pub fn load_with(&self, user_agent: &str, url: &str, screenshot: Option<&Path>, switches: &[&str]) -> BrowserLoad {
        use std::os::unix::process::CommandExt;
        let dir = temp_dir();
        let netlog = dir.path().join("net.json");
        let mut command = Command::new(&self.path);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--window-size=500,900",
                // A page that navigates to weixin:// never finishes loading
                // in a browser without WeChat: stop waiting after 2 s.
                "--timeout=2000",
            ])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg(format!("--user-agent={user_agent}"))
            .arg(format!("--log-net-log={}", netlog.display()))
            .args(switches)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        match screenshot {
            Some(path) => command.arg(format!("--screenshot={}", path.display())),
            None => command.arg("--dump-dom"),
        };
        let mut child = command.arg(url).spawn().expect("start chromium");
        let group = child.id();
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut dom = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut dom);
            dom
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Ends any helper processes Chromium left behind in its group.
        kill_group(group);
        let _ = child.wait();
        let dom = reader.join().unwrap_or_default();
        let page_requests = page_requests(&netlog, url);
        BrowserLoad { dom, page_requests }
    }
}

/// The requests a page made, from a Chromium net log.
fn page_requests(netlog: &Path, page_url: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(netlog) else {
        return Vec::new();
    };
    // Chromium may not write the closing brackets when it is killed.
    let text = if text.trim_end().ends_with('}') {
        text
    } else {
        format!("{}]}}", text.trim_end().trim_end_matches(','))
    };
    let Ok(log) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64();
    let site = page_url.split('/').take(3).collect::<Vec<_>>().join("/");
    let site_host = site.rsplit_once(':').map_or(site.as_str(), |(h, _)| h);
    log["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"].as_u64() == start_job)
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.contains(site_host))
        })
        .map(|e| {
            (
                e["params"]["url"].as_str().unwrap_or_default().to_string(),
                e["params"]["request_type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Decodes the QR codes in an image with a real decoder (`zbarimg`).
pub fn zbarimg(image: &Path) -> Option<Vec<String>> {
    let program = require_program("zbarimg", "zbar-tools")?;
    let out = Command::new(program)
        .args(["-q", "--raw"])
        .arg(image)
        .output()
        .expect("run zbarimg");
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// A PostgreSQL cluster of its own, in a temporary directory, on a free
/// loopback port; stopped and removed when dropped. As root, the server
/// runs as the `postgres` user (PostgreSQL refuses root).
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    run_as_postgres: bool,
}

impl PgCluster {
    /// `None` (and a note) when PostgreSQL is missing outside CI.
    pub fn start() -> Option<PgCluster> {
        PgCluster::start_with(None)
    }

    /// A cluster that speaks TLS with this certificate and key (PEM) and
    /// refuses connections over TCP without it.
    pub fn start_tls_only(cert_pem: &str, key_pem: &str) -> Option<PgCluster> {
        PgCluster::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<PgCluster> {
        let bin = find_postgres_bin()?;
        let dir = shared_temp_dir();
        let run_as_postgres = rustix::process::geteuid().is_root();
        if run_as_postgres {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let port = free_port();
        let mut cluster = PgCluster {
            dir,
            bin,
            port,
            run_as_postgres,
        };
        let data = cluster.data();
        let init = cluster
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        if let Some((cert, key)) = tls {
            cluster.use_tls_only(cert, key);
        }
        // Another test may take the port between its draw and the bind:
        // then draw again.
        for attempt in 1..=5 {
            match cluster.try_pg_ctl_start() {
                Ok(()) => return Some(cluster),
                Err(log) if attempt < 5 && log.contains("Address already in use") => cluster.port = free_port(),
                Err(log) => panic!("pg_ctl start: {log}"),
            }
        }
        unreachable!()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Puts the certificate and key where the server reads them (owned by
    /// the data directory's owner, the key private, as PostgreSQL wants),
    /// turns `ssl` on and lets TCP clients in only over TLS.
    fn use_tls_only(&self, cert: &str, key: &str) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let data = self.data();
        let owner = std::fs::metadata(&data).expect("the data directory");
        for (name, text, mode) in [("server.crt", cert, 0o644), ("server.key", key, 0o600)] {
            let path = data.join(name);
            std::fs::write(&path, text).expect("write the certificate");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown");
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    fn pg_ctl_start(&self) {
        if let Err(log) = self.try_pg_ctl_start() {
            panic!("pg_ctl start: {log}");
        }
    }

    fn try_pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let started = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .expect("run pg_ctl");
        if started.status.success() {
            return Ok(());
        }
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        ))
    }

    /// Stops the server (an outage), to be started again with [`PgCluster::resume`].
    pub fn pause(&self) {
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("run pg_ctl");
        assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    }

    pub fn resume(&self) {
        self.pg_ctl_start();
    }

    /// A new database and its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL with `psql` and returns its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// The directory of Debian's PostgreSQL server programs.
fn find_postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    let found = versions.pop();
    if found.is_none() {
        let advice = "PostgreSQL is missing: install it with `apt-get install postgresql` (or run scripts/test)";
        assert!(!in_ci(), "{advice}");
        eprintln!("skipped: {advice}");
    }
    found
}

/// A loopback port nothing listens on now, for a program that must be
/// told its port before it starts (varnishd, PostgreSQL, a closed port).
/// It is drawn below the kernel's ephemeral range (32768 and up), so the
/// tests' own outgoing connections never take it in the meantime; two
/// tests drawing the same one is a one-in-ten-thousand chance, and the
/// callers that can retry on another port do.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}

/// A temporary directory that other users can reach: PostgreSQL runs as
/// `postgres` and varnishd's worker as its own user, and a private
/// `TMPDIR` (mode 0700, as `mktemp -d` makes it) would lock them out. Such
/// directories go under `TMPDIR` when it is open to others, else `/tmp`.
pub fn shared_temp_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::temp_dir();
    let open = |dir: &Path| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    let base = if open(&base) { base } else { PathBuf::from("/tmp") };
    let dir = tempfile::Builder::new()
        .prefix("qrlaunch-it-")
        .tempdir_in(base)
        .expect("create a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The purge secret the test caches are given (`Qrlaunch-Purge-Token`).
pub const PURGE_SECRET: &str = "purge-secret-of-the-tests-0123456789abcdef";

/// The flag that makes an origin send [`PURGE_SECRET`] with its purges.
pub const PURGE_HEADER: &str = "Qrlaunch-Purge-Token: purge-secret-of-the-tests-0123456789abcdef";

/// A real `varnishd` with `deploy/varnish/qrlaunch.vcl` in front of one or
/// more qrlaunch scan listeners, on a free loopback port; its process group
/// is killed and its directory removed when dropped.
pub struct Varnish {
    child: Child,
    pub addr: String,
    /// Its `-n` directory, where `varnishncsa -n` finds its log.
    pub work: PathBuf,
    _dir: tempfile::TempDir,
}

impl Varnish {
    /// Starts on `port`, which the origin may already name in its
    /// `--purge-url`; `None` (and a note) when Varnish is missing outside CI.
    pub fn start_on(origin: &Server, port: u16) -> Option<Varnish> {
        Varnish::start_before(&[origin], port)
    }

    /// Starts in front of every origin in `origins`, taking turns among
    /// them (a `directors` round robin, as a fleet behind one cache has).
    pub fn start_before(origins: &[&Server], port: u16) -> Option<Varnish> {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let varnishd = require_program("varnishd", "varnish varnish-modules")?;
        // The worker process runs as an unprivileged user and reads here.
        let dir = shared_temp_dir();
        let secret = dir.path().join("purge.secret");
        std::fs::write(&secret, format!("{PURGE_SECRET}\n")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let ports: Vec<String> = origins
            .iter()
            .map(|o| o.scan_addr().rsplit(':').next().unwrap().to_string())
            .collect();
        let vcl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/varnish/qrlaunch.vcl"))
            .unwrap()
            .replace("/etc/varnish/qrlaunch-purge.secret", secret.to_str().unwrap());
        let vcl = if ports.len() == 1 {
            vcl.replace(".port = \"8080\";", &format!(".port = \"{}\";", ports[0]))
        } else {
            fleet_vcl(&vcl, &ports)
        };
        let vcl_path = dir.path().join("qrlaunch.vcl");
        std::fs::write(&vcl_path, vcl).unwrap();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(varnishd)
            .arg("-F")
            .arg("-n")
            .arg(dir.path().join("work"))
            .arg("-f")
            .arg(&vcl_path)
            .args(["-a", &addr, "-s", "malloc,64m"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start varnishd");
        let work = dir.path().join("work");
        let varnish = Varnish {
            child,
            addr,
            work,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = Client::new()
                .get(format!("http://{}/healthz", varnish.addr))
                .send()
                .is_ok_and(|r| r.status() == 200);
            if answered {
                return Some(varnish);
            }
            assert!(Instant::now() < deadline, "varnishd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL of `path` through the cache.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Purges everything (the cache's own ACL and secret).
    pub fn purge_all(&self) {
        let purged = Client::new()
            .request(reqwest::Method::from_bytes(b"PURGE").unwrap(), self.url("/"))
            .header("xkey-purge", "qrlaunch")
            .header("qrlaunch-purge-token", PURGE_SECRET)
            .send()
            .expect("purge");
        assert_eq!(purged.status(), 200, "purge everything");
    }
}

/// The shipped VCL with its one backend replaced by one per port, taken
/// in turn by a round-robin director.
fn fleet_vcl(vcl: &str, ports: &[String]) -> String {
    // The shipped VCL's commented block for several nodes, uncommented as
    // its comment says: the single backend goes, one backend per node (the
    // block's node0, at each port) joins the director.
    let start = vcl.find("backend qrlaunch {").expect("the backend block");
    let end = start + vcl[start..].find("\n}\n").expect("its end") + 3;
    let vcl = format!("{}{}", &vcl[..start], &vcl[end..]);
    let begin = vcl
        .find("# --- several nodes: begin\n")
        .expect("the block for several nodes");
    let stop = vcl.find("# --- several nodes: end\n").expect("its end");
    let block: String = vcl[begin..stop]
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix('#').unwrap_or(l)))
        .collect();
    let node0 = &block[block.find("backend node0 {").expect("node0")..];
    let node0 = &node0[..node0.find("\n}\n").expect("its end") + 3];
    let backends: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            node0
                .replace("backend node0 {", &format!("backend node{i} {{"))
                .replace("\"10.0.0.10\"", "\"127.0.0.1\"")
                .replace(".port = \"8080\";", &format!(".port = \"{port}\";"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let adds: String = (0..ports.len())
        .map(|i| format!("    fleet.add_backend(node{i});\n"))
        .collect();
    let init = block[block.find("sub vcl_init {").expect("vcl_init")..]
        .replace("    fleet.add_backend(node0);\n    fleet.add_backend(node1);\n", &adds);
    let uncommented = format!("import directors;\n\n{backends}\n{init}");
    let vcl = format!("{}{uncommented}{}", &vcl[..begin], &vcl[stop..]);
    let recv = "    # set req.backend_hint = fleet.backend();\n";
    assert!(vcl.contains(recv), "the director line in vcl_recv");
    vcl.replacen(recv, "    set req.backend_hint = fleet.backend();\n", 1)
}

impl Drop for Varnish {
    fn drop(&mut self) {
        // The manager and its worker.
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// A certificate authority made for one test (rcgen), and the server
/// certificates it signs.
pub struct TestCa {
    certificate: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let certificate = params.self_signed(&key).expect("a CA certificate");
        TestCa {
            certificate,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM), what a client is told to trust.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses) and
    /// its private key, both PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        self.issue_until(names, None)
    }

    /// Like [`TestCa::issue`], valid until 1 January of `year` (rcgen's far
    /// future by default).
    pub fn issue_until(&self, names: &[&str], year: Option<i32>) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).expect("server parameters");
        if let Some(year) = year {
            params.not_after = rcgen::date_time_ymd(year, 1, 1);
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].as_str());
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("a server key");
        let certificate = params.signed_by(&key, &self.issuer).expect("a server certificate");
        (certificate.pem(), key.serialize_pem())
    }
}

/// Runs a program to its end; its standard output, trimmed. A failure (or
/// a program that cannot start) panics with both streams.
pub fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{command:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_string()
}
