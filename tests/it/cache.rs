//! Behind a CDN: qrlaunch behind a real Varnish with the shipped VCL.
//! Hits per client class, purges on change, stale answers while the origin
//! is down, a brief 404 cache, and the VCL's classes equal the classifier's.

use crate::support::*;
use qrlaunch::model::client_class::{classify, EXAMPLES};
use reqwest::Method;
use std::time::{Duration, Instant};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36";

/// An origin that trusts Varnish's class header and purges it.
fn origin_and_cache(extra: &[&str]) -> Option<(Server, Varnish)> {
    // The purge URL needs the cache's port, which needs the origin's: the
    // origin starts with a placeholder port that the cache then takes.
    let cache_port = free_port();
    let purge = format!("http://127.0.0.1:{cache_port}");
    let mut args = vec![
        "--client-header",
        "X-QR-Client",
        "--purge-url",
        &purge,
        "--purge-header",
        PURGE_HEADER,
    ];
    args.extend_from_slice(extra);
    let origin = Server::start(&args);
    let varnish = Varnish::start_on(&origin, cache_port)?;
    Some((origin, varnish))
}

fn get(client: &Client, url: &str, ua: &str) -> Response {
    let mut request = client.get(url);
    if !ua.is_empty() {
        request = request.header("user-agent", ua);
    }
    request.send().expect("a request through the cache")
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn the_vcl_classifies_every_user_agent_as_qrlaunch_does() {
    let Some((_origin, varnish)) = origin_and_cache(&[]) else {
        return;
    };
    let client = client();
    for (ua, _) in EXAMPLES {
        let response = get(&client, &varnish.url("/spring24"), ua);
        let want = classify((!ua.is_empty()).then_some(ua.as_bytes()));
        assert_eq!(header(&response, "qrlaunch-class"), want.as_str(), "{ua}");
    }
}

#[test]
fn a_repeat_scan_is_a_hit_and_another_class_gets_its_own_answer() {
    let Some((origin, varnish)) = origin_and_cache(&[]) else {
        return;
    };
    let client = client();
    let first = get(&client, &varnish.url("/spring24"), IPHONE);
    assert_eq!(
        (first.status().as_u16(), header(&first, "x-cache")),
        (302, "MISS".into())
    );
    let second = get(&client, &varnish.url("/spring24"), IPHONE);
    assert_eq!(
        (second.status().as_u16(), header(&second, "x-cache")),
        (302, "HIT".into())
    );
    assert_eq!(header(&first, "location"), header(&second, "location"));
    let android = get(&client, &varnish.url("/spring24"), ANDROID);
    assert_eq!(android.status(), 200, "not the iPhone's 302");
    assert_eq!(header(&android, "qrlaunch-class"), "android");
    assert_eq!(header(&android, "x-cache"), "MISS");
    // The scheme comes from the cache's X-Forwarded-Proto (it is a trusted
    // proxy): the answer says so too.
    assert_eq!(
        header(&android, "vary"),
        "x-qr-client, Accept-Language, X-Forwarded-Proto, Forwarded"
    );
    assert!(header(&android, "xkey").is_empty(), "keys stay in the cache");
    // /v1/ passes through.
    let resolved = client.get(varnish.url("/v1/resolve?code=spring24")).send().unwrap();
    assert_eq!(resolved.status(), 200);
    let again = client.get(varnish.url("/v1/resolve?code=spring24")).send().unwrap();
    assert_eq!(header(&again, "x-cache"), "MISS");
    drop(origin);
}

/// Polls through the cache until `want` holds; the time it took.
fn until(client: &Client, url: &str, ua: &str, want: impl Fn(&Response) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let response = get(client, url, ua);
        if want(&response) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(3), "no fresh answer within 3 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_change_reaches_scans_through_the_cache_within_a_second() {
    let Some((origin, varnish)) = origin_and_cache(&[]) else {
        return;
    };
    let client = client();
    let url = varnish.url("/spring24");
    get(&client, &url, IPHONE);
    assert_eq!(header(&get(&client, &url, IPHONE), "x-cache"), "HIT");
    // Update.
    let patched = origin.send_json(Method::PATCH, "/admin/v1/codes/spring24", &json!({"query": "id=2"}));
    assert_eq!(patched.status(), 200);
    let took = until(&client, &url, IPHONE, |r| {
        header(r, "location").contains("query=id%3D2")
    });
    assert!(took < Duration::from_secs(1), "update took {took:?}");
    // Disable.
    origin.send_json(Method::PATCH, "/admin/v1/codes/spring24", &json!({"disabled": true}));
    let took = until(&client, &url, IPHONE, |r| r.status() == 410);
    assert!(took < Duration::from_secs(1), "disable took {took:?}");
    // Delete.
    assert_eq!(
        origin
            .admin(Method::DELETE, "/admin/v1/codes/spring24")
            .send()
            .unwrap()
            .status(),
        204
    );
    let took = until(&client, &url, IPHONE, |r| r.status() == 404);
    assert!(took < Duration::from_secs(1), "delete took {took:?}");
    // A created code replaces its cached 404 too.
    get(&client, &varnish.url("/fresh1"), IPHONE);
    assert_eq!(get(&client, &varnish.url("/fresh1"), IPHONE).status(), 404);
    assert_eq!(
        origin
            .send_json(Method::PUT, "/admin/v1/codes/fresh1", &code_body("p", ""))
            .status(),
        201
    );
    let took = until(&client, &varnish.url("/fresh1"), IPHONE, |r| r.status() == 302);
    assert!(took < Duration::from_secs(1), "create took {took:?}");
    let metrics = origin.metrics_text();
    assert!(
        !metrics.contains("qrlaunch_purges_total{outcome=\"ok\"} 0"),
        "{metrics}"
    );
}

#[test]
fn a_purge_needs_the_acl_and_the_secret() {
    let Some((_origin, varnish)) = origin_and_cache(&[]) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // From outside the ACL, even with the secret.
    let answer = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(varnish.addr.parse().unwrap()).await.unwrap();
        let purge = format!(
            "PURGE / HTTP/1.1\r\nHost: a\r\nxkey-purge: qrlaunch\r\nQrlaunch-Purge-Token: {PURGE_SECRET}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(purge.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    });
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // From the ACL (a TLS terminator on this host makes every client
    // loopback), without the secret or with a wrong one.
    let purge = |token: Option<&str>| {
        let mut request = client()
            .request(Method::from_bytes(b"PURGE").unwrap(), varnish.url("/"))
            .header("xkey-purge", "qrlaunch");
        if let Some(token) = token {
            request = request.header("qrlaunch-purge-token", token);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(purge(None), 403, "no secret");
    assert_eq!(purge(Some("guess")), 403, "a wrong secret");
    assert_eq!(
        purge(Some(&PURGE_SECRET[..PURGE_SECRET.len() - 1])),
        403,
        "a prefix of it"
    );
    assert_eq!(purge(Some(PURGE_SECRET)), 200, "the ACL and the secret");
}

#[test]
fn cached_answers_are_served_while_the_origin_is_down() {
    let Some((origin, varnish)) = origin_and_cache(&["--cache-s-maxage", "1", "--cache-max-age", "1"]) else {
        return;
    };
    let client = client();
    let url = varnish.url("/spring24");
    let fresh = get(&client, &url, IPHONE);
    assert_eq!(fresh.status(), 302);
    origin.kill9();
    // Past the object's TTL, with the origin gone: every answer meanwhile
    // is the stale object, until it is well past its TTL.
    let started = Instant::now();
    loop {
        let stale = get(&client, &url, IPHONE);
        assert_eq!(stale.status(), 302, "served from stale");
        assert_eq!(header(&stale, "location"), header(&fresh, "location"));
        let age: u64 = header(&stale, "age").parse().unwrap_or(0);
        if age >= 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "age stays {age}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_404_storm_reaches_the_origin_once_per_miss_lifetime() {
    let Some((origin, varnish)) = origin_and_cache(&["--cache-miss-max-age", "10"]) else {
        return;
    };
    let client = client();
    let not_found = |origin: &Server| -> f64 {
        let metrics = origin.metrics_text();
        metrics
            .lines()
            .find(|l| l.starts_with("qrlaunch_requests_total{route=\"scan\",status=\"404\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let before = not_found(&origin);
    for _ in 0..100 {
        assert_eq!(get(&client, &varnish.url("/lost-poster"), IPHONE).status(), 404);
    }
    assert_eq!(not_found(&origin) - before, 1.0, "one 404 reached the origin");
}
