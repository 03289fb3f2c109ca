//! The WeChat plaintext URL scheme,
//! `weixin://dl/business/?appid=APPID&path=PATH&query=QUERY&env_version=ENV`.
//!
//! `query` is URL-encoded exactly once as a whole (like JavaScript's
//! `encodeURIComponent`), so a value that was already encoded is encoded
//! again, which is what WeChat expects. `path` is encoded the same way but
//! keeps its `/`.

use crate::table::Hit;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

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

/// Length of `s` once encoded as a URL component.
pub fn encoded_len(s: &str) -> usize {
    s.bytes().map(|b| if is_unreserved(b) { 1 } else { 3 }).sum()
}

/// Appends `s` encoded once.
pub fn push_encoded(out: &mut String, s: &str) {
    out.extend(utf8_percent_encode(s, COMPONENT));
}

/// Appends `s` encoded twice: the `q` value inside a query that is itself
/// encoded once more. `%` of the first pass becomes `%25` in the second.
pub fn push_encoded_twice(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(s.len());
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str("%25");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::percent_decode_str;

    #[test]
    fn head_and_tail_frame_the_query() {
        let url = head("wx1234567890abcdef", "pages/a b/index") + "id%3D1" + &tail("trial");
        assert_eq!(
            url,
            "weixin://dl/business/?appid=wx1234567890abcdef&path=pages/a%20b/index&query=id%3D1&env_version=trial"
        );
    }

    #[test]
    fn encoding_round_trips_through_one_and_two_decodes() {
        for raw in ["a=1&b=2", "x=%41 y", "名=值", "u=https://a.b/c?d=e&f=g#h", "~*'()!"] {
            let mut once = String::new();
            push_encoded(&mut once, raw);
            assert_eq!(once.len(), encoded_len(raw));
            assert_eq!(percent_decode_str(&once).decode_utf8().unwrap(), raw);
            let mut twice = String::new();
            push_encoded_twice(&mut twice, raw);
            let first = percent_decode_str(&twice).decode_utf8().unwrap().into_owned();
            assert_eq!(first, once);
            assert_eq!(percent_decode_str(&first).decode_utf8().unwrap(), raw);
        }
    }
}
