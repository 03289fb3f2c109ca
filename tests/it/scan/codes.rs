//! `GET`/`HEAD /{code}` → 302 to the WeChat scheme, with encoding round trips.

use crate::scan::{decode, scheme_params, TABLE};
use crate::support::*;

#[test]
fn a_code_redirects_to_the_scheme_url_with_cache_control() {
    let server = Server::with_table(TABLE, &[]);
    let response = server.scan("/spring24");
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "weixin://dl/business/?appid=wx1234567890abcdef&path=pages/promo/index&query=id%3D42%26from%3Dposter&env_version=release"
    );
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=86400"
    );
    let port = server.scan_addr().rsplit(':').next().unwrap().to_string();
    assert_eq!(
        response.headers()["xkey"],
        format!("qrlaunch h-127.0.0.1:{port} c-spring24").as_str()
    );
    assert_eq!(response.headers()["surrogate-key"], response.headers()["xkey"]);

    let head = server
        .client()
        .head(format!("{}/spring24", server.scan))
        .send()
        .unwrap();
    assert_eq!(head.status(), 302);
    assert_eq!(head.headers()["location"], response.headers()["location"]);
    assert_eq!(head.headers()["cache-control"], response.headers()["cache-control"]);
    assert_eq!(head.text().unwrap(), "", "HEAD has no body");
}

#[test]
fn cache_max_age_is_configurable() {
    let server = Server::with_table(TABLE, &["--cache-max-age", "5"]);
    let cache = server.scan("/spring24").headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cache.starts_with("public, max-age=5, s-maxage=300"), "{cache}");
}

/// (code, env_version, path) — and the query decodes back byte for byte.
#[test]
fn queries_round_trip_through_one_decode() {
    let server = Server::with_table(TABLE, &[]);
    let stored: std::collections::HashMap<String, serde_json::Value> = TABLE
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some((v.get("code")?.as_str()?.to_string(), v)))
        .collect();
    let cases = [
        ("/spring24", "spring24"),
        ("/amp", "amp"),
        ("/nested", "nested"),
        ("/a!b", "a!b"),
        ("/a%21b", "a!b"),
        ("/$&'()*+,:;=@-._~", "$&'()*+,:;=@-._~"),
        ("/%24%26%27%28%29%2A%2B%2C%3A%3B%3D%40-._~", "$&'()*+,:;=@-._~"),
        ("/Case", "Case"),
        ("/case", "case"),
    ];
    for (path, code) in cases {
        let response = server.scan(path);
        assert_eq!(response.status(), 302, "{path}");
        let params = scheme_params(response.headers()["location"].to_str().unwrap());
        let entry = &stored[code];
        assert_eq!(params["appid"], entry["appid"].as_str().unwrap(), "{path}");
        assert_eq!(params["path"], entry["path"].as_str().unwrap(), "{path}");
        let query = entry.get("query").and_then(|q| q.as_str()).unwrap_or("");
        assert_eq!(decode(&params["query"]), query, "{path}: the query decodes back once");
        let env = entry.get("env_version").and_then(|q| q.as_str()).unwrap_or("release");
        assert_eq!(params["env_version"], env, "{path}");
        assert!(
            !params["query"].contains(['&', '=', ' ']),
            "{path}: query is encoded: {}",
            params["query"]
        );
    }
}

#[test]
fn already_encoded_values_are_encoded_again() {
    let server = Server::with_table(TABLE, &[]);
    let location = server.scan("/amp").headers()["location"].to_str().unwrap().to_string();
    let query = &scheme_params(&location)["query"];
    // `%25` (a literal `%`) and `%3A` inside the stored query become `%2525` and `%253A`.
    assert!(query.contains("pct%3D100%2525"), "{query}");
    assert!(query.contains("u%3Dhttps%253A%252F%252Fa.example"), "{query}");
    assert!(query.contains("zh%3D%E4%B8%AD%E6%96%87"), "{query}");
    assert!(query.contains("sp%3Da%20b"), "{query}");
}

#[test]
fn unknown_and_case_mismatched_codes_are_not_found() {
    let server = Server::with_table(TABLE, &[]);
    for path in ["/nope", "/SPRING24", "/spring24x", "/spring2", "/", "/spring24/extra"] {
        let response = server.scan(path);
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
}
