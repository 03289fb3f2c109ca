//! Every admin route: what it does, its auth failure, its validation failure.

use super::FIXTURE;
use crate::support::*;
use reqwest::Method;
use std::collections::HashSet;

#[test]
fn codes_crud_is_visible_to_scans_at_once() {
    let server = Server::with_table(FIXTURE, &[]);

    // PUT creates (201), scans see it immediately.
    let created = server.send_json(
        Method::PUT,
        "/admin/v1/codes/promo1",
        &code_body("pages/a/index", "id=1"),
    );
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/admin/v1/codes/promo1");
    let created = json_of(created);
    assert_eq!(created["code"], "promo1");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let scan = server.scan("/promo1");
    assert_eq!(scan.status(), 302);
    assert!(scan.headers()["location"]
        .to_str()
        .unwrap()
        .contains("path=pages/a/index&query=id%3D1"));

    // PUT again replaces (200) and keeps created_at.
    let replaced = server.send_json(
        Method::PUT,
        "/admin/v1/codes/promo1",
        &code_body("pages/b/index", "id=2"),
    );
    assert_eq!(replaced.status(), 200);
    let replaced = json_of(replaced);
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert!(server.scan("/promo1").headers()["location"]
        .to_str()
        .unwrap()
        .contains("pages/b/index"));

    // GET shows the entry with its times.
    let got = json_of(server.get_admin("/admin/v1/codes/promo1"));
    assert_eq!(got["path"], "pages/b/index");
    assert_eq!(got["query"], "id=2");
    assert_eq!(got["env_version"], "release");

    // PATCH a subset: disable → 410; re-enable with an expiry in the past → 410; clear it → 302.
    let patched = server.send_json(Method::PATCH, "/admin/v1/codes/promo1", &json!({"disabled": true}));
    assert_eq!(patched.status(), 200);
    assert_eq!(
        json_of(patched)["path"],
        "pages/b/index",
        "PATCH keeps the other fields"
    );
    assert_eq!(server.scan("/promo1").status(), 410);
    let expired = json!({"disabled": false, "valid_until": "2020-01-01T00:00:00Z"});
    assert_eq!(
        server
            .send_json(Method::PATCH, "/admin/v1/codes/promo1", &expired)
            .status(),
        200
    );
    assert_eq!(server.scan("/promo1").status(), 410);
    assert_eq!(
        server
            .send_json(Method::PATCH, "/admin/v1/codes/promo1", &json!({"valid_until": null}))
            .status(),
        200
    );
    assert_eq!(server.scan("/promo1").status(), 302);

    // DELETE → 204, then 404 everywhere.
    assert_eq!(
        server
            .admin(Method::DELETE, "/admin/v1/codes/promo1")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(server.scan("/promo1").status(), 404);
    assert_eq!(server.get_admin("/admin/v1/codes/promo1").status(), 404);
    assert_eq!(
        server
            .admin(Method::DELETE, "/admin/v1/codes/promo1")
            .send()
            .unwrap()
            .status(),
        404
    );
    let patch_missing = server.send_json(Method::PATCH, "/admin/v1/codes/promo1", &json!({"disabled": true}));
    assert_eq!(patch_missing.status(), 404);
}

#[test]
fn post_generates_unguessable_base62_codes_and_refuses_existing_ones() {
    let server = Server::with_table(FIXTURE, &[]);
    let mut codes = HashSet::new();
    for _ in 0..20 {
        let created = server.send_json(Method::POST, "/admin/v1/codes", &code_body("pages/a/index", ""));
        assert_eq!(created.status(), 201);
        let code = json_of(created)["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 7, "{code}");
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
        assert_eq!(server.scan(&format!("/{code}")).status(), 302);
        codes.insert(code);
    }
    assert_eq!(codes.len(), 20);
    let mut sorted: Vec<_> = codes.into_iter().collect();
    sorted.sort();
    let common = sorted.windows(2).filter(|w| w[0][..4] == w[1][..4]).count();
    assert!(common < 5, "generated codes look sequential: {sorted:?}");

    let custom = json!({"code": "mine", "appid": "wx1234567890abcdef", "path": "p"});
    assert_eq!(server.send_json(Method::POST, "/admin/v1/codes", &custom).status(), 201);
    let again = server.send_json(Method::POST, "/admin/v1/codes", &custom);
    assert_eq!(again.status(), 409);
    assert_eq!(json_of(again)["error"], "conflict");
}

#[test]
fn rules_crud_by_prefix() {
    let server = Server::with_table(FIXTURE, &[]);
    let prefix = "http://legacy.example.com/app/download?channel=";
    let encoded = "http%3A%2F%2Flegacy.example.com%2Fapp%2Fdownload%3Fchannel%3D";
    let body = json!({"prefix": prefix, "appid": "wx1234567890abcdef", "path": "pages/dl/index", "query": "from=qr"});
    let created = server.send_json(Method::POST, "/admin/v1/rules", &body);
    assert_eq!(created.status(), 201);
    let scan = server
        .client()
        .get(format!("{}/app/download?channel=p42", server.scan))
        .header("host", "legacy.example.com");
    let scan = scan.send().unwrap();
    assert_eq!(scan.status(), 302);
    assert!(scan.headers()["location"].to_str().unwrap().contains("pages/dl/index"));

    let got = json_of(server.get_admin(&format!("/admin/v1/rules?prefix={encoded}")));
    assert_eq!(got["prefix"], prefix);
    let patched = server.send_json(
        Method::PATCH,
        &format!("/admin/v1/rules?prefix={encoded}"),
        &json!({"path": "pages/new/index"}),
    );
    assert_eq!(patched.status(), 200);
    let put = json!({"appid": "wx1234567890abcdef", "path": "pages/put/index", "prefix": prefix});
    assert_eq!(
        server
            .send_json(Method::PUT, &format!("/admin/v1/rules?prefix={encoded}"), &put)
            .status(),
        200
    );
    let list = json_of(server.get_admin("/admin/v1/rules"));
    let paths: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    assert!(paths.contains(&"pages/put/index".to_string()), "{paths:?}");
    assert_eq!(
        server
            .admin(Method::DELETE, &format!("/admin/v1/rules?prefix={encoded}"))
            .send()
            .unwrap()
            .status(),
        204
    );
    let scan = server
        .client()
        .get(format!("{}/app/download?channel=p42", server.scan))
        .header("host", "legacy.example.com");
    assert_eq!(scan.send().unwrap().status(), 404);
}

/// (method, path, body) for every documented route.
fn every_route() -> Vec<(Method, &'static str, Option<Value>)> {
    let rule = "/admin/v1/rules?prefix=https%3A%2F%2Fwww.example.com%2Fshop%2F";
    vec![
        (Method::GET, "/admin/v1/codes", None),
        (Method::POST, "/admin/v1/codes", Some(code_body("p", ""))),
        (Method::GET, "/admin/v1/codes/spring24", None),
        (Method::PUT, "/admin/v1/codes/spring24", Some(code_body("p", ""))),
        (Method::PATCH, "/admin/v1/codes/spring24", Some(json!({"query": "x=1"}))),
        (Method::DELETE, "/admin/v1/codes/menu", None),
        (Method::GET, "/admin/v1/rules", None),
        (Method::GET, rule, None),
        (Method::PATCH, rule, Some(json!({"query": "x=1"}))),
        (Method::DELETE, rule, None),
        (Method::GET, "/admin/v1/export", None),
        (Method::GET, "/admin/v1/openapi.json", None),
    ]
}

#[test]
fn every_route_refuses_a_missing_or_wrong_token_and_counts_it() {
    let server = Server::with_table(FIXTURE, &[]);
    let mut refused = 0;
    for (method, path, _) in every_route()
        .into_iter()
        .chain([(Method::POST, "/admin/v1/import", None)])
    {
        for token in [None, Some("wrong-token")] {
            let mut request = server
                .client()
                .request(method.clone(), format!("{}{path}", server.admin));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().unwrap();
            // Past a burst of failures, this address is throttled (429)
            // before its token is even looked at.
            if refused < 10 {
                assert_eq!(response.status(), 401, "{method} {path}");
                assert_eq!(response.headers()["www-authenticate"], "Bearer");
                assert_eq!(json_of(response)["error"], "unauthorized");
            } else {
                assert_eq!(response.status(), 429, "{method} {path}");
                assert_eq!(json_of(response)["error"], "too_many_failures");
            }
            refused += 1;
        }
    }
    let metrics = server.metrics_text();
    let count = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("qrlaunch_admin_auth_failures_total"), 10);
    assert_eq!(
        count("qrlaunch_admin_auth_throttled_total"),
        refused - 10,
        "every refusal is counted"
    );
    // The scan listener never serves the admin API.
    assert_eq!(
        server
            .client()
            .get(format!("{}/admin/v1/codes", server.scan))
            .bearer_auth(&server.token)
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn validation_errors_name_the_field() {
    let server = Server::with_table(FIXTURE, &[]);
    let cases = [
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx12", "path": "p"}),
            "appid",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx1234567890abcdef", "path": "/p"}),
            "path",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx1234567890abcdef", "path": "p", "env_version": "prod"}),
            "env_version",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx1234567890abcdef", "path": "p", "valid_until": "soon"}),
            "valid_until",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx1234567890abcdef", "path": "p", "fallback_url": "ftp://x"}),
            "fallback_url",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx1234567890abcdef"}),
            "path",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"appid": "wx1234567890abcdef", "path": "p", "app_id": 1}),
            "app_id",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/a1",
            json!({"code": "other", "appid": "wx1234567890abcdef", "path": "p"}),
            "code",
        ),
        (
            Method::PUT,
            "/admin/v1/codes/bad%2Fcode",
            json!({"appid": "wx1234567890abcdef", "path": "p"}),
            "code",
        ),
        (
            Method::POST,
            "/admin/v1/codes",
            json!({"code": "x".repeat(33), "appid": "wx1234567890abcdef", "path": "p"}),
            "code",
        ),
        (
            Method::POST,
            "/admin/v1/rules",
            json!({"prefix": "ftp://x/", "appid": "wx1234567890abcdef", "path": "p"}),
            "prefix",
        ),
        (
            Method::PATCH,
            "/admin/v1/codes/spring24",
            json!({"query": "a=1&&b"}),
            "query",
        ),
    ];
    for (method, path, body, field) in cases {
        let response = server.send_json(method.clone(), path, &body);
        assert_eq!(response.status(), 422, "{method} {path} {body}");
        let error = json_of(response);
        assert_eq!(error["error"], "invalid", "{error}");
        assert_eq!(error["field"], field, "{error}");
    }
    let not_json = server
        .admin(Method::PUT, "/admin/v1/codes/a1")
        .body("{")
        .send()
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(server.get_admin("/admin/v1/codes?limit=0").status(), 400);
    assert_eq!(server.get_admin("/admin/v1/nothing").status(), 404);
    // Nothing invalid was stored.
    assert_eq!(server.get_admin("/admin/v1/codes/a1").status(), 404);
}

