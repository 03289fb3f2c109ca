//! API keys against the real binary: every route of the OpenAPI document
//! against every role, scopes on reads, writes, imports, listings and
//! exports, rotation with a grace, and keys shared by a fleet.

use crate::support::*;
use reqwest::Method;
use std::collections::BTreeSet;
use std::time::Duration;

const TABLE: &str = r#"{"code":"spring1","appid":"wx1111111111111111","path":"p","tags":["spring"]}
{"code":"spring2","appid":"wx2222222222222222","path":"p","tags":["spring"]}
{"code":"autumn1","appid":"wx1111111111111111","path":"p","tags":["autumn"]}
{"prefix":"https://shop.example.com/dl?c=","appid":"wx1111111111111111","path":"p","tags":["spring"]}
{"prefix":"https://other.example.com/dl?c=","appid":"wx1111111111111111","path":"p","tags":["spring"]}
{"host":"shop.example.com","unmatched":"https://origin.example.com"}
"#;

/// Creates a key with the bootstrap token; its secret and id.
fn new_key(server: &Server, body: Value) -> (String, String) {
    let created = server.send_json(Method::POST, "/admin/v1/keys", &body);
    assert_eq!(created.status(), 201, "{body}");
    let key = json_of(created);
    (
        key["secret"].as_str().expect("a secret").to_string(),
        key["id"].as_str().expect("an id").to_string(),
    )
}

