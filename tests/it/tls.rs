//! TLS on every link that carries a secret: to PostgreSQL (a cluster that
//! refuses plain connections, with a CA made in the test), the admin
//! listener serving TLS itself, and the CLI speaking `https://` to it.

use crate::support::*;
use reqwest::Method;
use std::time::Duration;

/// Writes `text` to `dir/name` and gives its path as a string.
fn file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path.to_str().expect("a UTF-8 temp path").to_string()
}

#[test]
fn postgres_over_tls_is_verified_and_a_wrong_ca_or_name_is_refused() {
    let ca = TestCa::new("qrlaunch test CA");
    let (cert, key) = ca.issue(&["localhost"]);
    let Some(cluster) = PgCluster::start_tls_only(&cert, &key) else {
        return;
    };
    cluster.psql("postgres", "CREATE DATABASE tls");
    let dir = temp_dir();
    let right_ca = file(dir.path(), "ca.pem", &ca.pem());
    let wrong_ca = file(dir.path(), "other-ca.pem", &TestCa::new("another CA").pem());
    let port = cluster.port;
    // The password is not checked (trust), only carried: it must never be
    // shown.
    let url = |host: &str, mode: &str, root: &str| {
        format!("postgres://postgres:pw-never-shown@{host}:{port}/tls?sslmode={mode}&sslrootcert={root}")
    };

    let server = Server::start_on(
        &dir.path().join("a"),
        &["--store", &url("localhost", "verify-full", &right_ca)],
    );
    let created = server.send_json(Method::PUT, "/admin/v1/codes/overtls", &code_body("pages/tls", "a=1"));
    assert_eq!(created.status(), 201, "a write through a verified TLS connection");
    assert_eq!(server.scan("/overtls").status(), 302);
    let encrypted = cluster.psql(
        "postgres",
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'qrlaunch'",
    );
    let (with_tls, without) = encrypted.split_once('|').expect("two counts");
    assert!(
        with_tls.parse::<u32>().unwrap() >= 1,
        "qrlaunch's connections use TLS: {encrypted}"
    );
    assert_eq!(without, "0", "no plain connection: {encrypted}");
    assert!(!server.logs().contains("pw-never-shown"), "{}", server.logs());
    drop(server);

    // Each refusal stops the start at once, says what to check, and never
    // shows the password.
    let refused = |name: &str, store: &str| {
        let failure = Server::try_start_on(&dir.path().join(name), &["--store", store])
            .err()
            .unwrap_or_else(|| panic!("{name}: qrlaunch started"));
        assert!(!failure.contains("pw-never-shown"), "{name}: {failure}");
        assert!(!failure.contains("retrying"), "{name}: a refusal is final: {failure}");
        failure
    };
    let failure = refused("wrong-ca", &url("localhost", "verify-full", &wrong_ca));
    assert!(
        failure.contains("UnknownIssuer") && failure.contains("sslrootcert"),
        "a wrong CA: {failure}"
    );
    let failure = refused("wrong-name", &url("127.0.0.1", "verify-full", &right_ca));
    assert!(
        (failure.contains("NotValidForName") || failure.contains("not valid for name"))
            && failure.contains("verify-full"),
        "a name the certificate does not carry: {failure}"
    );
    let failure = refused("no-ca-file", &url("localhost", "verify-full", "/nonexistent/ca.pem"));
    assert!(
        failure.contains("sslrootcert"),
        "a CA file that is not there: {failure}"
    );
    let failure = refused("plain", &url("localhost", "disable", &right_ca));
    assert!(
        failure.contains("no encryption"),
        "the server refuses plain connections: {failure}"
    );

    // verify-ca checks the CA. (It should not check the name; sqlx 0.8
    // with rustls does, launchbadge/sqlx#3793, so the README says to name
    // the host the certificate names.)
    let server = Server::start_on(
        &dir.path().join("b"),
        &["--store", &url("localhost", "verify-ca", &right_ca)],
    );
    assert_eq!(server.scan("/overtls").status(), 302);
    drop(server);
    let failure = refused("wrong-ca-verify-ca", &url("localhost", "verify-ca", &wrong_ca));
    assert!(failure.contains("UnknownIssuer"), "verify-ca checks the CA: {failure}");
}

