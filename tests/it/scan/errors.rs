//! Gone, not found, and bad input: always a 4xx, never a crash.

use super::TABLE;
use crate::support::*;

#[test]
fn gone_entries_answer_410_with_a_page() {
    let server = Server::with_table(TABLE, &[]);
    for (path, says) in [
        ("/expired", "expired"),
        ("/future", "not active yet"),
        ("/off", "switched off"),
    ] {
        let response = server.scan(path);
        assert_eq!(response.status(), 410, "{path}");
        // Cacheable, and purged by the entry's key when it changes.
        assert!(response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public, max-age="));
        assert!(response.headers()["xkey"]
            .to_str()
            .unwrap()
            .ends_with(&format!("c-{}", &path[1..])));
        let page = response.text().unwrap();
        assert!(page.contains(says), "{path}: {page}");
    }
    let page = server.scan("/expired").text().unwrap();
    assert!(
        page.contains(r#"href="https://example.com/over""#),
        "the fallback is offered: {page}"
    );
}

/// Raw requests a browser would never send; each gets a 4xx status line.
#[test]
fn malformed_requests_get_4xx_and_the_server_lives_on() {
    let server = Server::with_table(TABLE, &[]);
    let long_target = format!("/{}", "a".repeat(9000));
    let huge_header = "x".repeat(300_000);
    let cases: Vec<(String, &str)> = vec![
        ("GET /spring24 HTTP/1.1\r\nConnection: close\r\n\r\n".into(), "400"),
        (
            "GET /spring24 HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".into(),
            "400",
        ),
        (
            "GET /spring24 HTTP/1.1\r\nHost: a.com\r\nHost: b.com\r\nConnection: close\r\n\r\n".into(),
            "400",
        ),
        (
            "GET /spring24 HTTP/1.1\r\nHost: a.com:80x\r\nConnection: close\r\n\r\n".into(),
            "400",
        ),
        (
            "GET /app/x HTTP/1.1\r\nHost: evil.com/x\r\nConnection: close\r\n\r\n".into(),
            "400",
        ),
        (
            format!("GET {long_target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
            "414",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {huge_header}\r\nConnection: close\r\n\r\n"),
            "431",
        ),
        (
            "GET /%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into(),
            "400",
        ),
        (
            "GET /%ff%fe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into(),
            "400",
        ),
        (
            "POST /spring24 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            "405",
        ),
        (
            "DELETE /v1/resolve?code=spring24 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into(),
            "405",
        ),
        (
            "BREW /pot HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into(),
            "405",
        ),
        ("GET /spring24 HTTP/9.9\r\nHost: a\r\n\r\n".into(), "400"),
        ("\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03".into(), ""),
    ];
    for (request, status) in cases {
        let answer = server.raw(request.as_bytes());
        let first = answer.lines().next().unwrap_or("");
        if !status.is_empty() {
            assert!(
                first.contains(&format!(" {status} ")),
                "{}: {first}",
                &request[..request.len().min(60)]
            );
        }
        assert_eq!(
            server.scan("/healthz").status(),
            200,
            "the server survived {}",
            &request[..request.len().min(40)]
        );
    }
}

#[test]
fn method_not_allowed_names_the_allowed_ones() {
    let server = Server::with_table(TABLE, &[]);
    let response = server
        .client()
        .post(format!("{}/spring24", server.scan))
        .send()
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let api = server
        .client()
        .put(format!("{}/v1/resolve?code=spring24", server.scan))
        .send()
        .unwrap();
    assert_eq!(api.status(), 405);
    assert_eq!(json_of(api)["error"], "method_not_allowed");
}

#[test]
fn overlong_codes_are_not_found_not_crashes() {
    let server = Server::with_table(TABLE, &[]);
    for path in [
        format!("/{}", "a".repeat(33)),
        format!("/{}", "%41".repeat(40)),
        format!("/{}", "中".repeat(50)),
    ] {
        assert_eq!(server.scan(&path).status(), 404, "{path}");
    }
}

#[test]
fn a_slow_client_is_cut_off_by_the_header_read_timeout() {
    use std::io::{Read, Write};
    let server = Server::with_table(TABLE, &["--header-read-timeout", "500ms"]);
    let mut stream = std::net::TcpStream::connect(server.scan_addr()).unwrap();
    stream.write_all(b"GET /spring24 HTTP/1.1\r\nHost: a\r\n").unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf);
    assert!(
        read.is_ok(),
        "the server closed the connection instead of waiting forever: {read:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "closed after {:?}",
        started.elapsed()
    );
    // Others are still served. A fresh client: the timeout also closes idle
    // keep-alive connections, such as the pooled one used to start the server.
    let fresh = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(
        fresh.get(format!("{}/spring24", server.scan)).send().unwrap().status(),
        302
    );
}
