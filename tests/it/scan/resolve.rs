//! `GET /v1/resolve?code=` and `?url=`: the JSON entry point.

use super::TABLE;
use crate::support::*;

#[test]
fn resolves_a_code() {
    let server = Server::with_table(TABLE, &[]);
    let response = server.scan("/v1/resolve?code=spring24");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_of(response);
    assert_eq!(
        body,
        json!({
            "kind": "code",
            "appid": "wx1234567890abcdef",
            "path": "pages/promo/index",
            "query": "id=42&from=poster",
            "env_version": "release",
            "scheme_url": "weixin://dl/business/?appid=wx1234567890abcdef&path=pages/promo/index&query=id%3D42%26from%3Dposter&env_version=release",
            "fallback_url": "https://example.com/promo",
        })
    );
    // Percent-encoded code parameter.
    assert_eq!(
        json_of(server.scan("/v1/resolve?code=a%21b"))["path"],
        "pages/special/index"
    );
}

#[test]
fn resolves_the_q_a_mini_program_received() {
    let server = Server::with_table(TABLE, &[]);
    let scanned = "https://www.qq.com/q/b?id=1234&x=1";
    // What WeChat hands the page in `q`: the URL encoded once.
    let q: String = percent_encoding::utf8_percent_encode(scanned, percent_encoding::NON_ALPHANUMERIC).to_string();
    for param in [
        q.clone(),
        percent_encoding::utf8_percent_encode(&q, percent_encoding::NON_ALPHANUMERIC).to_string(),
    ] {
        let response = server.scan(&format!("/v1/resolve?url={param}"));
        assert_eq!(response.status(), 200, "{param}");
        let body = json_of(response);
        assert_eq!(body["kind"], "rule");
        assert_eq!(body["path"], "rule/q123");
        assert_eq!(body["query"], "from=rule");
        assert_eq!(body["prefix"], "https://www.qq.com/q/b?id=123");
        assert!(body.get("fallback_url").is_none(), "absent fields are omitted: {body}");
        assert!(
            body["scheme_url"]
                .as_str()
                .unwrap()
                .contains("q%3Dhttps%253A%252F%252Fwww.qq.com"),
            "{body}"
        );
    }
}

/// (request, status, error kind)
#[test]
fn errors_are_json() {
    let server = Server::with_table(TABLE, &[]);
    let long_url = format!("https://www.qq.com/{}", "a".repeat(8200));
    let cases = [
        ("/v1/resolve?code=nope".to_string(), 404, "not_found"),
        ("/v1/resolve?code=expired".to_string(), 410, "gone"),
        ("/v1/resolve?code=future".to_string(), 410, "gone"),
        ("/v1/resolve?code=off".to_string(), 410, "gone"),
        (
            "/v1/resolve?url=https%3A%2F%2Fgone.example.com%2F".to_string(),
            410,
            "gone",
        ),
        (
            "/v1/resolve?url=https%3A%2F%2Fnowhere.example.com%2F".to_string(),
            404,
            "not_found",
        ),
        ("/v1/resolve".to_string(), 400, "bad_request"),
        (
            "/v1/resolve?code=spring24&url=https%3A%2F%2Fa.b%2F".to_string(),
            400,
            "bad_request",
        ),
        (format!("/v1/resolve?code={}", "x".repeat(33)), 400, "bad_request"),
        ("/v1/resolve?code=%zz".to_string(), 400, "bad_request"),
        ("/v1/resolve?code=%ff".to_string(), 400, "bad_request"),
        ("/v1/resolve?url=%E4%B8%AD".to_string(), 400, "bad_request"),
        ("/v1/resolve?url=ftp%3A%2F%2Fa.b%2F".to_string(), 400, "bad_request"),
        (format!("/v1/resolve?url={long_url}"), 414, "uri_too_long"),
        ("/v1/other".to_string(), 404, "not_found"),
    ];
    for (path, status, kind) in cases {
        let response = server.scan(&path);
        assert_eq!(response.status(), status, "{}", &path[..path.len().min(80)]);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = json_of(response);
        assert_eq!(body["error"], kind, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let long = format!("/v1/resolve?url=https%3A%2F%2Fa.b%2F{}", "a".repeat(7000));
    assert_eq!(server.scan(&long).status(), 404, "a long but legal URL is looked up");
}
