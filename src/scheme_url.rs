//! The WeChat plaintext URL scheme,
//! `weixin://dl/business/?appid=APPID&path=PATH&query=QUERY&env_version=ENV`.
//!
//! `query` is URL-encoded exactly once as a whole (like JavaScript's
//! `encodeURIComponent`), so a value that was already encoded is encoded
//! again, which is what WeChat expects. `path` is encoded the same way but
//! keeps its `/`.

use crate::percent::{push_encoded, push_encoded_twice, COMPONENT};
use crate::table::Hit;
use percent_encoding::{utf8_percent_encode, AsciiSet};

/// A page path keeps its `/` separators.
const PAGE_PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// The scheme URL up to the start of the query value.
pub fn head(appid: &str, path: &str) -> String {
    format!(
        "weixin://dl/business/?appid={appid}&path={}&query=",
        utf8_percent_encode(path, PAGE_PATH)
    )
}

/// The scheme URL after the query value.
pub fn tail(env_version: &str) -> String {
    format!("&env_version={env_version}")
}

/// What WeChat adds to the query of a page opened from a legacy QR URL.
#[derive(Debug, Clone, Copy)]
pub struct LegacyScan<'a> {
    /// The scanned URL, as the phone asked for it.
    pub url: &'a str,
    /// The scan time, UNIX seconds.
    pub scancode_time: i64,
}

/// The scheme URL that opens `hit`. For a legacy URL, `q` (the scanned URL,
/// encoded) and `scancode_time` are appended to the entry point's query, as
/// WeChat does, before the query is encoded as a whole.
pub fn render(hit: &Hit<'_>, legacy: Option<LegacyScan<'_>>) -> String {
    let profile = hit.profile;
    let legacy_len = legacy.map_or(0, |l| l.url.len() * 5 + 48);
    let mut out =
        String::with_capacity(profile.scheme_head.len() + hit.query.len() * 3 + legacy_len + profile.scheme_tail.len());
    out.push_str(&profile.scheme_head);
    push_encoded(&mut out, hit.query);
    if let Some(LegacyScan { url, scancode_time }) = legacy {
        if !hit.query.is_empty() {
            out.push_str("%26");
        }
        out.push_str("q%3D");
        push_encoded_twice(&mut out, url);
        out.push_str("%26scancode_time%3D");
        out.push_str(&scancode_time.to_string());
    }
    out.push_str(&profile.scheme_tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_tail_frame_the_query() {
        let url = head("wx1234567890abcdef", "pages/a b/index") + "id%3D1" + &tail("trial");
        assert_eq!(
            url,
            "weixin://dl/business/?appid=wx1234567890abcdef&path=pages/a%20b/index&query=id%3D1&env_version=trial"
        );
    }
}