#[test]
fn pagination_is_stable_and_complete() {
    let server = Server::with_table(FIXTURE, &[]);
    for i in 0..25 {
        let path = format!("/admin/v1/codes/p{i:02}");
        assert_eq!(server.send_json(Method::PUT, &path, &code_body("p", "")).status(), 201);
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    for _ in 0..20 {
        let page = json_of(server.get_admin(&format!("/admin/v1/codes?limit=7&after={after}")));
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["code"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    let example_codes = 6;
    assert_eq!(seen.len(), 25 + example_codes);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are in key order without repeats");
}

/// One concrete request per documented operation: `(method, documented
/// path, concrete URL, body)`. A route added to the API without a line here
/// fails the test below.
fn documented_requests(
    key: &str,
) -> Vec<(
    Method,
    &'static str,
    String,
    Option<reqwest::blocking::Body>,
    &'static str,
)> {
    let rule = "/admin/v1/rules?prefix=https%3A%2F%2Fwww.example.com%2Fshop%2F".to_string();
    let json = |v: Value| Some(reqwest::blocking::Body::from(v.to_string()));
    let host = "/admin/v1/hosts/www.example.com".to_string();
    let file = format!("{host}/files?path=%2FMP_verify_abc.txt");
    let ndjson = "application/x-ndjson";
    let app_json = "application/json";
    vec![
        (Method::GET, "/admin/v1/codes", "/admin/v1/codes".into(), None, app_json),
        (
            Method::POST,
            "/admin/v1/codes",
            "/admin/v1/codes".into(),
            json(code_body("p", "")),
            app_json,
        ),
        (
            Method::PUT,
            "/admin/v1/codes/{code}",
            "/admin/v1/codes/spring24".into(),
            json(json!({"appid":"wx1234567890abcdef","path":"p","tags":["t"]})),
            app_json,
        ),
        (
            Method::PATCH,
            "/admin/v1/codes",
            "/admin/v1/codes?tag=t".into(),
            json(json!({"query": "x=2"})),
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/codes/{code}",
            "/admin/v1/codes/spring24".into(),
            None,
            app_json,
        ),
        (
            Method::PATCH,
            "/admin/v1/codes/{code}",
            "/admin/v1/codes/spring24".into(),
            json(json!({"query": "x=1"})),
            app_json,
        ),
        (
            Method::DELETE,
            "/admin/v1/codes/{code}",
            "/admin/v1/codes/menu".into(),
            None,
            app_json,
        ),
        (Method::GET, "/admin/v1/rules", "/admin/v1/rules".into(), None, app_json),
        (
            Method::POST,
            "/admin/v1/rules",
            "/admin/v1/rules".into(),
            json(json!({"prefix": "https://n.example.com/", "appid": "wx1234567890abcdef", "path": "p"})),
            app_json,
        ),
        (
            Method::PUT,
            "/admin/v1/rules",
            rule.clone(),
            json(code_body("p", "")),
            app_json,
        ),
        (
            Method::PATCH,
            "/admin/v1/rules",
            rule.clone(),
            json(json!({"query": "x=1"})),
            app_json,
        ),
        (Method::DELETE, "/admin/v1/rules", rule, None, app_json),
        (
            Method::PUT,
            "/admin/v1/hosts/{host}",
            host.clone(),
            json(json!({"unmatched": "https://origin.example.com"})),
            app_json,
        ),
        (Method::GET, "/admin/v1/hosts", "/admin/v1/hosts".into(), None, app_json),
        (Method::GET, "/admin/v1/hosts/{host}", host.clone(), None, app_json),
        (
            Method::PUT,
            "/admin/v1/hosts/{host}/files",
            file.clone(),
            Some("abc".into()),
            "text/plain",
        ),
        (
            Method::GET,
            "/admin/v1/hosts/{host}/files",
            file.clone(),
            None,
            app_json,
        ),
        (Method::DELETE, "/admin/v1/hosts/{host}/files", file, None, app_json),
        (Method::DELETE, "/admin/v1/hosts/{host}", host, None, app_json),
        (
            Method::POST,
            "/admin/v1/import",
            "/admin/v1/import".into(),
            Some("{\"code\":\"imp\",\"appid\":\"wx1234567890abcdef\",\"path\":\"p\"}\n".into()),
            ndjson,
        ),
        (
            Method::GET,
            "/admin/v1/export",
            "/admin/v1/export".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/backup",
            "/admin/v1/backup".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/codes/{code}/qr",
            "/admin/v1/codes/spring24/qr?format=png".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/codes/{code}/wxacode",
            "/admin/v1/codes/spring24/wxacode".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/codes/{code}/stats",
            "/admin/v1/codes/spring24/stats".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/rules/stats",
            "/admin/v1/rules/stats?prefix=https%3A%2F%2Fwww.example.com%2Fshop%2F".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/hosts/{host}/stats",
            "/admin/v1/hosts/www.example.com/stats".into(),
            None,
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/stats",
            "/admin/v1/stats?tag=t".into(),
            None,
            app_json,
        ),
        (Method::GET, "/admin/v1/tags", "/admin/v1/tags".into(), None, app_json),
        (
            Method::PATCH,
            "/admin/v1/tags/{tag}",
            "/admin/v1/tags/t".into(),
            Some(reqwest::blocking::Body::from(r#"{"disabled":false}"#)),
            app_json,
        ),
        (
            Method::POST,
            "/admin/v1/ingest",
            "/admin/v1/ingest".into(),
            Some(reqwest::blocking::Body::from(
                r#"{"time":"2026-01-01T00:00:00Z","host":"go.example.com","target":"/spring24","cache":"hit"}"#,
            )),
            ndjson,
        ),
        (Method::GET, "/admin/v1/keys", "/admin/v1/keys".into(), None, app_json),
        (
            Method::GET,
            "/admin/v1/audit",
            "/admin/v1/audit?entry=spring24&limit=5".into(),
            None,
            app_json,
        ),
        (
            Method::POST,
            "/admin/v1/keys",
            "/admin/v1/keys".into(),
            json(json!({"name": "another", "role": "viewer"})),
            app_json,
        ),
        (
            Method::GET,
            "/admin/v1/keys/{id}",
            format!("/admin/v1/keys/{key}"),
            None,
            app_json,
        ),
        (
            Method::PATCH,
            "/admin/v1/keys/{id}",
            format!("/admin/v1/keys/{key}"),
            json(json!({"name": "renamed"})),
            app_json,
        ),
        (
            Method::POST,
            "/admin/v1/keys/{id}/rotate",
            format!("/admin/v1/keys/{key}/rotate"),
            None,
            app_json,
        ),
        (
            Method::DELETE,
            "/admin/v1/keys/{id}",
            format!("/admin/v1/keys/{key}"),
            None,
            app_json,
        ),
    ]
}

#[test]
fn openapi_lists_every_route_and_each_answers() {
    // Mini program codes answer from a stand-in of WeChat's API.
    let wechat = crate::wechat::StandIn::start();
    let secret = temp_dir();
    let flags = wechat.flags(secret.path());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::with_table(FIXTURE, &flags);
    let doc = json_of(server.get_admin("/admin/v1/openapi.json"));
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    let documented: HashSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let key = json_of(server.send_json(Method::POST, "/admin/v1/keys", &json!({"name": "k", "role": "viewer"})));
    let requests = documented_requests(key["id"].as_str().unwrap());
    let tested: HashSet<(String, String)> = requests
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, tested,
        "every documented operation has one request below, and no other"
    );
    for (method, _, url, body, content_type) in requests {
        let mut request = server.admin(method.clone(), &url).header("content-type", content_type);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "{method} {url} answered {status}: {:?}",
            response.text()
        );
    }
}

#[test]
fn refuses_to_start_an_open_admin_api_off_loopback() {
    let data_tmp = temp_dir();
    let data = data_tmp.path();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--data"])
        .arg(data)
        .env_remove("QRLAUNCH_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no admin token configured") && stderr.contains("QRLAUNCH_ADMIN_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn listings_search_by_start_and_mini_program_page_by_page() {
    let server = Server::start(&[]);
    for (code, appid) in [
        ("sa1", "wx1234567890abcdef"),
        ("sa2", "wxfedcba0987654321"),
        ("sa3", "wx1234567890abcdef"),
        ("sb1", "wx1234567890abcdef"),
    ] {
        let created = server.send_json(
            reqwest::Method::POST,
            "/admin/v1/codes",
            &json!({"code": code, "appid": appid, "path": "pages/a"}),
        );
        assert_eq!(created.status(), 201);
    }
    let codes = |query: &str| {
        let page = json_of(server.get_admin(&format!("/admin/v1/codes?{query}")));
        let items: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_string())
            .collect();
        (items, page["next"].as_str().map(str::to_string))
    };
    assert_eq!(
        codes("starts=sa"),
        (vec!["sa1".into(), "sa2".into(), "sa3".into()], None)
    );
    assert_eq!(
        codes("starts=sa2"),
        (vec!["sa2".into()], None),
        "a key equal to the text"
    );
    assert_eq!(codes("starts=sa&appid=wx1234567890abcdef").0, ["sa1", "sa3"]);
    let (first, next) = codes("starts=sa&limit=2");
    assert_eq!(first, ["sa1", "sa2"]);
    let (rest, end) = codes(&format!("starts=sa&limit=2&after={}", next.expect("a next page")));
    assert_eq!((rest, end), (vec!["sa3".to_string()], None));
    assert_eq!(codes("starts=zz"), (vec![], None));
}