/// The CLI as a subprocess with these flags and no token in its
/// environment.
fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(args)
        .env_remove("QRLAUNCH_ADMIN_TOKEN")
        .env_remove("QRLAUNCH_CA_FILE")
        .env_remove("QRLAUNCH_ALLOW_PLAIN_HTTP")
        .output()
        .expect("run the CLI")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_admin_listener_serves_tls_and_takes_a_new_certificate_and_token_on_sighup() {
    let dir = temp_dir();
    let d = dir.path();
    let first_ca = TestCa::new("first admin CA");
    let (cert, key) = first_ca.issue(&["localhost", "127.0.0.1"]);
    let cert_file = file(d, "admin.crt", &cert);
    let key_file = file(d, "admin.key", &key);
    let first_ca_file = file(d, "first-ca.pem", &first_ca.pem());
    let first_token = "first-token-of-the-tls-test-0123456789";
    let token_file = file(d, "token", first_token);
    let first_token_file = file(d, "first-token", first_token);
    let server = Server::start_on(
        &d.join("data"),
        &[
            "--admin-tls-cert",
            &cert_file,
            "--admin-tls-key",
            &key_file,
            "--admin-token-file",
            &token_file,
            "--admin-token-grace",
            "1h",
        ],
    );
    assert!(server.admin.starts_with("https://127.0.0.1:"), "{}", server.admin);
    let admin = server.admin.clone();
    let get = |token_file: &str, ca_file: &str| {
        cli(&[
            "code",
            "get",
            "spring24",
            "--admin-url",
            &admin,
            "--admin-token-file",
            token_file,
            "--ca-file",
            ca_file,
        ])
    };

    // The CLI over TLS, trusting the CA it is given.
    let got = get(&token_file, &first_ca_file);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(String::from_utf8_lossy(&got.stdout).contains("\"code\":\"spring24\""));
    // Without the CA, the certificate is refused, and the message says where to look.
    let untrusted = cli(&[
        "code",
        "get",
        "spring24",
        "--admin-url",
        &admin,
        "--admin-token-file",
        &token_file,
    ]);
    assert!(!untrusted.status.success());
    assert!(
        stderr(&untrusted).contains("certificate") && stderr(&untrusted).contains("--ca-file"),
        "{}",
        stderr(&untrusted)
    );
    // Plain HTTP to the TLS listener gets no answer, and the refusal is counted.
    let plain = reqwest::blocking::Client::new()
        .get(admin.replace("https://", "http://") + "/admin/v1/codes/spring24")
        .send();
    assert!(plain.is_err(), "{plain:?}");
    eventually(
        std::time::Duration::from_secs(10),
        "the failed handshake is counted",
        || server.metric("qrlaunch_connections_refused_total{listener=\"admin\",reason=\"tls_handshake\"}") >= 1.0,
    );
    // http:// off loopback is refused before anything is sent.
    let clear = cli(&[
        "code",
        "get",
        "spring24",
        "--admin-url",
        "http://192.0.2.1:8081",
        "--admin-token-file",
        &token_file,
    ]);
    assert!(
        stderr(&clear).contains("--admin-url: http:// to 192.0.2.1"),
        "{}",
        stderr(&clear)
    );
    let bad_ca = get(&token_file, &token_file);
    assert!(
        !bad_ca.status.success() && stderr(&bad_ca).contains("--ca-file"),
        "{}",
        stderr(&bad_ca)
    );

    // A new certificate from another CA and a new token, then SIGHUP.
    let second_ca = TestCa::new("second admin CA");
    let (cert, key) = second_ca.issue(&["127.0.0.1"]);
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let second_ca_file = file(d, "second-ca.pem", &second_ca.pem());
    let second_token = "second-token-of-the-tls-test-0123456789";
    std::fs::write(&token_file, second_token).unwrap();
    server.signal("HUP");
    eventually(
        std::time::Duration::from_secs(10),
        "the new certificate is served",
        || get(&token_file, &second_ca_file).status.success(),
    );
    let old_ca = get(&token_file, &first_ca_file);
    assert!(!old_ca.status.success(), "the old certificate is no longer served");
    // The old token still works for the grace period; a wrong one does not.
    let old_token = get(&first_token_file, &second_ca_file);
    assert!(old_token.status.success(), "{}", stderr(&old_token));
    let wrong = file(d, "wrong-token", "wrong-token-of-the-tls-test-0123456789");
    assert!(!get(&wrong, &second_ca_file).status.success());
    // A key that does not exist is refused at SIGHUP; what is served stays.
    std::fs::remove_file(&key_file).unwrap();
    server.signal("HUP");
    eventually(
        std::time::Duration::from_secs(10),
        "the failed reload is logged",
        || {
            server
                .logs()
                .contains("keeping the admin listener's certificate in use")
        },
    );
    assert!(get(&token_file, &second_ca_file).status.success());
    for secret in [first_token, second_token] {
        assert!(!server.logs().contains(secret), "no token in the logs");
    }
}

