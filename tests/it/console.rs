//! The operators' console in a real browser (headless Chromium through
//! chromedriver) against the real binary: sign in, create a code through
//! the form, a field error next to its field, a QR downloaded and decoded
//! by zbarimg, the chart of the test's own scans, a campaign disabled,
//! a viewer without edit controls whose forged post is refused, CSRF,
//! sign-out, and nothing loaded from any other host.
//!
//! With `QRLAUNCH_SCREENSHOTS=DIR`, the first test also saves the overview
//! and a code's page there (`docs/` holds the README's copies).

use crate::browser::Browser;
use crate::support::*;
use base64::Engine;
use serde_json::{json, Value};

const IPHONE: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36";

fn scan_as(server: &Server, user_agent: &str, path: &str) -> reqwest::blocking::Response {
    server
        .client()
        .get(format!("{}{path}", server.scan))
        .header("user-agent", user_agent)
        .send()
        .expect("scan")
}

/// Signs the browser in with `key` and waits for the overview.
fn sign_in(browser: &Browser, server: &Server, key: &str) {
    browser.goto(&format!("{}/console/", server.admin));
    assert!(browser.url().ends_with("/console/sign-in"), "{}", browser.url());
    assert_eq!(browser.text("label[for=key]"), "API key");
    browser.fill("#key", key);
    browser.click("#sign-in");
    assert_eq!(browser.text("h1"), "Overview");
}

/// Every URL the page loaded is on the console's own origin.
fn only_own_origin(browser: &Browser, server: &Server) {
    let urls = browser.loaded_urls();
    assert!(!urls.is_empty());
    for url in urls {
        assert!(
            url.starts_with(&format!("{}/", server.admin)) || url.starts_with("data:"),
            "loaded from elsewhere: {url}"
        );
    }
}