fn request(
    server: &Server,
    secret: &str,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> reqwest::blocking::Response {
    let mut request = server
        .client()
        .request(method, format!("{}{path}", server.admin))
        .bearer_auth(secret);
    if let Some(body) = body {
        let ndjson = path.starts_with("/admin/v1/import") || path.starts_with("/admin/v1/ingest");
        request = request
            .header(
                "content-type",
                if ndjson {
                    "application/x-ndjson"
                } else {
                    "application/json"
                },
            )
            .body(body.to_string());
    }
    request.send().expect("the admin API answers")
}

/// One line per route and method of the OpenAPI document: what it needs
/// (`r`ead, `w`rite, `a`dmin), and a request that reaches it.
const ROUTES: &[(&str, &str, char, &str, Option<&str>)] = &[
    ("get", "/admin/v1/codes", 'r', "/admin/v1/codes", None),
    (
        "post",
        "/admin/v1/codes",
        'w',
        "/admin/v1/codes",
        Some(r#"{"code":"new1","appid":"wx1111111111111111","path":"p","tags":["spring"]}"#),
    ),
    (
        "patch",
        "/admin/v1/codes",
        'w',
        "/admin/v1/codes?tag=nosuch",
        Some("{}"),
    ),
    ("get", "/admin/v1/codes/{code}", 'r', "/admin/v1/codes/spring1", None),
    (
        "put",
        "/admin/v1/codes/{code}",
        'w',
        "/admin/v1/codes/new2",
        Some(r#"{"appid":"wx1111111111111111","path":"p","tags":["spring"]}"#),
    ),
    (
        "patch",
        "/admin/v1/codes/{code}",
        'w',
        "/admin/v1/codes/nosuch",
        Some("{}"),
    ),
    ("delete", "/admin/v1/codes/{code}", 'w', "/admin/v1/codes/nosuch", None),
    ("get", "/admin/v1/rules", 'r', "/admin/v1/rules", None),
    ("post", "/admin/v1/rules", 'w', "/admin/v1/rules", Some("{}")),
    (
        "put",
        "/admin/v1/rules",
        'w',
        "/admin/v1/rules?prefix=https%3A%2F%2Fnosuch.example.com%2F",
        Some("{}"),
    ),
    (
        "patch",
        "/admin/v1/rules",
        'w',
        "/admin/v1/rules?prefix=https%3A%2F%2Fnosuch.example.com%2F",
        Some("{}"),
    ),
    (
        "delete",
        "/admin/v1/rules",
        'w',
        "/admin/v1/rules?prefix=https%3A%2F%2Fnosuch.example.com%2F",
        None,
    ),
    ("get", "/admin/v1/hosts", 'a', "/admin/v1/hosts", None),
    (
        "get",
        "/admin/v1/hosts/{host}",
        'a',
        "/admin/v1/hosts/nosuch.example.com",
        None,
    ),
    (
        "put",
        "/admin/v1/hosts/{host}",
        'a',
        "/admin/v1/hosts/nosuch.example.com",
        Some("{}"),
    ),
    (
        "delete",
        "/admin/v1/hosts/{host}",
        'a',
        "/admin/v1/hosts/nosuch.example.com",
        None,
    ),
    (
        "get",
        "/admin/v1/hosts/{host}/files",
        'a',
        "/admin/v1/hosts/nosuch.example.com/files",
        None,
    ),
    (
        "put",
        "/admin/v1/hosts/{host}/files",
        'a',
        "/admin/v1/hosts/nosuch.example.com/files?path=/x.txt",
        Some("{}"),
    ),
    (
        "delete",
        "/admin/v1/hosts/{host}/files",
        'a',
        "/admin/v1/hosts/nosuch.example.com/files?path=/x.txt",
        None,
    ),
    ("post", "/admin/v1/import", 'w', "/admin/v1/import", Some("")),
    ("get", "/admin/v1/export", 'r', "/admin/v1/export", None),
    ("get", "/admin/v1/backup", 'a', "/admin/v1/backup", None),
    (
        "get",
        "/admin/v1/codes/{code}/qr",
        'r',
        "/admin/v1/codes/spring1/qr",
        None,
    ),
    (
        "get",
        "/admin/v1/codes/{code}/wxacode",
        'w',
        "/admin/v1/codes/spring1/wxacode",
        None,
    ),
    (
        "get",
        "/admin/v1/codes/{code}/stats",
        'r',
        "/admin/v1/codes/spring1/stats",
        None,
    ),
    (
        "get",
        "/admin/v1/rules/stats",
        'r',
        "/admin/v1/rules/stats?prefix=https%3A%2F%2Fshop.example.com%2Fdl%3Fc%3D",
        None,
    ),
    (
        "get",
        "/admin/v1/hosts/{host}/stats",
        'r',
        "/admin/v1/hosts/shop.example.com/stats",
        None,
    ),
    ("get", "/admin/v1/stats", 'r', "/admin/v1/stats?tag=spring", None),
    ("get", "/admin/v1/tags", 'r', "/admin/v1/tags", None),
    (
        "patch",
        "/admin/v1/tags/{tag}",
        'w',
        "/admin/v1/tags/spring",
        Some("{}"),
    ),
    ("post", "/admin/v1/ingest", 'a', "/admin/v1/ingest", Some("")),
    ("get", "/admin/v1/keys", 'a', "/admin/v1/keys", None),
    ("get", "/admin/v1/audit", 'r', "/admin/v1/audit", None),
    ("post", "/admin/v1/keys", 'a', "/admin/v1/keys", Some("{}")),
    ("get", "/admin/v1/keys/{id}", 'a', "/admin/v1/keys/nosuch", None),
    ("patch", "/admin/v1/keys/{id}", 'a', "/admin/v1/keys/nosuch", Some("{}")),
    ("delete", "/admin/v1/keys/{id}", 'a', "/admin/v1/keys/nosuch", None),
    (
        "post",
        "/admin/v1/keys/{id}/rotate",
        'a',
        "/admin/v1/keys/nosuch/rotate",
        None,
    ),
];

#[test]
fn every_route_checks_the_role_of_its_key() {
    let server = Server::with_table(TABLE, &[]);
    // Every route of the document has a line here, and no line is stale.
    let document = json_of(server.get_admin("/admin/v1/openapi.json"));
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|m| ["get", "put", "post", "patch", "delete"].contains(&m.as_str()))
                .map(|m| (m.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let lined: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, lined, "a route without a line in ROUTES (or a stale line)");

    let (viewer, _) = new_key(&server, json!({"name": "reader", "role": "viewer"}));
    let (editor, _) = new_key(&server, json!({"name": "campaigns", "role": "editor"}));
    let (admin, _) = new_key(&server, json!({"name": "ops", "role": "admin"}));
    for (role, secret, may) in [
        ("viewer", &viewer, "r"),
        ("editor", &editor, "rw"),
        ("admin", &admin, "rwa"),
    ] {
        for (method, template, need, path, body) in ROUTES {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = request(&server, secret, method.clone(), path, *body);
            let status = answer.status().as_u16();
            if may.contains(*need) {
                assert_ne!(status, 403, "{role} {method} {template}");
                assert_ne!(status, 401, "{role} {method} {template}");
            } else {
                assert_eq!(status, 403, "{role} {method} {template}");
                let error = json_of(answer);
                assert_eq!(error["error"], "forbidden");
                assert!(
                    error["message"].as_str().unwrap().contains("needs"),
                    "the refusal says what was missing: {error}"
                );
            }
        }
    }
    // A wrong secret and the shape of a key that does not exist: 401.
    assert_eq!(
        request(&server, "qrk_nosuch_xxxx", Method::GET, "/admin/v1/codes", None).status(),
        401
    );
    assert_eq!(
        request(&server, &format!("{viewer}x"), Method::GET, "/admin/v1/codes", None).status(),
        401
    );
    for secret in [&viewer, &editor, &admin] {
        assert!(!server.logs().contains(secret.as_str()), "no secret in the logs");
    }
}

#[test]
fn scopes_limit_what_a_key_reads_writes_imports_and_exports() {
    let server = Server::with_table(TABLE, &[]);
    let (editor, _) = new_key(
        &server,
        json!({"name": "spring team", "role": "editor", "tags": ["spring"]}),
    );
    let (viewer, _) = new_key(
        &server,
        json!({"name": "shop host", "role": "viewer", "hosts": ["shop.example.com"]}),
    );
    let get = |secret: &str, path: &str| request(&server, secret, Method::GET, path, None).status().as_u16();

    // The editor reaches its tag's codes and rules only.
    assert_eq!(get(&editor, "/admin/v1/codes/spring1"), 200);
    assert_eq!(get(&editor, "/admin/v1/codes/autumn1"), 403);
    assert_eq!(get(&editor, "/admin/v1/codes/spring1/stats"), 200);
    assert_eq!(get(&editor, "/admin/v1/codes/autumn1/stats"), 403);
    assert_eq!(get(&editor, "/admin/v1/stats?tag=spring"), 200);
    assert_eq!(get(&editor, "/admin/v1/stats?tag=autumn"), 403);
    let patched = request(
        &server,
        &editor,
        Method::PATCH,
        "/admin/v1/codes/autumn1",
        Some(r#"{"disabled":true}"#),
    );
    assert_eq!(patched.status(), 403);
    assert!(json_of(patched)["message"].as_str().unwrap().contains("tags spring"));
    assert_eq!(
        server.scan("/autumn1").status(),
        302,
        "the other tag's code is untouched"
    );
    assert_eq!(
        request(&server, &editor, Method::DELETE, "/admin/v1/codes/autumn1", None).status(),
        403
    );
    // What it creates must carry its tag; it cannot move a code out of it.
    let untagged = r#"{"code":"mine","appid":"wx1111111111111111","path":"p"}"#;
    assert_eq!(
        request(&server, &editor, Method::POST, "/admin/v1/codes", Some(untagged)).status(),
        403
    );
    let tagged = r#"{"code":"mine","appid":"wx1111111111111111","path":"p","tags":["spring"]}"#;
    assert_eq!(
        request(&server, &editor, Method::POST, "/admin/v1/codes", Some(tagged)).status(),
        201
    );
    let moved = request(
        &server,
        &editor,
        Method::PATCH,
        "/admin/v1/codes/mine",
        Some(r#"{"tags":["autumn"]}"#),
    );
    assert_eq!(moved.status(), 422, "moving a code out of the key's tags");
    assert_eq!(json_of(moved)["field"], "scope");
    // A campaign switch-off within its tag works.
    let off = request(
        &server,
        &editor,
        Method::PATCH,
        "/admin/v1/codes?tag=spring",
        Some(r#"{"disabled":true}"#),
    );
    assert_eq!(off.status(), 200);
    assert_eq!(server.scan("/spring1").status(), 410);
    // An import with one line outside the scope is refused whole, the line named.
    let import = "{\"code\":\"imp1\",\"appid\":\"wx1111111111111111\",\"path\":\"p\",\"tags\":[\"spring\"]}\n\
                  {\"code\":\"imp2\",\"appid\":\"wx1111111111111111\",\"path\":\"p\",\"tags\":[\"autumn\"]}\n";
    let refused = request(&server, &editor, Method::POST, "/admin/v1/import", Some(import));
    assert_eq!(refused.status(), 422);
    let refused = json_of(refused);
    assert_eq!(refused["errors"][0]["line"], 2, "{refused}");
    assert_eq!(server.scan("/imp1").status(), 404, "nothing imported");
    // Nor may an import replace an entry outside them by naming it.
    let takeover = "{\"code\":\"autumn1\",\"appid\":\"wx1111111111111111\",\"path\":\"evil\",\"tags\":[\"spring\"]}\n";
    let refused = request(&server, &editor, Method::POST, "/admin/v1/import", Some(takeover));
    assert_eq!(refused.status(), 422, "an upsert over another tag's code");
    assert_eq!(json_of(refused)["errors"][0]["field"], "scope");
    let autumn = json_of(server.get_admin("/admin/v1/codes/autumn1"));
    assert_eq!(autumn["path"], "p", "the other tag's code is unchanged");
    // Paging one at a time names no entry outside the scope, not even in `next`.
    let mut after = String::new();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = json_of(request(
            &server,
            &editor,
            Method::GET,
            &format!("/admin/v1/codes?limit=1{after}"),
            None,
        ));
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["code"].as_str().unwrap().to_string()),
        );
        assert!(!page.to_string().contains("autumn"), "{page}");
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["mine", "spring1", "spring2"]);
    // Listings and exports hold only what the key reaches.
    let listed = json_of(request(&server, &editor, Method::GET, "/admin/v1/codes", None));
    let codes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["mine", "spring1", "spring2"]);
    let export = request(&server, &editor, Method::GET, "/admin/v1/export", None)
        .text()
        .unwrap();
    assert_eq!(export.lines().count(), 5, "three codes and two rules: {export}");
    assert!(!export.contains("autumn1") && !export.contains("\"host\""), "{export}");

    // The host-scoped viewer: its host's rules and 404s, no code.
    assert_eq!(
        get(
            &viewer,
            "/admin/v1/rules?prefix=https%3A%2F%2Fshop.example.com%2Fdl%3Fc%3D"
        ),
        200
    );
    assert_eq!(
        get(
            &viewer,
            "/admin/v1/rules?prefix=https%3A%2F%2Fother.example.com%2Fdl%3Fc%3D"
        ),
        403
    );
    assert_eq!(get(&viewer, "/admin/v1/codes/spring1"), 403);
    assert_eq!(get(&viewer, "/admin/v1/hosts/shop.example.com/stats"), 200);
    assert_eq!(get(&viewer, "/admin/v1/hosts/other.example.com/stats"), 403);
    assert_eq!(
        request(&server, &viewer, Method::PATCH, "/admin/v1/codes/spring1", Some("{}")).status(),
        403
    );
    // Bad scopes and roles are named.
    let bad = server.send_json(Method::POST, "/admin/v1/keys", &json!({"name": "x", "role": "root"}));
    assert_eq!(json_of(bad)["field"], "role");
    let bad = server.send_json(
        Method::POST,
        "/admin/v1/keys",
        &json!({"name": "x", "role": "editor", "appids": ["wx1"]}),
    );
    assert_eq!(json_of(bad)["field"], "appids");
    let bad = server.send_json(
        Method::POST,
        "/admin/v1/keys",
        &json!({"name": "x", "role": "admin", "tags": ["spring"]}),
    );
    assert_eq!(json_of(bad)["field"], "role");
}

#[test]
fn a_rotated_secret_works_for_its_grace_and_then_not() {
    let server = Server::with_table(TABLE, &[]);
    let (first, id) = new_key(&server, json!({"name": "script", "role": "viewer"}));
    let works = |secret: &str| request(&server, secret, Method::GET, "/admin/v1/codes", None).status() == 200;
    assert!(works(&first));
    let rotated = json_of(
        server
            .admin(Method::POST, &format!("/admin/v1/keys/{id}/rotate?grace=2s"))
            .send()
            .unwrap(),
    );
    let second = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert!(works(&second));
    assert!(works(&first), "the old secret within its grace");
    let audit = json_of(server.get_admin(&format!("/admin/v1/audit?entry={id}")));
    assert_eq!(audit["items"][0]["action"], "key_rotate", "{audit}");
    assert_eq!(audit["items"][0]["before"]["name"], "script");
    assert!(!audit.to_string().contains(&first) && !audit.to_string().contains(&second));
    eventually(Duration::from_secs(10), "the grace ends", || !works(&first));
    assert!(works(&second));
    // Listed without secrets; removed, it stops at once.
    let listed = json_of(server.get_admin("/admin/v1/keys"));
    assert!(!listed.to_string().contains(&second));
    assert_eq!(listed["items"][0]["id"], id);
    assert_eq!(
        server
            .admin(Method::DELETE, &format!("/admin/v1/keys/{id}"))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert!(!works(&second));
    // An expiry in the past is refused; a key that expires stops working.
    let past = server.send_json(
        Method::POST,
        "/admin/v1/keys",
        &json!({"name": "old", "role": "viewer", "expires": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(json_of(past)["field"], "expires");
}

#[test]
fn the_cli_manages_keys() {
    let server = Server::with_table(TABLE, &[]);
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
            .args(args)
            .args(["--admin-url", &server.admin])
            .env("QRLAUNCH_ADMIN_TOKEN", &server.token)
            .output()
            .expect("run the CLI")
    };
    let added = cli(&[
        "key",
        "add",
        "--name",
        "agency",
        "--role",
        "editor",
        "--tag",
        "spring",
        "--appid",
        "wx1111111111111111",
    ]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let key: Value = serde_json::from_slice(added.stdout.trim_ascii()).unwrap();
    assert!(String::from_utf8_lossy(&added.stderr).contains("shown this once"));
    let secret = key["secret"].as_str().unwrap();
    let id = key["id"].as_str().unwrap();
    assert_eq!(key["tags"], json!(["spring"]));
    // The key works for the CLI too, within its scopes.
    let own = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["code", "get", "spring1", "--admin-url", &server.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args(["code", "get", "spring2", "--admin-url", &server.admin])
        .env("QRLAUNCH_ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    assert!(!other.status.success(), "spring2 opens another appid");
    assert!(String::from_utf8_lossy(&other.stderr).contains("does not reach"));
    let set = cli(&["key", "set", id, "--role", "viewer", "--clear-scopes"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let shown: Value = serde_json::from_slice(cli(&["key", "get", id]).stdout.trim_ascii()).unwrap();
    assert_eq!(shown["role"], "viewer");
    assert!(shown.get("tags").is_none() && shown.get("secret").is_none(), "{shown}");
    let rotated = cli(&["key", "rotate", id, "--grace", "0s"]);
    assert!(rotated.status.success());
    let listed = String::from_utf8(cli(&["key", "ls"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 1);
    assert!(cli(&["key", "rm", id]).status.success());
    let gone = cli(&["key", "get", id]);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("no such key"));
    let bad = cli(&["key", "add", "--name", "x", "--role", "root"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("role:"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn a_key_made_on_one_node_works_on_every_node_and_its_removal_too() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.database("fleet_keys");
    let token = "fleet-token-of-the-keys-test-0123456789";
    let start = |dir: &std::path::Path| {
        Server::try_start_with(dir, &["--store", &url, "--sync-poll", "100ms"], &|c| {
            c.env("QRLAUNCH_ADMIN_TOKEN", token);
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let (a_dir, b_dir) = (temp_dir(), temp_dir());
    let a = start(&a_dir.path().join("data"));
    let b = start(&b_dir.path().join("data"));
    let created = a
        .client()
        .post(format!("{}/admin/v1/keys", a.admin))
        .bearer_auth(token)
        .json(&json!({"name": "fleet viewer", "role": "viewer"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let key = json_of(created);
    let secret = key["secret"].as_str().unwrap().to_string();
    let id = key["id"].as_str().unwrap().to_string();
    let status_on = |node: &Server| {
        node.client()
            .get(format!("{}/admin/v1/codes", node.admin))
            .bearer_auth(&secret)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    eventually(Duration::from_secs(10), "the key works on B", || status_on(&b) == 200);
    let removed = b
        .client()
        .delete(format!("{}/admin/v1/keys/{id}", b.admin))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(removed.status(), 204);
    eventually(Duration::from_secs(10), "the removal reaches A", || {
        status_on(&a) == 401
    });
    // One audit log for the fleet: B tells who made and removed the key.
    let audit = json_of(
        b.client()
            .get(format!("{}/admin/v1/audit?entry={id}", b.admin))
            .bearer_auth(token)
            .send()
            .unwrap(),
    );
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key_delete", "key_create"], "{audit}");
    assert_eq!(audit["items"][1]["key"]["id"], "bootstrap");
    assert!(!audit.to_string().contains(&secret), "no secret in the audit log");
    // Stored hashed: the secret is nowhere in the database.
    let rows = cluster.psql("fleet_keys", "SELECT id || name || secret_hash FROM api_keys");
    assert!(!rows.contains(&secret));
}

#[test]
fn the_audit_log_says_who_disabled_a_code_and_keeps_to_the_scopes() {
    let server = Server::with_table(TABLE, &[]);
    let (editor, editor_id) = new_key(
        &server,
        json!({"name": "spring agency", "role": "editor", "tags": ["spring"]}),
    );
    let (autumn, _) = new_key(
        &server,
        json!({"name": "autumn team", "role": "viewer", "tags": ["autumn"]}),
    );
    let off = request(
        &server,
        &editor,
        Method::PATCH,
        "/admin/v1/codes/spring1",
        Some(r#"{"disabled":true}"#),
    );
    assert_eq!(off.status(), 200);
    // A write that fails leaves no line.
    let refused = request(
        &server,
        &editor,
        Method::PATCH,
        "/admin/v1/codes/spring1",
        Some(r#"{"appid":"bad"}"#),
    );
    assert_eq!(refused.status(), 422);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let audit = json_of(server.get_admin(&format!("/admin/v1/audit?entry=spring1&from={today}")));
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    let line = &items[0];
    assert_eq!(line["action"], "patch");
    assert_eq!(line["kind"], "code");
    assert_eq!(line["key"]["id"], editor_id.as_str());
    assert_eq!(line["key"]["name"], "spring agency");
    assert_eq!(line["client"], "127.0.0.1");
    assert_eq!(line["after"]["disabled"], true);
    assert!(line["before"].get("disabled").is_none(), "{line}");
    // By key, and through the CLI.
    let by_key = json_of(server.get_admin(&format!("/admin/v1/audit?key={editor_id}")));
    assert_eq!(by_key["items"].as_array().unwrap().len(), 1);
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .args([
            "audit",
            "--entry",
            "spring1",
            "--since",
            "1h",
            "--admin-url",
            &server.admin,
        ])
        .env("QRLAUNCH_ADMIN_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let printed = String::from_utf8(cli.stdout).unwrap();
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(printed.contains("spring agency"));
    // The seed and the keys are there for an admin; a key of another tag
    // sees none of the spring lines, and no key or import line.
    let all = json_of(server.get_admin("/admin/v1/audit?limit=1000"));
    let actions: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"key_create") && actions.contains(&"import"),
        "{actions:?}"
    );
    let seen = json_of(request(
        &server,
        &autumn,
        Method::GET,
        "/admin/v1/audit?limit=1000",
        None,
    ));
    assert_eq!(seen["items"].as_array().unwrap().len(), 0, "{seen}");
    let mine = json_of(request(&server, &editor, Method::GET, "/admin/v1/audit", None));
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    // Bad filters name themselves.
    assert_eq!(
        json_of(server.get_admin("/admin/v1/audit?from=yesterday"))["field"],
        "from"
    );
    assert_eq!(json_of(server.get_admin("/admin/v1/audit?after=x"))["field"], "after");
}
