//! Certificates from a real ACME server: Debian's `pebble` (Let's
//! Encrypt's test server) with `pebble-challtestsrv` answering its DNS,
//! both on loopback, and a fleet of two nodes on one real PostgreSQL.
//! Node A orders; pebble validates the HTTP-01 challenge on node B's
//! plain listener; node B serves the certificate by SNI; a renewal made
//! due in the store is taken by A and served by B.

use crate::support::*;
use reqwest::Method;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A program the test started; its process group is killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        kill_group(self.0.id());
        let _ = self.0.wait();
    }
}

fn spawn(program: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Running {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    Running(child)
}

/// pebble and its DNS, with pebble's HTTP-01 checks sent to `http_port`.
struct Pebble {
    _dns: Running,
    _pebble: Running,
    dir: tempfile::TempDir,
    /// The directory URL.
    url: String,
    /// pebble's own CA (its API's TLS), for `--ca-file`.
    api_ca: String,
    management: String,
}

impl Pebble {
    fn start(http_port: u16) -> Option<Pebble> {
        let pebble = require_program("pebble", "pebble")?;
        let challtestsrv = require_program("pebble-challtestsrv", "pebble")?;
        let dir = temp_dir();
        let (dns_port, api_port, management_port) = (free_port(), free_port(), free_port());
        // Every name resolves to 127.0.0.1 (and has no AAAA record).
        let dns = spawn(
            &challtestsrv,
            &[
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_port()),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ],
            &[],
            &dir.path().join("challtestsrv.log"),
        );
        let ca = TestCa::new("pebble API CA");
        let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
        std::fs::write(dir.path().join("api.pem"), cert).unwrap();
        std::fs::write(dir.path().join("api.key"), key).unwrap();
        std::fs::write(dir.path().join("api-ca.pem"), ca.pem()).unwrap();
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{api_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("api.pem"),
            "privateKey": dir.path().join("api.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let server = spawn(
            &pebble,
            &[
                "-config",
                dir.path().join("pebble.json").to_str().unwrap(),
                "-dnsserver",
                &format!("127.0.0.1:{dns_port}"),
            ],
            // No random wait before validating, no nonces refused on
            // purpose, and every order validated afresh (a renewal too).
            &[
                ("PEBBLE_VA_NOSLEEP", "1"),
                ("PEBBLE_WFE_NONCEREJECT", "0"),
                ("PEBBLE_AUTHZREUSE", "0"),
            ],
            &dir.path().join("pebble.log"),
        );
        let pebble = Pebble {
            _dns: dns,
            _pebble: server,
            url: format!("https://localhost:{api_port}/dir"),
            api_ca: dir.path().join("api-ca.pem").to_str().unwrap().to_string(),
            management: format!("https://localhost:{management_port}"),
            dir,
        };
        let client = pebble.client();
        eventually(Duration::from_secs(30), "pebble answers its directory", || {
            client.get(&pebble.url).send().is_ok_and(|r| r.status() == 200)
        });
        Some(pebble)
    }

    fn client(&self) -> reqwest::blocking::Client {
        let ca = std::fs::read(&self.api_ca).unwrap();
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap()
    }

    /// The root pebble issues under (made anew at each start).
    fn issuing_root(&self) -> String {
        self.client()
            .get(format!("{}/roots/0", self.management))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .expect("pebble's root")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

/// A node of the fleet on `url`.
fn node(url: &str, extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = temp_dir();
    let mut args = vec!["--store", url, "--sync-poll", "100ms"];
    args.extend_from_slice(extra);
    let server = Server::start_on(&dir.path().join("data"), &args);
    (dir, server)
}

/// The leaf certificate `server`'s TLS listener shows for `host`, verified
/// against `root`, or why there is none.
fn served_leaf(server: &Server, host: &str, root: &str) -> Result<Vec<u8>, String> {
    let tls = server.tls.as_deref().expect("a TLS listener");
    let addr: std::net::SocketAddr = tls.trim_start_matches("https://").parse().unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let response = client
        .get(format!("https://{host}:{}/healthz", addr.port()))
        .send()
        .map_err(|e| format!("{e:?}"))?;
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "no certificate".into())
}

#[test]
fn a_fleet_gets_serves_and_renews_certificates_from_a_real_acme_server() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.database("acme");
    // B: no ACME of its own; pebble checks challenges on B's plain
    // listener, so B answers what A asked for.
    let (_b_dir, b) = node(&url, &["--tls-listen", "127.0.0.1:0"]);
    let b_port: u16 = b.scan_addr().rsplit(':').next().unwrap().parse().unwrap();
    let Some(pebble) = Pebble::start(b_port) else {
        return;
    };
    let (_a_dir, a) = node(
        &url,
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--public-url",
            "https://go.shop-example.com/",
            "--acme-directory",
            &pebble.url,
            "--acme-email",
            "ops@shop-example.com",
            "--ca-file",
            &pebble.api_ca,
            "--acme-check-interval",
            "1s",
        ],
    );
    // A rule puts a second host in the table (through B: the table is the
    // fleet's).
    let rule = serde_json::json!({
        "prefix": "https://app.shop-example.com/download",
        "appid": "wx1234567890abcdef",
        "path": "pages/download/index"
    });
    let created = b.send_json(Method::POST, "/admin/v1/rules", &rule);
    assert_eq!(created.status(), 201);

    let root = pebble.issuing_root();
    let mut first = std::collections::BTreeMap::new();
    for host in ["go.shop-example.com", "app.shop-example.com"] {
        let deadline = Instant::now() + Duration::from_secs(90);
        let leaf = loop {
            match served_leaf(&b, host, &root) {
                Ok(leaf) => break leaf,
                Err(why) => assert!(
                    Instant::now() < deadline,
                    "B never served {host}: {why}\nA:\n{}\npebble:\n{}",
                    a.logs(),
                    pebble.logs()
                ),
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        // A serves the same certificate, verified against pebble's root.
        eventually(Duration::from_secs(20), "A serves the same certificate", || {
            served_leaf(&a, host, &root).is_ok_and(|l| l == leaf)
        });
        first.insert(host, leaf);
    }
    // A name no certificate holds still fails the handshake.
    assert!(served_leaf(&b, "other.shop-example.com", &root).is_err());
    assert!(b.metric("qrlaunch_tls_unknown_host_total") >= 1.0);
    assert!(a.metric("qrlaunch_acme_orders_total{outcome=\"issued\"}") >= 2.0);

    // The challenge files are gone again, and the audit log says who.
    eventually(Duration::from_secs(20), "no challenge file is left", || {
        let listed = a.get_admin("/admin/v1/hosts/go.shop-example.com/files");
        listed.status() == 404
            || json_of(listed)["items"]
                .as_array()
                .is_some_and(|items| items.is_empty())
    });
    let audit = json_of(a.get_admin("/admin/v1/audit?entry=go.shop-example.com"));
    let text = audit.to_string();
    assert!(
        text.contains("certificate_create") && text.contains("qrlaunch acme"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "no key in the audit log");

    // Renewal: made due in the store, taken by A at its next look, served
    // by B from the change log. A restarted node (C) serves it too.
    cluster.psql(
        "acme",
        "UPDATE certificates SET renew_after = 0 WHERE name = 'go.shop-example.com'",
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = served_leaf(&b, "go.shop-example.com", &root);
        if now.as_ref().is_ok_and(|leaf| leaf != &first["go.shop-example.com"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never served a renewed certificate: {now:?}\nA:\n{}",
            a.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let renewed = served_leaf(&b, "go.shop-example.com", &root).unwrap();
    assert_eq!(
        served_leaf(&b, "app.shop-example.com", &root).unwrap(),
        first["app.shop-example.com"],
        "only the certificate due was renewed"
    );
    // C has the same ACME flags as A: A holds the fleet's lease, so C
    // orders nothing (checked at the end).
    let (_c_dir, c) = node(
        &url,
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--acme-directory",
            &pebble.url,
            "--ca-file",
            &pebble.api_ca,
            "--acme-check-interval",
            "1s",
        ],
    );
    eventually(
        Duration::from_secs(20),
        "a new node serves the renewed certificate",
        || served_leaf(&c, "go.shop-example.com", &root).is_ok_and(|l| l == renewed),
    );
    let renewals = a.get_admin("/admin/v1/audit?entry=go.shop-example.com");
    assert!(json_of(renewals).to_string().contains("certificate_renew"));
    // Due again, with two nodes able to order: only the lease holder does.
    cluster.psql(
        "acme",
        "UPDATE certificates SET renew_after = 0 WHERE name = 'go.shop-example.com'",
    );
    eventually(Duration::from_secs(60), "a third certificate is served", || {
        served_leaf(&b, "go.shop-example.com", &root).is_ok_and(|l| l != renewed && l != first["go.shop-example.com"])
    });

    // A host that leaves the table loses its certificate once it would
    // have been renewed: no node serves it any more.
    let removed = b
        .admin(
            Method::DELETE,
            "/admin/v1/rules?prefix=https%3A%2F%2Fapp.shop-example.com%2Fdownload",
        )
        .send()
        .unwrap();
    assert_eq!(removed.status(), 204);
    cluster.psql(
        "acme",
        "UPDATE certificates SET renew_after = 0 WHERE name = 'app.shop-example.com'",
    );
    eventually(Duration::from_secs(30), "no node serves the host that left", || {
        served_leaf(&b, "app.shop-example.com", &root).is_err()
            && served_leaf(&c, "app.shop-example.com", &root).is_err()
    });
    let audit = json_of(a.get_admin("/admin/v1/audit?entry=app.shop-example.com"));
    assert!(audit.to_string().contains("certificate_delete"), "{audit}");
    assert!(served_leaf(&b, "go.shop-example.com", &root).is_ok(), "the other stays");
    for server in [&a, &b, &c] {
        assert!(!server.logs().contains("PRIVATE KEY"), "{}", server.logs());
    }
    assert!(
        !c.logs().contains("this node orders") && c.logs().contains("another node orders"),
        "one node orders, and C asked: {}",
        c.logs()
    );
    assert_eq!(c.metric("qrlaunch_acme_orders_total{outcome=\"issued\"}"), 0.0);
    assert_eq!(c.metric("qrlaunch_acme_orders_total{outcome=\"failed\"}"), 0.0);
}

#[test]
fn bad_acme_flags_stop_the_start_with_a_message_naming_the_flag() {
    let dir = temp_dir();
    for (args, says) in [
        (vec!["--acme-directory", "not a url"], "--acme-directory"),
        (
            vec!["--acme-directory", "http://acme.example/dir"],
            "must be an https URL",
        ),
        (
            vec!["--acme-directory", "https://acme.example/dir", "--acme-email", "nobody"],
            "--acme-email",
        ),
        (
            vec![
                "--acme-directory",
                "https://acme.example/dir",
                "--acme-check-interval",
                "0s",
            ],
            "--acme-check-interval",
        ),
        (vec!["--acme-email", "ops@example.com"], "--acme-directory"),
    ] {
        let failure = Server::try_start_on(&dir.path().join("data"), &args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} was accepted"));
        assert!(failure.contains(says), "{args:?}: {failure}");
    }
}
