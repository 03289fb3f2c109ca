//! Every admin route: what it does, its auth failure, its validation failure.

use crate::support::*;
use reqwest::Method;
use std::collections::HashSet;

#[test]
fn codes_crud_is_visible_to_scans_at_once() {
    let server = Server::start("crud", &[]);

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
    let server = Server::start("post", &[]);
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
    let server = Server::start("rules", &[]);
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
    let server = Server::start("auth", &[]);
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
            assert_eq!(response.status(), 401, "{method} {path}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_eq!(json_of(response)["error"], "unauthorized");
            refused += 1;
        }
    }
    let metrics = server.scan("/metrics").text().unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("qrlaunch_admin_auth_failures_total"))
        .expect("counter");
    assert_eq!(line.rsplit(' ').next().unwrap(), refused.to_string());
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
    let server = Server::start("invalid", &[]);
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
    let server = Server::start("pages", &[]);
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

#[test]
fn openapi_lists_every_route_and_each_answers() {
    let server = Server::start("openapi", &[]);
    let doc = json_of(server.get_admin("/admin/v1/openapi.json"));
    assert_eq!(doc["openapi"], "3.1.0");
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
    // Deletions last, so every other route still finds its entry.
    let mut ordered: Vec<&(String, String)> = documented.iter().collect();
    ordered.sort_by_key(|(method, path)| (method == "DELETE", path.clone(), method.clone()));
    for (method, path) in ordered {
        let concrete = path.replace("{code}", "spring24");
        let url = if concrete == "/admin/v1/rules" && method != "POST" && method != "GET" {
            format!("{concrete}?prefix=https%3A%2F%2Fwww.example.com%2Fshop%2F")
        } else {
            concrete
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = server.admin(method.clone(), &url);
        if path.ends_with("/import") {
            request = request.header("content-type", "application/x-ndjson").body("");
        } else if method == reqwest::Method::POST && path.ends_with("/rules") {
            request =
                request.json(&json!({"prefix": "https://n.example.com/", "appid": "wx1234567890abcdef", "path": "p"}));
        } else if matches!(method, reqwest::Method::POST | reqwest::Method::PUT) {
            request = request.json(&code_body("p", ""));
        } else if method == reqwest::Method::PATCH {
            request = request.json(&json!({"query": "x=1"}));
        }
        let status = request.send().unwrap().status();
        assert!(status.is_success(), "{method} {url} answered {status}");
    }
    // Every route the tests above use is documented.
    for (method, path, _) in every_route() {
        let bare = path
            .split('?')
            .next()
            .unwrap()
            .replace("spring24", "{code}")
            .replace("menu", "{code}");
        assert!(
            documented.contains(&(method.to_string(), bare.clone())),
            "{method} {bare} is not in openapi.json"
        );
    }
}

#[test]
fn refuses_to_start_an_open_admin_api_off_loopback() {
    let data = temp_dir("open");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--data"])
        .arg(&data)
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