#[test]
fn an_operator_runs_a_campaign_in_a_real_browser() {
    let server = Server::start(&[]);
    let Some(browser) = Browser::start(1280) else { return };

    // A wrong key is refused on the sign-in page, in words.
    browser.goto(&format!("{}/console/sign-in", server.admin));
    browser.fill("#key", "qrk_nope_nope");
    browser.click("#sign-in");
    assert!(
        browser.text("#error").contains("not valid"),
        "{}",
        browser.text("#error")
    );
    sign_in(&browser, &server, &server.token);
    assert_eq!(browser.text("#who"), "the admin token");
    only_own_origin(&browser, &server);

    // Create a code through the form: it is in the list and in the API.
    browser.goto(&format!("{}/console/codes/new", server.admin));
    browser.fill("#code", "autumn1");
    browser.fill("#appid", "wx1234567890abcdef");
    browser.fill("#path", "pages/autumn/index");
    browser.fill("#query", "from=poster");
    browser.fill("#tags", "autumn24");
    browser.click("#save");
    assert_eq!(browser.text("h1"), "autumn1");
    assert!(browser.has("#notice"));
    let stored = json_of(server.get_admin("/admin/v1/codes/autumn1"));
    assert_eq!(stored["path"], "pages/autumn/index");
    assert_eq!(stored["tags"], json!(["autumn24"]));
    browser.goto(&format!("{}/console/codes?tag=autumn24", server.admin));
    assert!(browser.text("#entries").contains("autumn1"));

    // A field error shows next to its field, in the API's words.
    browser.goto(&format!("{}/console/codes/new", server.admin));
    browser.fill("#appid", "wx-not-an-appid");
    browser.fill("#path", "pages/a");
    browser.click("#save");
    let shown = browser.text("#appid-error");
    let api = json_of(server.send_json(
        reqwest::Method::POST,
        "/admin/v1/codes",
        &json!({"appid": "wx-not-an-appid", "path": "pages/a"}),
    ));
    assert_eq!(api["field"], "appid");
    assert_eq!(shown, api["message"].as_str().unwrap());
    assert_eq!(
        browser.execute("return document.querySelector('#appid').value", vec![]),
        json!("wx-not-an-appid")
    );

    // The test's own scans show in the code's chart, per class.
    for _ in 0..3 {
        assert_eq!(scan_as(&server, IPHONE, "/autumn1").status(), 302);
    }
    for _ in 0..2 {
        assert_eq!(scan_as(&server, ANDROID, "/autumn1").status(), 200);
    }
    browser.goto(&format!("{}/console/codes/autumn1", server.admin));
    assert!(
        browser.has(r#"#chart rect[data-class="ios"][data-count="3"]"#),
        "iPhone bar"
    );
    assert!(
        browser.has(r#"#chart rect[data-class="android"][data-count="2"]"#),
        "Android bar"
    );
    only_own_origin(&browser, &server);

    // Download the QR as the browser would, and decode it.
    let data_url = browser.execute_async(
        r#"const done = arguments[arguments.length - 1];
           fetch(document.querySelector('#png').href).then(r => r.blob()).then(b => {
             const reader = new FileReader(); reader.onload = () => done(reader.result); reader.readAsDataURL(b);
           }).catch(e => done('error: ' + e));"#,
        vec![],
    );
    let data_url = data_url.as_str().unwrap_or_default();
    let png = data_url
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("not a PNG: {}", &data_url[..data_url.len().min(80)]));
    let png = base64::engine::general_purpose::STANDARD.decode(png).expect("base64");
    let dir = temp_dir();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, &png).unwrap();
    if let Some(decoded) = zbarimg(&file) {
        assert_eq!(decoded, [format!("{}/autumn1", server.scan)]);
    }

    if let Some(dir) = std::env::var_os("QRLAUNCH_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        browser.screenshot(&dir.join("console-code.png"));
        browser.goto(&format!("{}/console/", server.admin));
        browser.screenshot(&dir.join("console-overview.png"));
    }

    // The campaign is disabled from its page: the code answers 410.
    browser.goto(&format!("{}/console/campaigns", server.admin));
    browser.click("#tag-autumn24 .disable-all");
    assert!(browser.text("#notice").ends_with('1'), "{}", browser.text("#notice"));
    assert_eq!(scan_as(&server, IPHONE, "/autumn1").status(), 410);
    let audit = json_of(server.get_admin("/admin/v1/audit?entry=autumn1"));
    assert_eq!(
        audit["items"][0]["key"]["id"], "bootstrap",
        "the console acts as the signed-in key"
    );

    // An import through the page's form: the script uploads it (with a
    // progress bar) and puts the answer in place.
    let upload = dir.path().join("more.csv");
    std::fs::write(
        &upload,
        "code,appid,path,tags\nwinter1,wx1234567890abcdef,pages/w,winter\n,wx1234567890abcdef,pages/w,winter\n",
    )
    .unwrap();
    browser.goto(&format!("{}/console/import", server.admin));
    browser.choose_file("#file", &upload);
    browser.execute("window.__samePage = true;", vec![]);
    browser.click_in_place("#upload");
    let summary = browser.text("#summary");
    assert!(summary.contains("2 Codes"), "{summary}");
    assert_eq!(
        browser.execute("return window.__samePage === true", vec![]),
        json!(true),
        "the script (allowed by the CSP) uploaded it without leaving the page"
    );
    assert!(browser.text("#generated").contains('3'), "the generated code's line");
    assert_eq!(server.get_admin("/admin/v1/codes/winter1").status(), 200);
    only_own_origin(&browser, &server);

    // Sign-out ends the session: the old cookie gets the sign-in page.
    let cookie = browser.execute("return document.cookie", vec![]);
    assert_eq!(cookie, json!(""), "the session cookie is HttpOnly");
    browser.click("#sign-out");
    assert!(browser.url().ends_with("/console/sign-in"), "{}", browser.url());
    browser.goto(&format!("{}/console/codes", server.admin));
    assert!(browser.url().ends_with("/console/sign-in"), "{}", browser.url());
}

/// A session started with curl-like posts, for the checks a browser would
/// not let a test make (a post without the token).
fn session_of(server: &Server, key: &str) -> String {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("{}/console/sign-in", server.admin))
        .form(&[("key", key)])
        .send()
        .unwrap();
    assert_eq!(answer.status(), 303);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

