//! Domains: codes on their own hosts, legacy hosts taken over safely
//! (pass-through, verification files), the scheme behind proxies, WeChat's
//! query limit, and one answer for scans and `/v1/resolve`.

use crate::support::*;
use reqwest::Method;
use std::process::Command;

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

const TABLE: &str = r#"{"code":"download","appid":"wx1234567890abcdef","path":"pages/code/index"}
{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42"}
{"code":"off","appid":"wx1234567890abcdef","path":"p","disabled":true}
{"prefix":"https://app.shop-example.com/download","appid":"wx1234567890abcdef","path":"pages/rule/dl","query":"from=box"}
{"prefix":"https://app.shop-example.com/d/","appid":"wx1234567890abcdef","path":"pages/rule/d"}
{"prefix":"http://plain.example.com/dl","appid":"wx1234567890abcdef","path":"pages/rule/plain"}
{"prefix":"https://secure.example.com/x","appid":"wx1234567890abcdef","path":"pages/rule/secure"}
{"prefix":"https://old.example.com/gone","appid":"wx1234567890abcdef","path":"p","disabled":true}
{"host":"app.shop-example.com","unmatched":"https://origin.shop-example.com"}
{"host":"app.shop-example.com","file":"/MP_verify_abc123.txt","body":"abc123"}
"#;

/// A scan of `path` on `host` over `scheme` (said by a trusted proxy).
fn scan(server: &Server, scheme: &str, host: &str, path: &str) -> Response {
    server
        .client()
        .get(format!("{}{path}", server.scan))
        .header("host", host)
        .header("x-forwarded-proto", scheme)
        .header("user-agent", IPHONE)
        .send()
        .expect("scan")
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn resolve(server: &Server, url: &str) -> Response {
    let encoded = percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC);
    server.scan(&format!("/v1/resolve?url={encoded}"))
}

#[test]
fn codes_answer_only_under_their_public_urls() {
    let server = Server::with_table(TABLE, &["--public-url", "https://go.example.com/"]);
    assert!(server.logs().contains("launch codes answer only under the public URLs"));
    // The legacy host's /download is the rule's, not the code's.
    let legacy = scan(&server, "https", "app.shop-example.com", "/download?src=box1");
    assert_eq!(legacy.status(), 302);
    assert!(
        location(&legacy).contains("path=pages/rule/dl"),
        "{}",
        location(&legacy)
    );
    let code = scan(&server, "https", "go.example.com", "/download");
    assert!(location(&code).contains("path=pages/code/index"));
    assert_eq!(scan(&server, "https", "other.example.com", "/spring24").status(), 404);
    let resolved = json_of(resolve(&server, "https://app.shop-example.com/download?src=box1"));
    assert_eq!(resolved["kind"], "rule");
    assert_eq!(
        json_of(resolve(&server, "https://go.example.com/download"))["kind"],
        "code"
    );

    // Without --public-url a code wins on every host, and the log says so.
    let anywhere = Server::with_table(TABLE, &[]);
    assert!(anywhere.logs().contains("launch codes answer on every host"));
    let taken = scan(&anywhere, "https", "app.shop-example.com", "/download?src=box1");
    assert!(location(&taken).contains("path=pages/code/index"));
    assert_eq!(
        json_of(resolve(&anywhere, "https://app.shop-example.com/download?src=box1"))["kind"],
        "code"
    );
}

#[test]
fn a_code_that_shadows_a_rule_is_named_in_a_warning() {
    let server = Server::with_table(TABLE, &[]);
    let put = json_of(server.send_json(
        Method::PUT,
        "/admin/v1/codes/d",
        &json!({"appid": "wx1234567890abcdef", "path": "p"}),
    ));
    assert!(
        put["warnings"].as_array().is_none_or(|w| w.is_empty()),
        "no rule takes /d: {put}"
    );
    let put = json_of(server.send_json(
        Method::PUT,
        "/admin/v1/codes/download",
        &json!({"appid": "wx1234567890abcdef", "path": "p2"}),
    ));
    let warning = &put["warnings"][0];
    assert_eq!(warning["code"], "download", "{put}");
    assert_eq!(warning["prefix"], "https://app.shop-example.com/download");
    // And the other way round: a rule whose URL a code takes.
    let rule = json_of(server.send_json(
        Method::POST,
        "/admin/v1/rules",
        &json!({"prefix": "https://app.shop-example.com/spring24?x=", "appid": "wx1234567890abcdef", "path": "p"}),
    ));
    assert_eq!(rule["warnings"][0]["code"], "spring24", "{rule}");
    // The CLI and imports print them.
    let cli = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args([
            "code",
            "set",
            "download",
            "--query",
            "v=2",
            "--admin-url",
            &server.admin,
        ])
        .env("QRLAUNCH_ADMIN_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("warning: code `download` takes"));
    let import = json_of(
        server
            .admin(Method::POST, "/admin/v1/import")
            .header("content-type", "application/x-ndjson")
            .body(r#"{"code":"download","appid":"wx1234567890abcdef","path":"p3"}"#)
            .send()
            .unwrap(),
    );
    assert_eq!(import["warnings"][0]["code"], "download", "{import}");
}

#[test]
fn the_scheme_comes_from_trusted_proxies_or_assume_https() {
    let server = Server::with_table(TABLE, &["--log", "info,qrlaunch=debug"]);
    let forwarded = server
        .client()
        .get(format!("{}/download?x=1", server.scan))
        .header("host", "app.shop-example.com")
        .header("forwarded", "for=198.51.100.7;proto=https")
        .send()
        .unwrap();
    // A code wins here (no --public-url); the rule is reached with /d/.
    assert_eq!(forwarded.status(), 302);
    let rule = server
        .client()
        .get(format!("{}/d/1", server.scan))
        .header("host", "app.shop-example.com")
        .header("forwarded", "proto=https")
        .send()
        .unwrap();
    assert!(
        location(&rule).contains("path=pages/rule/d"),
        "Forwarded: proto=https is believed"
    );

    // Behind a CDN that is not trusted, an https rule cannot match: 404,
    // counted, and logged at debug level with the reason.
    let untrusted = Server::with_table(TABLE, &["--trusted-proxy", "none", "--log", "info,qrlaunch=debug"]);
    let missed = scan(&untrusted, "https", "secure.example.com", "/x?y=1");
    assert_eq!(missed.status(), 404);
    let metrics = untrusted.metrics_text();
    assert!(metrics.contains("qrlaunch_https_rule_missed_total 1"), "{metrics}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        untrusted.logs().contains("an https rule would match"),
        "{}",
        untrusted.logs()
    );

    let assumed = Server::with_table(TABLE, &["--trusted-proxy", "none", "--assume-https"]);
    let matched = scan(&assumed, "http", "secure.example.com", "/x?y=1");
    assert!(location(&matched).contains("path=pages/rule/secure"));
    assert_eq!(
        scan(&assumed, "http", "plain.example.com", "/dl").status(),
        404,
        "an http rule no longer matches"
    );
}

#[test]
fn unmatched_urls_on_a_taken_over_host_pass_through_to_its_origin() {
    let server = Server::with_table(TABLE, &[]);
    let passed = scan(&server, "https", "app.shop-example.com", "/about/us?lang=zh");
    assert_eq!(passed.status(), 302);
    assert_eq!(location(&passed), "https://origin.shop-example.com/about/us?lang=zh");
    assert_eq!(scan(&server, "https", "other.example.com", "/about").status(), 404);
    assert_eq!(
        json_of(resolve(&server, "https://app.shop-example.com/about/us?lang=zh"))["location"],
        "https://origin.shop-example.com/about/us?lang=zh"
    );
    // Managed with the CLI.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(args)
            .args(["--admin-url", &server.admin])
            .env("QRLAUNCH_ADMIN_TOKEN", &server.token)
            .output()
            .unwrap()
    };
    let set = cli(&[
        "host",
        "set",
        "www.example.org",
        "--unmatched",
        "https://legacy.example.org/site/",
    ]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let passed = scan(&server, "https", "WWW.Example.org", "/x");
    assert_eq!(location(&passed), "https://legacy.example.org/site/x");
    let bad = cli(&["host", "set", "www.example.org", "--unmatched", "ftp://x"]);
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("qrlaunch: unmatched:"));
    assert!(cli(&["host", "set", "www.example.org", "--unmatched", "404"])
        .status
        .success());
    assert_eq!(scan(&server, "https", "www.example.org", "/x").status(), 404);
    // Exported and imported like codes and rules.
    let exported = server.get_admin("/admin/v1/export").text().unwrap();
    assert!(exported.contains(r#"{"host":"app.shop-example.com","unmatched":"https://origin.shop-example.com"}"#));
    let copy = Server::with_table(&exported, &[]);
    assert_eq!(
        location(&scan(&copy, "https", "app.shop-example.com", "/about")),
        "https://origin.shop-example.com/about"
    );
}

#[test]
fn verification_files_are_served_at_their_exact_path() {
    let server = Server::with_table(TABLE, &[]);
    let file = scan(&server, "https", "app.shop-example.com", "/MP_verify_abc123.txt");
    assert_eq!(file.status(), 200);
    assert!(file.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(file.text().unwrap(), "abc123");
    assert_eq!(
        scan(&server, "https", "other.example.com", "/MP_verify_abc123.txt").status(),
        404
    );

    let dir = temp_dir();
    let local = dir.path().join("verify.txt");
    std::fs::write(&local, "0123456789abcdef").unwrap();
    let add = Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["host", "add-file", "app.shop-example.com", "/download/MP_verify_x.txt"])
        .arg(&local)
        .args(["--admin-url", &server.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let served = scan(&server, "https", "app.shop-example.com", "/download/MP_verify_x.txt");
    assert_eq!(served.text().unwrap(), "0123456789abcdef");
    let too_big = server
        .admin(
            Method::PUT,
            "/admin/v1/hosts/app.shop-example.com/files?path=%2Fbig.txt",
        )
        .body("x".repeat(1025))
        .send()
        .unwrap();
    assert!(matches!(too_big.status().as_u16(), 413 | 422), "{}", too_big.status());
    let bad_name = server
        .admin(Method::PUT, "/admin/v1/hosts/app.shop-example.com/files?path=%2Fa.html")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(bad_name.status(), 422);
    assert_eq!(json_of(bad_name)["field"], "file");
}

#[test]
fn scheme_urls_never_exceed_wechats_query_limit() {
    let own = format!("from=box&x={}", "y".repeat(300));
    let table = format!(
        r#"{{"prefix":"https://long.example.com/dl","appid":"wx1234567890abcdef","path":"p","query":"{own}"}}"#
    );
    let server = Server::with_table(&table, &[]);
    let path = format!("/dl?channel={}", "c".repeat(400));
    let answer = scan(&server, "https", "long.example.com", &path);
    let url = location(&answer);
    let query = url.split("&query=").nth(1).unwrap().split('&').next().unwrap();
    assert!(query.len() <= 512, "{} characters", query.len());
    let decoded = percent_encoding::percent_decode_str(query)
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert!(
        decoded.starts_with(&own) && decoded.contains("&qtrunc=1&scancode_time="),
        "{decoded}"
    );
    let q = decoded.split("&q=").nth(1).unwrap().split('&').next().unwrap();
    let q = percent_encoding::percent_decode_str(q).decode_utf8().unwrap();
    assert!(format!("https://long.example.com{path}").starts_with(&*q), "{q}");
    assert!(
        q.starts_with("https://long.example.com/dl"),
        "the rule's prefix is kept: {q}"
    );
    let metrics = server.metrics_text();
    assert!(metrics.contains("qrlaunch_query_truncated_total 1"), "{metrics}");
    let resolved = json_of(resolve(&server, &format!("https://long.example.com{path}")));
    assert_eq!(resolved["q_truncated"], true);
    // An entry's own query is checked when it is written.
    let refused = server.send_json(
        Method::PUT,
        "/admin/v1/codes/big",
        &json!({"appid": "wx1234567890abcdef", "path": "p", "query": format!("a={}", "名".repeat(100))}),
    );
    assert_eq!(refused.status(), 422);
    assert_eq!(json_of(refused)["field"], "query");
}

/// What a scan answered, and what `/v1/resolve?url=` said, in one form.
fn outcome_of_scan(response: Response) -> String {
    let status = response.status().as_u16();
    let location = location(&response);
    let body = response.text().unwrap_or_default();
    match status {
        302 if location.starts_with("weixin://") => format!("launch {}", without_time(&location)),
        302 => format!("pass {location}"),
        200 => format!("file {body}"),
        other => other.to_string(),
    }
}

fn outcome_of_resolve(response: Response) -> String {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or_default();
    match (status, body["kind"].as_str()) {
        (200, Some("code" | "rule")) => format!("launch {}", without_time(body["scheme_url"].as_str().unwrap())),
        (200, Some("pass_through")) => format!("pass {}", body["location"].as_str().unwrap()),
        (200, Some("file")) => "file".to_string(),
        (other, _) => other.to_string(),
    }
}

/// The scheme URL without `scancode_time`'s value, which moves with the clock.
fn without_time(url: &str) -> String {
    match url.find("scancode_time%3D") {
        Some(at) => {
            let end = url[at..].find('&').map_or(url.len(), |e| at + e);
            format!("{}{}", &url[..at], &url[end..])
        }
        None => url.to_string(),
    }
}

/// `/v1/resolve?url=` and a scan of the same URL make the same decision,
/// on thousands of generated URLs: codes, rules, files, pass-through,
/// unknown paths, other hosts, both schemes, odd spellings.
#[test]
fn scans_and_resolve_agree_on_every_url() {
    let server = Server::with_table(TABLE, &["--public-url", "https://go.example.com/"]);
    let hosts = [
        "go.example.com",
        "GO.example.com",
        "app.shop-example.com",
        "app.shop-example.com:443",
        "plain.example.com",
        "old.example.com",
        "nowhere.example.net",
    ];
    let paths = [
        "/download",
        "/download?src=1",
        "/download/x",
        "/downloads",
        "/spring24",
        "/off",
        "/d/",
        "/d/1?x=%41",
        "/dl",
        "/dl?c=1",
        "/gone",
        "/gone?x",
        "/MP_verify_abc123.txt",
        "/",
        "/a%21b",
        "/%E4%B8%AD",
        "/x/y/z",
        "/spring24?utm=1",
        "/?q",
        "/d",
        "/D/1",
        "/download%3F",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 7;
        seed ^= seed >> 9;
        seed
    };
    let mut compared = 0;
    for round in 0..10 {
        for host in hosts {
            for path in paths {
                let scheme = if next() % 2 == 0 { "https" } else { "http" };
                let path = if round > 0 && next() % 3 == 0 {
                    format!("{path}{}z{round}", if path.contains('?') { "&" } else { "?" })
                } else {
                    path.to_string()
                };
                let url = format!("{scheme}://{host}{path}");
                let scanned = outcome_of_scan(scan(&server, scheme, host, &path));
                let resolved = outcome_of_resolve(resolve(&server, &url));
                let scanned = if scanned.starts_with("file ") {
                    "file".to_string()
                } else {
                    scanned
                };
                assert_eq!(scanned, resolved, "{url}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 1500, "{compared}");
}