#[test]
fn a_bad_certificate_or_key_stops_the_start_naming_the_flag() {
    let dir = temp_dir();
    let d = dir.path();
    let ca = TestCa::new("CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let (_, other_key) = ca.issue(&["127.0.0.1"]);
    let cert_file = file(d, "a.crt", &cert);
    let key_file = file(d, "a.key", &key);
    let other_key_file = file(d, "b.key", &other_key);
    let not_pem = file(d, "not.pem", "hello");
    for (name, cert, key, expected) in [
        ("no-cert", not_pem.as_str(), key_file.as_str(), "--admin-tls-cert"),
        ("no-key", cert_file.as_str(), not_pem.as_str(), "--admin-tls-key"),
        (
            "mismatch",
            cert_file.as_str(),
            other_key_file.as_str(),
            "do not make a pair",
        ),
    ] {
        let failure = Server::try_start_on(&d.join(name), &["--admin-tls-cert", cert, "--admin-tls-key", key])
            .err()
            .unwrap_or_else(|| panic!("{name}: started"));
        assert!(failure.contains(expected), "{name}: {failure}");
        assert!(
            !failure.contains("PRIVATE KEY"),
            "{name}: no key material in the message"
        );
    }
}

#[test]
fn purges_go_over_https_trusting_the_ca_file() {
    // The "cache" is another node's TLS admin listener: it answers a purge
    // with 401, which shows the purge arrived over a verified connection.
    let dir = temp_dir();
    let d = dir.path();
    let ca = TestCa::new("purge CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let cert_file = file(d, "cache.crt", &cert);
    let key_file = file(d, "cache.key", &key);
    let ca_file = file(d, "ca.pem", &ca.pem());
    let cache = Server::start_on(
        &d.join("cache"),
        &["--admin-tls-cert", &cert_file, "--admin-tls-key", &key_file],
    );
    let purge_url = format!("--purge-url={}", cache.admin);
    let trusting = Server::start_on(&d.join("trusting"), &[&purge_url, "--ca-file", &ca_file]);
    let created = trusting.send_json(Method::PUT, "/admin/v1/codes/purged", &code_body("p", "a=1"));
    assert_eq!(created.status(), 201);
    eventually(std::time::Duration::from_secs(20), "the purge arrives over TLS", || {
        cache.metric("qrlaunch_admin_requests_total{status=\"401\"}") >= 1.0
    });

    let untrusting = Server::start_on(&d.join("untrusting"), &[&purge_url]);
    let created = untrusting.send_json(Method::PUT, "/admin/v1/codes/unpurged", &code_body("p", "a=1"));
    assert_eq!(created.status(), 201);
    eventually(std::time::Duration::from_secs(20), "the unknown CA is refused", || {
        cache.metric("qrlaunch_connections_refused_total{listener=\"admin\",reason=\"tls_handshake\"}") >= 1.0
    });
    assert!(
        untrusting.metric("qrlaunch_purges_total{outcome=\"ok\"}") == 0.0,
        "no purge counts as sent without a trusted certificate"
    );
    let bad = Server::try_start_on(
        &d.join("bad"),
        &[&purge_url, "--ca-file", &cert_file.replace(".crt", ".key")],
    )
    .err()
    .expect("a CA file without a certificate stops the start");
    assert!(bad.contains("--ca-file"), "{bad}");
}

#[test]
fn a_token_from_the_environment_stays_through_sighup() {
    let dir = temp_dir();
    let token = "token-from-the-environment-0123456789";
    let server = Server::try_start_with(&dir.path().join("data"), &[], &|c| {
        c.env("QRLAUNCH_ADMIN_TOKEN", token);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let get = || {
        server
            .client()
            .get(format!("{}/admin/v1/codes/spring24", server.admin))
            .bearer_auth(token)
            .send()
            .expect("the admin API answers")
            .status()
    };
    assert_eq!(get(), 200);
    server.signal("HUP");
    eventually(std::time::Duration::from_secs(10), "the SIGHUP is handled", || {
        server.logs().contains("stays")
    });
    assert_eq!(get(), 200, "the token is still the one from the environment");
    assert!(!dir.path().join("data/admin-token").exists(), "no token was generated");
}

/// Writes a certificate for `names` in certbot's layout,
/// `live/DIR/fullchain.pem` and `privkey.pem`; returns its DER.
fn certbot(ca: &TestCa, live: &std::path::Path, dir: &str, names: &[&str]) -> Vec<u8> {
    certbot_until(ca, live, dir, names, None)
}

/// Like [`certbot`], valid until 1 January of `year`.
fn certbot_until(ca: &TestCa, live: &std::path::Path, dir: &str, names: &[&str], year: Option<i32>) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    let (cert, key) = ca.issue_until(names, year);
    let sub = live.join(dir);
    std::fs::create_dir_all(&sub).unwrap();
    // Written next to the live files and renamed over them, as certbot
    // swaps its symlinks: a reader never sees half a file.
    for (name, text) in [("privkey.pem", &key), ("fullchain.pem", &cert)] {
        let part = sub.join(format!("{name}.new"));
        std::fs::write(&part, text).unwrap();
        std::fs::rename(&part, sub.join(name)).unwrap();
    }
    rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn scans_over_tls_choose_the_certificate_by_sni_and_take_renewals() {
    let dir = temp_dir();
    let live = dir.path().join("live");
    let ca = TestCa::new("scan CA");
    let app = certbot(&ca, &live, "app.shop-example.com", &["app.shop-example.com"]);
    let org = certbot(&ca, &live, "example.org", &["example.org", "*.example.org"]);
    std::fs::write(live.join("README"), "certbot's note, not a certificate").unwrap();
    // An abandoned lineage that sorts last and still names the host: the
    // certificate that expires last wins the name.
    certbot_until(&ca, &live, "zz-old-app", &["app.shop-example.com"], Some(2031));
    let port = free_port();
    let table = format!(
        r#"{{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index"}}
{{"prefix":"https://app.shop-example.com:{port}/download","appid":"wx1234567890abcdef","path":"pages/download/index"}}
{{"prefix":"http://app.shop-example.com:{port}/download","appid":"wx1234567890abcdef","path":"pages/plain/index"}}
"#
    );
    let listen = format!("127.0.0.1:{port}");
    let server = Server::with_table(
        &table,
        &["--tls-listen", &listen, "--tls-cert-dir", live.to_str().unwrap()],
    );
    assert_eq!(server.tls.as_deref(), Some(format!("https://{listen}").as_str()));
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let client = || {
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .resolve("app.shop-example.com", addr)
            .resolve("shop.example.org", addr)
            .resolve("example.org", addr)
            .resolve("other.example.net", addr)
            .redirect(reqwest::redirect::Policy::none())
            .tls_info(true)
            .build()
            .unwrap()
    };
    let served = |response: &reqwest::blocking::Response| {
        response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(<[u8]>::to_vec)
            .unwrap()
    };

    // The host's own certificate, and the request is https: the https rule answers.
    let keep_alive = client();
    let url = format!("https://app.shop-example.com:{port}/download?channel=7");
    let response = keep_alive.get(&url).send().unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(served(&response), app);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("path=pages/download/index"), "{location}");
    // A wildcard, and its parent name.
    for host in ["shop.example.org", "example.org"] {
        let response = client().get(format!("https://{host}:{port}/spring24")).send().unwrap();
        assert_eq!(response.status(), 302, "{host}");
        assert_eq!(served(&response), org, "{host}");
    }
    // A host no certificate holds: the handshake fails, and is counted.
    let refused = client()
        .get(format!("https://other.example.net:{port}/spring24"))
        .send();
    assert!(refused.is_err(), "{refused:?}");
    eventually(Duration::from_secs(10), "the unknown host is counted", || {
        server.metric("qrlaunch_tls_unknown_host_total") >= 1.0
            && server.metric("qrlaunch_connections_refused_total{listener=\"scan_tls\",reason=\"tls_handshake\"}")
                >= 1.0
    });
    // Plain scans still answer on the plain listener.
    assert_eq!(server.scan("/spring24").status(), 302);
    // When the first certificate served expires, for the expiry alert: the
    // abandoned one (2031) serves no name, so it does not count.
    let expiry = server.metric("qrlaunch_tls_certificate_expiry_seconds{listener=\"scan_tls\"}");
    assert!(expiry > 1_956_528_000.0, "after 2032-01-01: {expiry}");

    // A renewal: new connections get the new certificate once the files
    // change; the connection open before it keeps working.
    let renewed = certbot(&ca, &live, "app.shop-example.com", &["app.shop-example.com"]);
    assert_ne!(renewed, app);
    eventually(Duration::from_secs(20), "the renewed certificate is served", || {
        client().get(&url).send().is_ok_and(|r| served(&r) == renewed)
    });
    assert_eq!(keep_alive.get(&url).send().unwrap().status(), 302);

    // A broken file keeps what is served, and says so.
    std::fs::write(live.join("example.org").join("fullchain.pem"), "not a certificate").unwrap();
    eventually(Duration::from_secs(20), "the failed reload is logged", || {
        server.logs().contains("keeping the TLS scan certificates in use")
    });
    let response = client()
        .get(format!("https://shop.example.org:{port}/spring24"))
        .send()
        .unwrap();
    assert_eq!(served(&response), org);
    // Fixed, and read again on SIGHUP (or the next look at the files).
    let org2 = certbot(&ca, &live, "example.org", &["example.org", "*.example.org"]);
    server.signal("HUP");
    eventually(Duration::from_secs(20), "the fixed certificate is served", || {
        client()
            .get(format!("https://shop.example.org:{port}/spring24"))
            .send()
            .is_ok_and(|r| served(&r) == org2)
    });
}

#[test]
fn a_certificate_directory_without_certificates_stops_the_start() {
    let dir = temp_dir();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let ca = TestCa::new("start CA");
    let mismatched = dir.path().join("mismatched");
    certbot(&ca, &mismatched, "a.example.com", &["a.example.com"]);
    let (_, other_key) = ca.issue(&["b.example.com"]);
    std::fs::write(mismatched.join("a.example.com").join("privkey.pem"), other_key).unwrap();
    for (cert_dir, says) in [
        (empty.to_str().unwrap().to_string(), "fullchain.pem"),
        (
            dir.path().join("missing").to_str().unwrap().to_string(),
            "not a directory",
        ),
        (mismatched.to_str().unwrap().to_string(), "not the key of"),
    ] {
        let failure = Server::try_start_on(
            &dir.path().join("data"),
            &["--tls-listen", "127.0.0.1:0", "--tls-cert-dir", &cert_dir],
        )
        .err()
        .unwrap_or_else(|| panic!("{cert_dir} was accepted"));
        assert!(
            failure.contains("--tls-cert-dir") && failure.contains(says),
            "{failure}"
        );
        assert!(!failure.contains("PRIVATE KEY"), "no key in the message");
    }
}
