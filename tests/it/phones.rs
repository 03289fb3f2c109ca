//! Every phone gets a way in: the answer for each client class, for codes
//! and legacy rules, and the launch pages loaded in a real headless
//! Chromium, their QR codes read back by a real decoder.

use crate::scan::TABLE;
use crate::support::*;
use qrlaunch::model::client_class::{ClientClass, EXAMPLES};
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, USER_AGENT};

/// A User-Agent of each class, from the classifier's own table.
fn ua(class: ClientClass) -> &'static str {
    EXAMPLES
        .iter()
        .find(|(ua, c)| *c == class && !ua.trim().is_empty())
        .map(|(ua, _)| *ua)
        .expect("an example of every class")
}

/// The two scans each class is tried with: a code, and a legacy URL that a
/// rule matches.
fn scans() -> [(&'static str, &'static str, &'static str); 2] {
    [
        ("/spring24", "go.example.com", "pages/promo/index"),
        ("/a/b?id=1", "www.qq.com", "rule/ab"),
    ]
}

fn get(server: &Server, method: reqwest::Method, path: &str, host: &str, ua: &str, lang: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("host", host.parse().unwrap());
    headers.insert("x-forwarded-proto", "https".parse().unwrap());
    if !ua.is_empty() {
        headers.insert(USER_AGENT, ua.parse().unwrap());
    }
    if !lang.is_empty() {
        headers.insert(ACCEPT_LANGUAGE, lang.parse().unwrap());
    }
    server
        .client()
        .request(method, format!("{}{path}", server.scan))
        .headers(headers)
        .send()
        .expect("scan")
}

/// The `href` of the element with `id` in an HTML document, unescaped.
fn href(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let value = tag.split("href=\"").nth(1)?.split('"').next()?;
    Some(
        value
            .replace("&amp;", "&")
            .replace("&#38;", "&")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

#[test]
fn every_class_gets_its_answer_for_codes_and_rules() {
    let server = Server::with_table(TABLE, &[]);
    for class in ClientClass::ALL {
        for (path, host, page) in scans() {
            let response = get(&server, reqwest::Method::GET, path, host, ua(class), "");
            let status = response.status().as_u16();
            let vary = response.headers().get("vary").map(|v| v.to_str().unwrap().to_string());
            let location = response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            let body = response.text().unwrap();
            let what = format!("{class:?} {path}");
            match class {
                ClientClass::Ios | ClientClass::Other => {
                    assert_eq!(status, 302, "{what}");
                    assert!(location.unwrap().contains(&format!("path={page}")), "{what}");
                    // From loopback, a trusted proxy: its scheme headers count.
                    assert_eq!(
                        vary.as_deref(),
                        Some("User-Agent, X-Forwarded-Proto, Forwarded"),
                        "{what}"
                    );
                }
                _ => {
                    assert_eq!(status, 200, "{what}");
                    assert_eq!(
                        vary.as_deref(),
                        Some("User-Agent, Accept-Language, X-Forwarded-Proto, Forwarded"),
                        "{what}"
                    );
                    assert!(body.len() < 16 * 1024, "{what}: {} bytes", body.len());
                    assert!(!body.contains("src="), "{what}: no external resource");
                }
            }
            let open = href(&body, "open");
            let has_qr = body.contains("<svg");
            match class {
                ClientClass::Android => {
                    let open = open.expect("a tap target");
                    assert!(
                        open.starts_with("weixin://dl/business/?") && open.contains(&format!("path={page}")),
                        "{what}"
                    );
                    assert!(body.contains("location.href=o.href"), "{what}: opens at once");
                    assert!(!has_qr, "{what}");
                }
                ClientClass::Wechat => {
                    assert!(open.is_none() && has_qr, "{what}: long-press the QR code");
                    assert!(body.contains("Press and hold"), "{what}");
                }
                ClientClass::Inapp => {
                    assert!(open.is_some() && has_qr, "{what}: tap target and QR code");
                    assert!(body.contains("Open in browser"), "{what}");
                }
                ClientClass::Desktop => {
                    assert!(open.is_none() && has_qr, "{what}: a QR code to scan");
                    assert!(
                        href(&body, "device").is_some(),
                        "{what}: an iPad asking as a Mac can still open"
                    );
                }
                ClientClass::Ios | ClientClass::Other => assert!(body.is_empty(), "{what}"),
            }
            // HEAD answers the same, without a body.
            let head = get(&server, reqwest::Method::HEAD, path, host, ua(class), "");
            assert_eq!(head.status().as_u16(), status, "HEAD {what}");
            assert_eq!(head.text().unwrap(), "", "HEAD {what}");
        }
    }
    // No User-Agent at all: a tool, answered with the 302.
    assert_eq!(
        get(&server, reqwest::Method::GET, "/spring24", "go.example.com", "", "").status(),
        302
    );
}

#[test]
fn the_answer_of_each_class_can_be_chosen() {
    let server = Server::with_table(TABLE, &["--answer-ios", "page", "--answer-android", "redirect"]);
    let ios = get(
        &server,
        reqwest::Method::GET,
        "/spring24",
        "a",
        ua(ClientClass::Ios),
        "",
    );
    assert_eq!(ios.status(), 200);
    assert!(href(&ios.text().unwrap(), "open").is_some());
    let android = get(
        &server,
        reqwest::Method::GET,
        "/spring24",
        "a",
        ua(ClientClass::Android),
        "",
    );
    assert_eq!(android.status(), 302);
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_qrlaunch"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--answer-ios",
        "--answer-android",
        "--answer-wechat",
        "--answer-inapp",
        "--answer-desktop",
        "--answer-other",
    ] {
        assert!(help.contains(flag), "{flag} is documented");
    }
}

#[test]
fn pages_speak_the_asked_language_and_keep_the_fallback() {
    let server = Server::with_table(TABLE, &[]);
    let android = ua(ClientClass::Android);
    let zh = get(
        &server,
        reqwest::Method::GET,
        "/spring24",
        "a",
        android,
        "zh-CN,zh;q=0.9,en;q=0.8",
    )
    .text()
    .unwrap();
    assert!(zh.contains("lang=\"zh-CN\"") && zh.contains("在微信中打开"), "{zh}");
    assert_eq!(href(&zh, "fallback").as_deref(), Some("https://example.com/promo"));
    let en = get(
        &server,
        reqwest::Method::GET,
        "/spring24",
        "a",
        android,
        "en-US,en;q=0.9",
    )
    .text()
    .unwrap();
    assert!(en.contains("lang=\"en\"") && en.contains("Open in WeChat"), "{en}");

    let gone = get(&server, reqwest::Method::GET, "/expired", "a", android, "zh-CN");
    assert_eq!(gone.status(), 410);
    assert_eq!(gone.headers()["vary"], "Accept-Language, X-Forwarded-Proto, Forwarded");
    let gone = gone.text().unwrap();
    assert!(gone.contains("已过期"), "{gone}");
    assert_eq!(href(&gone, "fallback").as_deref(), Some("https://example.com/over"));
    let missing = get(&server, reqwest::Method::GET, "/no-such-code", "a", android, "en");
    assert_eq!(missing.status(), 404);
    assert!(missing.text().unwrap().contains("This QR code is not known here."));
    let missing = get(&server, reqwest::Method::GET, "/no-such-code", "a", android, "zh");
    assert!(missing.text().unwrap().contains("这个二维码在这里无法识别"));
}

/// The pages as a real browser renders them: the tap target is exactly the
/// scheme URL a `302` would carry, the QR code on the page decodes to
/// exactly the scanned URL, and loading a page makes no other request.
#[test]
fn launch_pages_work_in_a_real_browser() {
    let Some(chromium) = Chromium::find() else { return };
    let server = Server::with_table(TABLE, &[]);
    let url = format!("{}/spring24", server.scan);
    // The 302 an iPhone gets is the reference for every tap target.
    let redirect = server
        .client()
        .get(&url)
        .header(USER_AGENT, ua(ClientClass::Ios))
        .send()
        .unwrap();
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    let shots = temp_dir();
    for class in [
        ClientClass::Android,
        ClientClass::Inapp,
        ClientClass::Wechat,
        ClientClass::Desktop,
    ] {
        let before = scan_requests(&server);
        let load = chromium.load(ua(class), &url, None);
        assert!(
            load.dom.contains("<main>"),
            "{class:?}: the page rendered: {}",
            load.dom
        );
        assert_eq!(
            scan_requests(&server) - before,
            1,
            "{class:?}: one request reached the server"
        );
        let urls: Vec<&str> = load.page_requests.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(urls, [url.as_str()], "{class:?}: the page loads nothing else");
        match class {
            ClientClass::Android | ClientClass::Inapp => {
                assert_eq!(href(&load.dom, "open").as_deref(), Some(location.as_str()), "{class:?}");
            }
            _ => assert_eq!(href(&load.dom, "open"), None, "{class:?}"),
        }
        if matches!(class, ClientClass::Wechat | ClientClass::Desktop) {
            let shot = shots.path().join(format!("{}.png", class.as_str()));
            chromium.load(ua(class), &url, Some(&shot));
            let Some(decoded) = zbarimg(&shot) else { return };
            assert_eq!(
                decoded,
                std::slice::from_ref(&url),
                "{class:?}: the QR code on the screen is the scanned URL"
            );
        }
    }
}

fn scan_requests(server: &Server) -> u64 {
    let metrics = server.metrics_text();
    metrics
        .lines()
        .filter(|l| l.starts_with("qrlaunch_requests_total{route=\"scan\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