fn csrf_of(server: &Server, cookie: &str) -> String {
    let page = server
        .client()
        .get(format!("{}/console/codes", server.admin))
        .header("cookie", cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    page[at..at + 64].to_string()
}

#[test]
fn a_viewer_gets_no_edit_controls_and_forged_or_tokenless_posts_change_nothing() {
    let server = Server::start(&[]);
    let viewer = json_of(server.send_json(
        reqwest::Method::POST,
        "/admin/v1/keys",
        &json!({"name": "reader", "role": "viewer"}),
    ));
    let secret = viewer["secret"].as_str().unwrap().to_string();

    // Without the CSRF token (or with another session's), a post is refused.
    let admin = session_of(&server, &server.token);
    let post = |cookie: &str, form: &[(&str, &str)]| {
        server
            .client()
            .post(format!("{}/console/codes/spring24/state", server.admin))
            .header("cookie", cookie)
            .form(form)
            .send()
            .unwrap()
    };
    assert_eq!(post(&admin, &[("disabled", "true")]).status(), 403);
    assert_eq!(
        post(&admin, &[("disabled", "true"), ("csrf", &"0".repeat(64))]).status(),
        403
    );
    let other = session_of(&server, &server.token);
    assert_eq!(
        post(&admin, &[("disabled", "true"), ("csrf", &csrf_of(&server, &other))]).status(),
        403
    );
    // From another site, even with the token.
    let token = csrf_of(&server, &admin);
    let cross = server
        .client()
        .post(format!("{}/console/codes/spring24/state", server.admin))
        .header("cookie", &admin)
        .header("sec-fetch-site", "cross-site")
        .form(&[("disabled", "true"), ("csrf", token.as_str())])
        .send()
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(
        json_of(server.get_admin("/admin/v1/codes/spring24")).get("disabled"),
        None
    );
    // With it, from here, it works.
    let ok = post(&admin, &[("disabled", "true"), ("csrf", token.as_str())]);
    assert!(
        ok.status().is_success() || ok.status().is_redirection(),
        "{}",
        ok.status()
    );
    assert_eq!(json_of(server.get_admin("/admin/v1/codes/spring24"))["disabled"], true);
    server.send_json(
        reqwest::Method::PATCH,
        "/admin/v1/codes/spring24",
        &json!({"disabled": false}),
    );

    // The viewer, in a browser at a phone's width.
    let Some(browser) = Browser::start(375) else { return };
    sign_in(&browser, &server, &secret);
    assert!(!browser.has(r#"nav a[href="/console/import"]"#));
    assert!(!browser.has(r#"nav a[href="/console/keys"]"#));
    let overflow = browser.execute(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1",
        vec![],
    );
    assert_eq!(overflow, json!(true), "the overview fits 375 px");
    browser.goto(&format!("{}/console/codes", server.admin));
    assert!(!browser.has("#new"));
    browser.goto(&format!("{}/console/codes/spring24", server.admin));
    for control in ["#edit", "#disable", "#enable", "#delete"] {
        assert!(!browser.has(control), "a viewer sees no {control}");
    }
    // A forged post (the viewer's own token, a form the page never showed).
    browser.execute(
        r#"const f = document.createElement('form'); f.method = 'post';
           f.action = '/console/codes/spring24/state';
           for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['disabled', 'true']]) {
             const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
           }
           document.body.appendChild(f); window.__qrlaunchOldPage = true; f.submit();"#,
        vec![],
    );
    eventually(
        std::time::Duration::from_secs(10),
        "the answer to the forged post",
        || {
            browser.execute(
                "return window.__qrlaunchOldPage === undefined && document.readyState === 'complete'",
                vec![],
            ) == json!(true)
        },
    );
    assert_eq!(browser.text("h1"), "Refused");
    assert!(browser.text("#error").contains("viewer"), "{}", browser.text("#error"));
    assert_eq!(
        json_of(server.get_admin("/admin/v1/codes/spring24")).get("disabled"),
        None
    );

    // A revoked key ends its sessions at once.
    let id = viewer["id"].as_str().unwrap();
    assert_eq!(
        server
            .admin(reqwest::Method::DELETE, &format!("/admin/v1/keys/{id}"))
            .send()
            .unwrap()
            .status(),
        204
    );
    browser.goto(&format!("{}/console/codes", server.admin));
    assert!(browser.url().ends_with("/console/sign-in"), "{}", browser.url());
}

#[test]
fn pages_speak_chinese_when_asked_and_imports_report_lines() {
    let server = Server::start(&[]);
    let zh = server
        .client()
        .get(format!("{}/console/sign-in", server.admin))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .unwrap();
    let csp = zh.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.starts_with("default-src 'self'; script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let page = zh.text().unwrap();
    assert!(
        page.contains(r#"<html lang="zh">"#) && page.contains("API 密钥"),
        "{page}"
    );

    // An import through the console: CSV, one line in error names its row.
    let cookie = session_of(&server, &server.token);
    let csrf = csrf_of(&server, &cookie);
    let upload = |csv: &'static str| {
        let form = reqwest::blocking::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("mode", "upsert")
            .part(
                "file",
                reqwest::blocking::multipart::Part::bytes(csv.as_bytes())
                    .file_name("codes.csv")
                    .mime_str("text/csv")
                    .unwrap(),
            );
        server
            .client()
            .post(format!("{}/console/import", server.admin))
            .header("cookie", &cookie)
            .multipart(form)
            .send()
            .unwrap()
    };
    let bad = upload("code,appid,path,tags\nok1,wx1234567890abcdef,pages/a,csv\nbad1,wx-nope,pages/b,csv\n");
    assert_eq!(bad.status(), 422);
    let page = bad.text().unwrap();
    assert!(
        page.contains(r#"<td class="num">3</td><td>appid</td>"#),
        "the CSV's row 3: {page}"
    );
    assert_eq!(server.get_admin("/admin/v1/codes/ok1").status(), 404, "all or nothing");
    let good = upload("code,appid,path,tags\nok1,wx1234567890abcdef,pages/a,csv\n,wx1234567890abcdef,pages/b,csv\n");
    assert_eq!(good.status(), 200);
    let page = good.text().unwrap();
    assert!(page.contains(r#"id="summary""#), "{page}");
    let generated = server
        .client()
        .get(format!("{}/console/import/generated.csv", server.admin))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let row: Vec<&str> = generated.lines().nth(1).expect("a generated code").split(',').collect();
    assert_eq!(row[0], "3");
    let stored: Value = json_of(server.get_admin(&format!("/admin/v1/codes/{}", row[1])));
    assert_eq!(stored["path"], "pages/b");
}

#[test]
fn every_page_renders_in_both_languages_and_the_downloads_are_what_they_say() {
    let server = Server::start(&["--assume-https"]);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = client
        .post(format!("{}/console/sign-in", server.admin))
        .form(&[("key", server.token.as_str())])
        .send()
        .unwrap();
    let set_cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("; Secure"), "--assume-https: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    server.send_json(
        reqwest::Method::PATCH,
        "/admin/v1/codes/spring24",
        &json!({"tags": ["spring", "print"]}),
    );
    let rule = "https%3A%2F%2Fwww.example.com%2Fshop%2F";
    let pages = [
        "/console/".to_string(),
        "/console/codes".into(),
        "/console/codes?q=spr&tag=spring&appid=wx1234567890abcdef".into(),
        "/console/codes/new".into(),
        "/console/codes/spring24".into(),
        "/console/codes/spring24?from=2026-01-01&to=2026-01-31".into(),
        "/console/codes/spring24/edit".into(),
        "/console/rules".into(),
        "/console/rules?q=https%3A%2F%2FWWW.example.com%2F".into(),
        "/console/rules/new".into(),
        format!("/console/rule?prefix={rule}"),
        format!("/console/rule/edit?prefix={rule}"),
        "/console/campaigns".into(),
        "/console/import".into(),
        "/console/hosts".into(),
        "/console/keys".into(),
        "/console/audit".into(),
        "/console/audit?entry=spring24".into(),
    ];
    for language in ["en", "zh-CN"] {
        for page in &pages {
            let answer = client
                .get(format!("{}{page}", server.admin))
                .header("cookie", &cookie)
                .header("accept-language", language)
                .send()
                .unwrap();
            assert_eq!(answer.status(), 200, "{page} ({language})");
            let body = answer.text().unwrap();
            assert!(body.contains("</html>"), "{page}: {body}");
        }
    }
    let search = client
        .get(format!(
            "{}/console/rules?q=https%3A%2F%2FWWW.example.com%2Fapp",
            server.admin
        ))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        search.contains("download?channel=store"),
        "a URL in any spelling finds its rules"
    );
    assert!(!search.contains("/shop/"), "and only those");
    let unknown = client
        .get(format!("{}/console/codes/no-such-code", server.admin))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // The campaign's QR codes as one zip, every image decodable.
    let zip = client
        .get(format!(
            "{}/console/campaigns/print/qr.zip?format=png&size=300",
            server.admin
        ))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(zip.status(), 200);
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let bytes = zip.bytes().unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    assert_eq!(archive.len(), 1);
    let mut png = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("spring24.png").expect("spring24.png"), &mut png).unwrap();
    let dir = temp_dir();
    std::fs::write(dir.path().join("spring24.png"), &png).unwrap();
    if let Some(decoded) = zbarimg(&dir.path().join("spring24.png")) {
        assert_eq!(decoded, [format!("{}/spring24", server.scan)]);
    }
    let csv = client
        .get(format!("{}/console/campaigns/print/counts.csv", server.admin))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text().unwrap().starts_with("kind,key,day,ios,"));
}

#[test]
fn odd_and_hostile_requests_get_the_right_answers_and_change_nothing_halfway() {
    let server = Server::start(&[]);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin = session_of(&server, &server.token);
    let get = |cookie: &str, path: &str| {
        client
            .get(format!("{}{path}", server.admin))
            .header("cookie", cookie)
            .send()
            .unwrap()
    };
    // Unknown console paths are the console's 404, with its headers.
    let missing = get(&admin, "/console/no-such-page");
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("content-security-policy"));
    // So is a cross-site post's refusal.
    let cross = client
        .post(format!("{}/console/sign-out", server.admin))
        .header("sec-fetch-site", "cross-site")
        .send()
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().contains_key("content-security-policy"));
    // The language switch goes back only into the console, whatever it is given.
    for back in [
        "%2Fconsole%0a",
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "%2Fconsole%2Fcodes",
    ] {
        let answer = get(&admin, &format!("/console/lang?to=zh&back={back}"));
        assert_eq!(answer.status(), 303, "{back}");
        let location = answer.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("/console/") && !location.contains("evil"),
            "{back} -> {location}"
        );
    }
    // A refused search answers with the API's status, the form kept.
    let bad = get(&admin, "/console/audit?from=yesterday");
    assert_eq!(bad.status(), 422);
    assert!(bad.text().unwrap().contains(r#"id="error""#));

    // An upload past axum's default 2 MB body limit (blank lines are skipped).
    let csrf = csrf_of(&server, &admin);
    let mut big = "\n".repeat(3 << 20);
    big.push_str(r#"{"code":"big1","appid":"wx1234567890abcdef","path":"pages/a"}"#);
    big.push('\n');
    let form = reqwest::blocking::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(big.into_bytes()).file_name("big.ndjson"),
        );
    let imported = client
        .post(format!("{}/console/import", server.admin))
        .header("cookie", &admin)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(imported.status(), 200);
    assert_eq!(server.get_admin("/admin/v1/codes/big1").status(), 200);

    // A verification file on a host without settings is found by its host.
    let put = client
        .post(format!("{}/console/hosts/files", server.admin))
        .header("cookie", &admin)
        .form(&[
            ("csrf", csrf.as_str()),
            ("host", "files-only.example.com"),
            ("file", "/MP_verify_x.txt"),
            ("body", "x"),
        ])
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    assert!(put.text().unwrap().contains("/MP_verify_x.txt"));
    assert!(get(&admin, "/console/hosts?host=files-only.example.com")
        .text()
        .unwrap()
        .contains("/MP_verify_x.txt"));

    // A campaign with an entry outside an editor's scopes: disabling it is
    // refused whole, the codes in scope untouched.
    server.send_json(
        reqwest::Method::POST,
        "/admin/v1/codes",
        &json!({"code": "mix1", "appid": "wx1234567890abcdef", "path": "p", "tags": ["mix"]}),
    );
    server.send_json(
        reqwest::Method::POST,
        "/admin/v1/rules",
        &json!({"prefix": "https://mix.example.com/", "appid": "wxfedcba0987654321", "path": "p", "tags": ["mix"]}),
    );
    let editor = json_of(server.send_json(
        reqwest::Method::POST,
        "/admin/v1/keys",
        &json!({"name": "ed", "role": "editor", "tags": ["mix"], "appids": ["wx1234567890abcdef"]}),
    ));
    let editor = session_of(&server, editor["secret"].as_str().unwrap());
    let token = csrf_of(&server, &editor);
    let state = client
        .post(format!("{}/console/campaigns/mix/state", server.admin))
        .header("cookie", &editor)
        .form(&[("csrf", token.as_str()), ("disabled", "true")])
        .send()
        .unwrap();
    assert!(state.status().is_client_error(), "{}", state.status());
    assert_eq!(json_of(server.get_admin("/admin/v1/codes/mix1")).get("disabled"), None);
    // The scoped key gets no fleet-wide facts, and no tag counts that would
    // tell of entries outside its scopes.
    let overview = get(&editor, "/console/").text().unwrap();
    assert!(overview.contains(r#"id="scoped""#) && !overview.contains(r#"id="position""#));
    assert!(!get(&editor, "/console/campaigns")
        .text()
        .unwrap()
        .contains(r#"id="tag-mix""#));
    // An admin disables the whole campaign at once.
    let token = csrf_of(&server, &admin);
    let state = client
        .post(format!("{}/console/campaigns/mix/state", server.admin))
        .header("cookie", &admin)
        .form(&[("csrf", token.as_str()), ("disabled", "true")])
        .send()
        .unwrap();
    assert_eq!(state.headers()["location"], "/console/campaigns?changed=2");
}
