//! Mini program codes (`qrlaunch wxacode`, `GET /admin/v1/codes/{code}/wxacode`)
//! against a stand-in of WeChat's API: WeChat cannot be reached from here,
//! so [`StandIn`] answers `POST /cgi-bin/stable_token` and
//! `POST /wxa/getwxacodeunlimit` as WeChat's documentation describes them
//! (developers.weixin.qq.com: "获取稳定版接口调用凭据", "获取不限制的小程序码"),
//! error codes included.

use crate::support::*;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const APPID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const LANDING: &str = "pages/landing/index";

const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","tags":["spring"]}
{"code":"spring25","appid":"wx1234567890abcdef","path":"pages/promo/index","tags":["spring"]}
{"code":"summer","appid":"wx1234567890abcdef","path":"pages/promo/index","tags":["summer"]}
"#;

/// What the stand-in was asked and how it is to answer.
#[derive(Default)]
struct Books {
    /// Tokens handed out; the last is the valid one.
    tokens: Vec<String>,
    /// `force_refresh` of each token request.
    token_requests: Vec<bool>,
    /// Bodies of the code requests, with the token they carried.
    code_requests: Vec<(String, Value)>,
    /// Tokens WeChat no longer takes although stable_token still hands them out.
    revoked: Vec<String>,
    /// Answer the next N code requests with 45009.
    rate_limit_next: u32,
    /// Pages of the "published" mini program.
    published: Vec<String>,
}

/// WeChat's API on a loopback port, in its own thread and runtime.
pub struct StandIn {
    url: String,
    books: Arc<Mutex<Books>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    // WeChat answers errors with status 200 and a JSON body.
    Json(serde_json::json!({"errcode": errcode, "errmsg": errmsg})).into_response()
}

async fn stable_token(State(books): State<Arc<Mutex<Books>>>, Json(body): Json<Value>) -> Response {
    if body["grant_type"] != "client_credential" {
        return wechat_error(40002, "invalid grant_type");
    }
    if body["appid"] != APPID {
        return wechat_error(40013, "invalid appid");
    }
    if body["secret"] != SECRET {
        return wechat_error(40125, "invalid appsecret");
    }
    let force = body["force_refresh"].as_bool().unwrap_or(false);
    let mut books = books.lock().unwrap();
    books.token_requests.push(force);
    if force || books.tokens.is_empty() {
        let token = format!("ACCESS_TOKEN_{}", books.tokens.len() + 1);
        books.tokens.push(token);
    }
    let token = books.tokens.last().unwrap().clone();
    Json(serde_json::json!({"access_token": token, "expires_in": 7200})).into_response()
}

async fn unlimited(
    State(books): State<Arc<Mutex<Books>>>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let mut books = books.lock().unwrap();
    let token = query.get("access_token").cloned().unwrap_or_default();
    books.code_requests.push((token.clone(), body.clone()));
    if books.tokens.last() != Some(&token) || books.revoked.contains(&token) {
        return wechat_error(40001, "invalid credential, access_token is invalid or not latest");
    }
    if books.rate_limit_next > 0 {
        books.rate_limit_next -= 1;
        return wechat_error(45009, "reach max api daily quota limit");
    }
    let scene = body["scene"].as_str().unwrap_or("");
    if scene.is_empty() || scene.len() > 32 {
        return wechat_error(40169, "invalid length for scene, or the data is not json string");
    }
    let page = body["page"].as_str().unwrap_or("");
    if body["check_path"].as_bool().unwrap_or(true) && !books.published.iter().any(|p| p == page) {
        return wechat_error(41030, "invalid page hint");
    }
    // The image: a PNG whose bytes name what it opens, so tests can tell
    // images apart.
    let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
    image.extend_from_slice(format!("page={page}&scene={scene}&width={}", body["width"]).as_bytes());
    ([(CONTENT_TYPE, "image/png")], image).into_response()
}

impl StandIn {
    pub fn start() -> StandIn {
        let books = Arc::new(Mutex::new(Books {
            published: vec![LANDING.to_string()],
            ..Books::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = books.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/cgi-bin/stable_token", axum::routing::post(stable_token))
                    .route("/wxa/getwxacodeunlimit", axum::routing::post(unlimited))
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(300), stopped).await;
                    })
                    .await;
            });
        });
        StandIn {
            url,
            books,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap()
    }

    /// The flags of a node that makes codes through this stand-in, with the
    /// secret written into `dir`.
    pub fn flags(&self, dir: &std::path::Path) -> Vec<String> {
        flags_for(dir, &self.url)
    }
}

