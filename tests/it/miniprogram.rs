//! The mini program landing page helper (`sdk/miniprogram/`), run by
//! node's own test runner against this qrlaunch over HTTP, with a
//! stand-in `wx` object (WeChat itself cannot be run here).

use crate::support::*;
use std::process::Command;

/// What the node tests expect to find (see `sdk/miniprogram/test/landing.test.js`).
const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42&from=poster","fallback_url":"https://example.com/promo"}
{"code":"other","appid":"wx00000000000000ab","path":"pages/shop/index","query":"shop=9","env_version":"trial"}
{"code":"expired","appid":"wx1234567890abcdef","path":"p","valid_until":"2020-01-01T00:00:00Z","fallback_url":"https://example.com/over"}
{"code":"off","appid":"wx1234567890abcdef","path":"p","disabled":true}
{"code":"loop","appid":"wx1234567890abcdef","path":"pages/landing/index"}
{"code":"broken","appid":"wx1234567890abcdef","path":"pages/missing/index","fallback_url":"https://example.com/broken"}
{"prefix":"https://app.shop-example.com/download?channel=","appid":"wx1234567890abcdef","path":"pages/download/index","query":"from=legacy"}
"#;

#[test]
fn the_landing_page_helper_passes_its_node_tests_against_a_real_node() {
    let Some(node) = require_program("node", "nodejs") else {
        return;
    };
    let server = Server::with_table(TABLE, &[]);
    let down = format!("http://127.0.0.1:{}", free_port());
    let output = Command::new(node)
        .args(["--test", "--test-timeout=30000", "sdk/miniprogram/test/landing.test.js"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("QRLAUNCH_BASE", &server.scan)
        .env("QRLAUNCH_DOWN", &down)
        .env_remove("NODE_OPTIONS")
        .output()
        .expect("run node");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node --test failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every case ran: node prints `# pass N` and `# fail 0`.
    assert!(report.contains("# fail 0") && report.contains("# pass 15"), "{report}");

    // Only the helper's successful resolutions count, as `wechat-scan`.
    let code = json_of(server.get_admin("/admin/v1/codes/spring24/stats"));
    assert_eq!(code["total"]["wechat_scan"], 3, "{code}");
    assert_eq!(code["total"]["total"], 3, "{code}");
    let rule = json_of(
        server.get_admin("/admin/v1/rules/stats?prefix=https%3A%2F%2Fapp.shop-example.com%2Fdownload%3Fchannel%3D"),
    );
    assert_eq!(rule["total"]["wechat_scan"], 1, "{rule}");
    let gone = json_of(server.get_admin("/admin/v1/codes/expired/stats"));
    assert_eq!(gone["total"]["total"], 0, "{gone}");
}
