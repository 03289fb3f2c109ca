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
            "page_url": "/pages/promo/index?id=42&from=poster",
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

/// What the landing page hands `wx.redirectTo`: the page with the query it
/// would have had from the scheme URL (for a rule: with `q` and
/// `scancode_time` as WeChat passes them).
#[test]
fn page_url_is_what_the_scheme_url_opens() {
    let server = Server::with_table(TABLE, &[]);
    let body = json_of(server.scan("/v1/resolve?code=amp"));
    assert_eq!(
        body["page_url"],
        "/pages/a/index?a=1&b=x=y&pct=100%25&sp=a b&zh=中文&u=https%3A%2F%2Fa.example%2Fx%3Fy%3D1"
    );
    assert_eq!(
        json_of(server.scan("/v1/resolve?code=Case"))["page_url"],
        "/pages/case/upper"
    );
    let scanned = "https://www.qq.com/q/b?id=1234&x=1";
    let q = percent_encoding::utf8_percent_encode(scanned, percent_encoding::NON_ALPHANUMERIC).to_string();
    let body = json_of(server.scan(&format!("/v1/resolve?url={q}&scancode_time=1700000000")));
    assert_eq!(
        body["page_url"],
        "/rule/q123?from=rule&q=https%3A%2F%2Fwww.qq.com%2Fq%2Fb%3Fid%3D1234%26x%3D1&scancode_time=1700000000"
    );
    // Without a time, the node's clock.
    let body = json_of(server.scan(&format!("/v1/resolve?url={q}")));
    let page_url = body["page_url"].as_str().unwrap();
    let time: i64 = page_url.rsplit_once("scancode_time=").unwrap().1.parse().unwrap();
    assert!((time - unix_now()).abs() < 60, "{page_url}");
    // A code's URL read by WeChat's scanner resolves to the code's page.
    let body = json_of(server.scan(&format!(
        "/v1/resolve?url={}",
        percent_encoding::utf8_percent_encode(&format!("{}/spring24", server.scan), percent_encoding::NON_ALPHANUMERIC)
    )));
    assert_eq!(body["page_url"], "/pages/promo/index?id=42&from=poster", "{body}");
}

/// A disabled or expired entry answers `410` with where to send people.
#[test]
fn gone_carries_the_fallback() {
    let server = Server::with_table(TABLE, &[]);
    let response = server.scan("/v1/resolve?code=expired");
    assert_eq!(response.status(), 410);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_of(response);
    assert_eq!(body["error"], "gone");
    assert_eq!(body["fallback_url"], "https://example.com/over");
    assert!(json_of(server.scan("/v1/resolve?code=off"))
        .get("fallback_url")
        .is_none());
}

/// What `wx.request` sends as User-Agent from a mini program.
const MINI_PROGRAM_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x18003237) NetType/WIFI Language/zh_CN miniProgram/wx1234567890abcdef";

/// Only calls marked `scan=1` from WeChat count, as `wechat-scan`, and are
/// never cached.
#[test]
fn landing_page_scans_count_as_wechat_scan() {
    let table = format!(
        "{TABLE}{}\n",
        r#"{"prefix":"https://poster.example.com/dl","appid":"wx1234567890abcdef","path":"p","count_by":"channel"}"#
    );
    let server = Server::with_table(&table, &[]);
    let from_wechat = |path: &str| {
        server
            .client()
            .get(format!("{}{path}", server.scan))
            .header("user-agent", MINI_PROGRAM_UA)
            .send()
            .unwrap()
    };
    for _ in 0..3 {
        let response = from_wechat("/v1/resolve?code=spring24&scan=1");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    let response = from_wechat("/v1/resolve?code=spring24");
    assert_ne!(
        response.headers()["cache-control"],
        "no-store",
        "unmarked calls stay cacheable"
    );
    from_wechat("/v1/resolve?code=spring24&scan=0");
    from_wechat("/v1/resolve?code=expired&scan=1");
    // curl, a bot, a browser: answered alike, never counted.
    let response = server.scan("/v1/resolve?code=spring24&scan=1");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rule =
        percent_encoding::utf8_percent_encode("https://www.qq.com/q/b?id=1234", percent_encoding::NON_ALPHANUMERIC);
    assert_eq!(from_wechat(&format!("/v1/resolve?url={rule}&scan=1")).status(), 200);
    // A rule counted by a parameter counts the value too.
    for channel in ["a", "a", "b"] {
        let url = percent_encoding::utf8_percent_encode(
            &format!("https://poster.example.com/dl?channel={channel}"),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert_eq!(from_wechat(&format!("/v1/resolve?url={url}&scan=1")).status(), 200);
    }
    let by = json_of(server.get_admin("/admin/v1/rules/stats?prefix=https%3A%2F%2Fposter.example.com%2Fdl&by=channel"));
    let values: Vec<(String, u64)> = by["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(values, [("a".to_string(), 2), ("b".to_string(), 1)], "{by}");
    let stats = json_of(server.get_admin("/admin/v1/codes/spring24/stats"));
    assert_eq!(stats["total"]["wechat_scan"], 3, "{stats}");
    assert_eq!(stats["total"]["total"], 3, "{stats}");
    assert_eq!(stats["total"]["ios"], 0, "{stats}");
    let stats = json_of(server.get_admin("/admin/v1/codes/expired/stats"));
    assert_eq!(stats["total"]["total"], 0, "a gone entry is not a scan: {stats}");
    let prefix =
        percent_encoding::utf8_percent_encode("https://www.qq.com/q/b?id=123", percent_encoding::NON_ALPHANUMERIC);
    let stats = json_of(server.get_admin(&format!("/admin/v1/rules/stats?prefix={prefix}")));
    assert_eq!(stats["total"]["wechat_scan"], 1, "{stats}");
    let csv = server.cli(&["stats", "spring24", "--csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(csv.starts_with("day,ios,android,wechat,wechat-scan,"), "{csv}");
    assert!(csv.contains("total,0,0,0,3,0,0,0,3"), "{csv}");
    for bad in ["scan=2", "scan=", "scancode_time=soon", "scancode_time=99999999999"] {
        let response = server.scan(&format!("/v1/resolve?code=spring24&{bad}"));
        assert_eq!(response.status(), 400, "{bad}");
        let message = json_of(response)["message"].as_str().unwrap().to_string();
        assert!(message.contains(bad.split('=').next().unwrap()), "{bad}: {message}");
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