/// The flags of a node that makes codes through WeChat's API at `api`,
/// with the secret written into `dir`.
fn flags_for(dir: &std::path::Path, api: &str) -> Vec<String> {
    let secret_file = dir.join("wechat-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    [
        "--wechat-appid",
        APPID,
        "--wechat-secret-file",
        secret_file.to_str().unwrap(),
        "--landing-page",
        LANDING,
        "--wechat-api",
        api,
    ]
    .map(String::from)
    .to_vec()
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A node that makes codes through `wechat`, with `extra` flags.
fn node(wechat: &StandIn, secret: &str, extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = temp_dir();
    let flags = wechat.flags(dir.path());
    std::fs::write(dir.path().join("wechat-secret"), format!("{secret}\n")).unwrap();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    (Server::with_table(TABLE, &args), dir)
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_mini_program_code_opens_the_landing_page_with_the_code() {
    let wechat = StandIn::start();
    let (server, dir) = node(&wechat, SECRET, &["--wxacode-env-version", "trial"]);
    let out = dir.path().join("spring24.png");
    let run = server.cli(&["wxacode", "spring24", "-o", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let image = std::fs::read(&out).unwrap();
    assert_eq!(
        image,
        b"\x89PNG\r\n\x1a\npage=pages/landing/index&scene=spring24&width=430"
    );
    {
        let books = wechat.books();
        assert_eq!(books.token_requests, vec![false]);
        let (token, body) = &books.code_requests[0];
        assert_eq!(token, "ACCESS_TOKEN_1");
        assert_eq!(
            body,
            &serde_json::json!({"scene": "spring24", "page": LANDING, "check_path": true, "env_version": "trial", "width": 430})
        );
    }
    // The API, with a width; the token is reused.
    let response = server.get_admin("/admin/v1/codes/spring24/wxacode?width=600");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        response.headers()["qrlaunch-wxacode"],
        "page=pages/landing/index; scene=spring24; env_version=trial"
    );
    assert!(response.bytes().unwrap().ends_with(b"width=600"));
    assert_eq!(wechat.books().token_requests.len(), 1, "the token is cached");
    assert_eq!(server.metric("qrlaunch_wechat_calls_total{outcome=\"ok\"}"), 2.0);

    // Bad input and unknown codes: clear errors, no call to WeChat.
    let calls = wechat.books().code_requests.len();
    for (path, status) in [
        ("/admin/v1/codes/nope/wxacode", 404),
        ("/admin/v1/codes/spring24/wxacode?width=100", 400),
        ("/admin/v1/codes/spring24/wxacode?width=wide", 400),
    ] {
        let response = server.get_admin(path);
        assert_eq!(response.status(), status, "{path}");
        assert!(json_of(response)["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(wechat.books().code_requests.len(), calls);
    let run = server.cli(&["wxacode", "nope", "-o", dir.path().join("nope.png").to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("no such code"), "{}", stderr(&run));
    assert!(!dir.path().join("nope.png").exists());

    // Every code of a campaign into a directory; a second run keeps them.
    let campaign = dir.path().join("spring");
    let run = server.cli(&["wxacode", "--all", "--tag", "spring", "-o", campaign.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let mut files: Vec<String> = std::fs::read_dir(&campaign)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["spring24.png", "spring25.png"]);
    let calls = wechat.books().code_requests.len();
    let run = server.cli(&[
        "wxacode",
        "--all",
        "--tag",
        "spring",
        "--skip-existing",
        "-o",
        campaign.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("2 there already kept"), "{}", stderr(&run));
    assert_eq!(wechat.books().code_requests.len(), calls);
    // Without it, every image is made again (another width, say).
    let run = server.cli(&[
        "wxacode",
        "--all",
        "--tag",
        "spring",
        "--width",
        "600",
        "-o",
        campaign.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(wechat.books().code_requests.len(), calls + 2);
    assert!(std::fs::read(campaign.join("spring24.png"))
        .unwrap()
        .ends_with(b"width=600"));
    let run = server.cli(&["wxacode", "--all", "--tag", "nothing", "-o", campaign.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("no code matched"), "{}", stderr(&run));
    let run = server.cli(&["wxacode", "-o", campaign.to_str().unwrap()]);
    assert!(!run.status.success(), "a code or --all");

    // A viewer may not spend the merchant's quota.
    let key = json_of(server.send_json(
        reqwest::Method::POST,
        "/admin/v1/keys",
        &serde_json::json!({"name": "reader", "role": "viewer"}),
    ));
    let secret = key["secret"].as_str().unwrap();
    let response = server
        .client()
        .get(format!("{}/admin/v1/codes/spring24/wxacode", server.admin))
        .bearer_auth(secret)
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(!server.logs().contains(SECRET), "the AppSecret is never logged");
}

#[test]
fn tokens_are_renewed_and_wechat_errors_say_what_to_do() {
    let wechat = StandIn::start();
    let (server, _dir) = node(&wechat, SECRET, &[]);
    assert_eq!(server.get_admin("/admin/v1/codes/spring24/wxacode").status(), 200);
    // WeChat stops taking the token (another caller forced a new one):
    // qrlaunch asks for the stable token again, without forcing it.
    wechat.books().tokens.push("ACCESS_TOKEN_ELSEWHERE".into());
    assert_eq!(server.get_admin("/admin/v1/codes/spring24/wxacode").status(), 200);
    {
        let books = wechat.books();
        assert_eq!(books.token_requests, vec![false, false]);
        let tokens: Vec<&str> = books.code_requests.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tokens, ["ACCESS_TOKEN_1", "ACCESS_TOKEN_1", "ACCESS_TOKEN_ELSEWHERE"]);
    }
    // A token WeChat refuses but still hands out: only then is it forced.
    wechat.books().revoked.push("ACCESS_TOKEN_ELSEWHERE".into());
    assert_eq!(server.get_admin("/admin/v1/codes/spring24/wxacode").status(), 200);
    {
        let books = wechat.books();
        assert_eq!(books.token_requests, vec![false, false, false, true]);
        assert_eq!(books.code_requests.last().unwrap().0, "ACCESS_TOKEN_3");
    }

    // WeChat's rate limit: backed off and retried...
    wechat.books().rate_limit_next = 2;
    assert_eq!(server.get_admin("/admin/v1/codes/spring24/wxacode").status(), 200);
    // ...and given back as 429 when it lasts.
    wechat.books().rate_limit_next = 10;
    let response = server.get_admin("/admin/v1/codes/spring24/wxacode");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "60");
    let body = json_of(response);
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("45009"), "{body}");
    assert_eq!(
        server.metric("qrlaunch_wechat_calls_total{outcome=\"rate_limited\"}"),
        1.0
    );
    wechat.books().rate_limit_next = 0;

    // The landing page is not published: 41030 named with the flag to fix it.
    wechat.books().published.clear();
    let response = server.get_admin("/admin/v1/codes/spring24/wxacode");
    assert_eq!(response.status(), 502);
    let body = json_of(response);
    assert_eq!(body["error"], "upstream");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("41030") && message.contains(LANDING) && message.contains("--wxacode-check-path"),
        "{message}"
    );
    drop(server);

    // ...which --wxacode-check-path false allows while it is in development.
    let (server, _dir) = node(&wechat, SECRET, &["--wxacode-check-path", "false"]);
    assert_eq!(server.get_admin("/admin/v1/codes/spring24/wxacode").status(), 200);
    assert_eq!(wechat.books().code_requests.last().unwrap().1["check_path"], false);
}

#[test]
fn wrong_credentials_a_missing_wechat_and_no_configuration_are_clear() {
    let wechat = StandIn::start();
    let wrong = "ffffffffffffffffffffffffffffffff";
    let (server, dir) = node(&wechat, wrong, &[]);
    let response = server.get_admin("/admin/v1/codes/spring24/wxacode");
    assert_eq!(response.status(), 502);
    let message = json_of(response)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("40125") && message.contains("--wechat-secret-file"),
        "{message}"
    );
    assert!(!message.contains(wrong));
    let run = server.cli(&["wxacode", "spring24", "-o", dir.path().join("x.png").to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("40125"), "{}", stderr(&run));
    assert!(
        !stderr(&run).contains(wrong) && !server.logs().contains(wrong),
        "no secret in errors or logs"
    );
    drop(server);

    // WeChat's API down: 502, and the token in the URL is never shown.
    let down = format!("http://127.0.0.1:{}", free_port());
    let dir2 = temp_dir();
    let flags = flags_for(dir2.path(), &down);
    let server = Server::with_table(TABLE, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let response = server.get_admin("/admin/v1/codes/spring24/wxacode");
    assert_eq!(response.status(), 502);
    let message = json_of(response)["message"].as_str().unwrap().to_string();
    assert!(message.contains("could not be reached"), "{message}");
    drop(server);

    // A node without --wechat-appid says what it needs.
    let server = Server::with_table(TABLE, &[]);
    let response = server.get_admin("/admin/v1/codes/spring24/wxacode");
    assert_eq!(response.status(), 409);
    let body = json_of(response);
    assert_eq!(body["error"], "not_configured");
    assert!(body["message"].as_str().unwrap().contains("--wechat-appid"), "{body}");

    // Bad settings stop the start, naming the flag.
    let good = flags_for(dir.path(), "https://api.weixin.qq.com");
    for (flag, value) in [
        ("--landing-page", "/pages/landing/index"),
        ("--wechat-appid", "not-an-appid"),
        ("--wechat-api", "http://api.example.com"),
        ("--wxacode-env-version", "beta"),
    ] {
        let mut args: Vec<&str> = good.iter().map(String::as_str).collect();
        match args.iter().position(|a| *a == flag) {
            Some(i) => args[i + 1] = value,
            None => args.extend([flag, value]),
        }
        let start = Server::try_start_on(
            &dir.path().join(format!("data-{}", flag.trim_start_matches('-'))),
            &args,
        );
        let failure = start.err().unwrap_or_else(|| panic!("{flag} {value} was accepted"));
        assert!(failure.contains(flag), "{flag}: {failure}");
    }
}
