//! Legacy URLs matched by rules with WeChat's semantics, through real
//! requests: the `Host` header and `X-Forwarded-Proto` make the URL.

use crate::scan::{decode, scheme_params, TABLE};
use crate::support::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// Scans `url` (scheme from `X-Forwarded-Proto`, host from `Host`).
fn scan_url(server: &Server, url: &str) -> Response {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (host, target) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    server
        .client()
        .get(format!("{}{target}", server.scan))
        .header("host", host)
        .header("x-forwarded-proto", scheme)
        .send()
        .unwrap()
}

fn matched_path(server: &Server, url: &str) -> Option<String> {
    let response = scan_url(server, url);
    match response.status().as_u16() {
        302 => Some(scheme_params(response.headers()["location"].to_str().unwrap())["path"].clone()),
        404 => None,
        other => panic!("{url}: unexpected {other}"),
    }
}

/// WeChat's documented matching rules, one line each: (scanned URL, rule that answers).
#[test]
fn wechat_rule_semantics() {
    let server = Server::with_table(TABLE, &[]);
    let cases: &[(&str, Option<&str>)] = &[
        // scheme and host exact
        ("https://www.qq.com/a/b", Some("rule/ab")),
        ("http://www.qq.com/a/b", None),
        ("https://qq.com/a/b", None),
        ("https://WWW.QQ.COM/a/b", Some("rule/ab")),
        ("https://www.qq.com:443/a/b", Some("rule/ab")),
        // sub-paths only under a prefix ending in `/`
        ("https://www.qq.com/a/b/123", Some("rule/a-slash")),
        ("https://www.qq.com/a/bc", Some("rule/a-slash")),
        ("https://www.qq.com/a/b?x=1", Some("rule/ab")),
        ("https://www.qq.com/a", None),
        ("https://www.qq.com/A/b", None),
        // query by prefix; the longest prefix wins
        ("https://www.qq.com/q/b?id=123", Some("rule/q123")),
        ("https://www.qq.com/q/b?id=1234", Some("rule/q123")),
        ("https://www.qq.com/q/b?id=132", None),
        ("https://www.qq.com/q/b?id=12", Some("rule/q12")),
        ("https://www.qq.com/q/b?id=129", Some("rule/q12")),
        ("https://www.qq.com/q/b", None),
        // http and https rules on one host are different rules
        ("http://plain.example.com/dl", Some("rule/plain")),
        ("http://plain.example.com/dl?c=9", Some("rule/plain")),
        ("http://plain.example.com/dls", None),
        ("http://plain.example.com/dl/x", None),
        ("https://plain.example.com/dl", Some("rule/https-root")),
    ];
    for (url, want) in cases {
        assert_eq!(matched_path(&server, url).as_deref(), *want, "{url}");
    }
}

#[test]
fn a_known_code_wins_over_a_rule_on_the_same_host() {
    let server = Server::with_table(TABLE, &[]);
    // `https://plain.example.com/` matches everything on the host, but
    // `/download` is also a code.
    assert_eq!(
        matched_path(&server, "https://plain.example.com/download").as_deref(),
        Some("pages/code-wins/index")
    );
    assert_eq!(
        matched_path(&server, "https://plain.example.com/other").as_deref(),
        Some("rule/https-root")
    );
}

#[test]
fn rule_redirects_carry_q_and_scancode_time() {
    let server = Server::with_table(TABLE, &[]);
    let url = "https://www.qq.com/q/b?id=1234&name=%E4%B8%AD&x=a+b";
    let response = scan_url(&server, url);
    assert_eq!(response.status(), 302);
    let params = scheme_params(response.headers()["location"].to_str().unwrap());
    let page_query = decode(&params["query"]);
    let pairs: std::collections::HashMap<&str, &str> = page_query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    assert_eq!(pairs["from"], "rule", "the entry's own query comes first: {page_query}");
    assert_eq!(
        decode(pairs["q"]),
        url,
        "q is the scanned URL, encoded once inside the page's query"
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let t: i64 = pairs["scancode_time"].parse().unwrap();
    assert!((now - t).abs() <= 5, "scancode_time {t} is not now ({now})");
}

#[test]
fn forwarded_proto_is_believed_only_from_trusted_proxies() {
    let trusting = Server::with_table(TABLE, &[]);
    assert_eq!(
        matched_path(&trusting, "https://www.qq.com/a/b").as_deref(),
        Some("rule/ab")
    );
    let distrusting = Server::with_table(TABLE, &["--trusted-proxy", "none"]);
    // The header is ignored: the request counts as http, which no qq.com rule matches.
    assert_eq!(matched_path(&distrusting, "https://www.qq.com/a/b"), None);
    assert_eq!(
        matched_path(&distrusting, "http://plain.example.com/dl").as_deref(),
        Some("rule/plain")
    );
}

#[test]
fn a_disabled_rule_answers_gone() {
    let server = Server::with_table(TABLE, &[]);
    assert_eq!(scan_url(&server, "https://gone.example.com/x").status(), 410);
}

/// RFC 9112 §3.2.2: an absolute-form target's authority wins over `Host`.
#[test]
fn an_absolute_form_target_names_the_host() {
    let server = Server::with_table(TABLE, &[]);
    let answer = server
        .raw(b"GET http://plain.example.com/dl?x=1 HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 302 "), "{answer}");
    assert!(answer.contains("path=rule/plain"), "{answer}");
    let answer = server.raw(b"GET /dl?x=1 HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}
