//! The WeChat plaintext URL scheme,
//! `weixin://dl/business/?appid=APPID&path=PATH&query=QUERY&env_version=ENV`.
//!
//! `query` is URL-encoded exactly once as a whole (like JavaScript's
//! `encodeURIComponent`), so a value that was already encoded is encoded
//! again, which is what WeChat expects. `path` is encoded the same way but
//! keeps its `/`. WeChat refuses a `query` over [`MAX_QUERY`] characters:
//! an entry's own query is checked at write time, and a legacy scan whose
//! `q` would push it over is shortened here (see [`render`]).

use crate::model::percent::{encoded_len, encoded_twice_len, push_encoded, push_encoded_twice, COMPONENT};
use crate::model::table::Hit;
use percent_encoding::{utf8_percent_encode, AsciiSet};

/// WeChat's limit on the encoded `query` parameter.
pub const MAX_QUERY: usize = 512;

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

/// The scheme URL a code scan answers for this entry point (no legacy
/// URL to pass on), for showing to people.
pub fn plain(appid: &str, path: &str, query: &str, env_version: &str) -> String {
    let mut out = head(appid, path);
    push_encoded(&mut out, query);
    out.push_str(&tail(env_version));
    out
}

/// What WeChat adds to the query of a page opened from a legacy QR URL.
#[derive(Debug, Clone, Copy)]
pub struct LegacyScan<'a> {
    /// The scanned URL, as the phone asked for it.
    pub url: &'a str,
    /// The scan time, UNIX seconds.
    pub scancode_time: i64,
}

/// A rendered scheme URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub url: String,
    /// `q` had to be shortened (or left out) to keep `query` within
    /// [`MAX_QUERY`]; the page then also gets `qtrunc=1`.
    pub truncated: bool,
    /// The `scancode_time` the URL carries (`None`: none, a code's URL or
    /// no room), so a cache can put the time of the scan it answers there
    /// (`deploy/varnish/qrlaunch.vcl`).
    pub scancode_time: Option<i64>,
}

/// `%26` + `scancode_time%3D`.
const TIME_PREFIX: &str = "%26scancode_time%3D";
/// `q%3D` (after `%26` when the entry has a query).
const Q_PREFIX: &str = "q%3D";
/// Marks a shortened `q`.
const TRUNCATED: &str = "%26qtrunc%3D1";

/// The scheme URL that opens `hit`. For a legacy URL, `q` (the scanned URL,
/// encoded) and `scancode_time` are appended to the entry point's query, as
/// WeChat does, before the query is encoded as a whole.
///
/// When the encoded query would exceed [`MAX_QUERY`] characters, `q` is
/// cut to the longest prefix of the scanned URL that fits (at a character
/// boundary; the matched rule's prefix when it fits is kept whole, so the
/// page can still tell which rule and poster family it came from) and
/// `qtrunc=1` is added; if not even an empty `q` fits, `q` is left out, and
/// then `scancode_time` too. The result never exceeds the limit.
pub fn render(hit: &Hit<'_>, legacy: Option<LegacyScan<'_>>) -> Rendered {
    render_into(hit, legacy, None)
}

/// Like [`render`], also writing into `page_query` the query the page
/// gets when WeChat opens it by the rendered URL (the `query` parameter
/// decoded once): what `wx.redirectTo` needs to open the same page.
pub fn render_with_page_query(hit: &Hit<'_>, legacy: Option<LegacyScan<'_>>, page_query: &mut String) -> Rendered {
    render_into(hit, legacy, Some(page_query))
}

fn render_into(hit: &Hit<'_>, legacy: Option<LegacyScan<'_>>, mut page: Option<&mut String>) -> Rendered {
    let profile = hit.profile;
    if let Some(page) = page.as_deref_mut() {
        page.push_str(hit.query);
    }
    let mut out = String::with_capacity(profile.scheme_head.len() + MAX_QUERY + profile.scheme_tail.len());
    out.push_str(&profile.scheme_head);
    push_encoded(&mut out, hit.query);
    let mut truncated = false;
    let mut time_written = None;
    if let Some(LegacyScan { url, scancode_time }) = legacy {
        let own = encoded_len(hit.query);
        let separator = if hit.query.is_empty() { 0 } else { 3 };
        let time = TIME_PREFIX.len() + digits(scancode_time);
        let fixed = own + separator + Q_PREFIX.len() + time;
        let q = if fixed + encoded_twice_len(url) <= MAX_QUERY {
            Some(url)
        } else if fixed + TRUNCATED.len() <= MAX_QUERY {
            truncated = true;
            Some(prefix_within(url, MAX_QUERY - fixed - TRUNCATED.len()))
        } else {
            truncated = true;
            None
        };
        if let Some(q) = q {
            if !hit.query.is_empty() {
                out.push_str("%26");
            }
            out.push_str(Q_PREFIX);
            push_encoded_twice(&mut out, q);
            if truncated {
                out.push_str(TRUNCATED);
            }
            if let Some(page) = page.as_deref_mut() {
                if !hit.query.is_empty() {
                    page.push('&');
                }
                page.push_str("q=");
                push_encoded(page, q);
                if truncated {
                    page.push_str("&qtrunc=1");
                }
            }
        }
        if own + time <= MAX_QUERY || q.is_some() {
            let first = q.is_none() && hit.query.is_empty();
            if first {
                out.push_str(&TIME_PREFIX[3..]);
            } else {
                out.push_str(TIME_PREFIX);
            }
            let time = scancode_time.to_string();
            out.push_str(&time);
            if let Some(page) = page {
                page.push_str(if first { "scancode_time=" } else { "&scancode_time=" });
                page.push_str(&time);
            }
            time_written = Some(scancode_time);
        }
    }
    out.push_str(&profile.scheme_tail);
    Rendered {
        url: out,
        truncated,
        scancode_time: time_written,
    }
}

fn digits(n: i64) -> usize {
    n.to_string().len()
}

/// The longest prefix of `s`, at a character boundary, whose twice-encoded
/// form fits in `room` characters.
fn prefix_within(s: &str, room: usize) -> &str {
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let mut buf = [0u8; 4];
        let cost = encoded_twice_len(c.encode_utf8(&mut buf));
        if used + cost > room {
            break;
        }
        used += cost;
        end = i + c.len_utf8();
    }
    &s[..end]
}

/// The encoded `query` parameter of a rendered scheme URL.
pub fn query_param(url: &str) -> &str {
    url.split_once("&query=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(""))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page query written beside the URL is its `query` decoded once,
    /// for codes, rules, long and cut `q`s.
    #[test]
    fn the_page_query_is_the_query_parameter_decoded_once() {
        let long = format!("x={}", "z".repeat(490));
        for own in ["", "from=rule", "a=1&zh=中文&u=https%3A%2F%2Fx", &long] {
            let snapshot = rule_with_query(own);
            let hit = snapshot.rule("https://a.example.com/").expect("the rule matches");
            for url in [
                "https://a.example.com/q?x=1".to_string(),
                format!("https://a.example.com/q?{}", "长".repeat(200)),
                format!("https://a.example.com/q?{}", "y".repeat(600)),
            ] {
                for legacy in [
                    None,
                    Some(LegacyScan {
                        url: &url,
                        scancode_time: 1_700_000_000,
                    }),
                ] {
                    let mut page = String::new();
                    let rendered = render_with_page_query(&hit, legacy, &mut page);
                    assert_eq!(rendered, render(&hit, legacy));
                    let decoded = percent_decode_str(query_param(&rendered.url)).decode_utf8().unwrap();
                    assert_eq!(page, decoded, "{own} / {}", &url[..30]);
                }
            }
        }
    }
    use crate::model::table::{Snapshot, TableBuilder};
    use percent_encoding::percent_decode_str;

    #[test]
    fn head_and_tail_frame_the_query() {
        let url = head("wx1234567890abcdef", "pages/a b/index") + "id%3D1" + &tail("trial");
        assert_eq!(
            url,
            "weixin://dl/business/?appid=wx1234567890abcdef&path=pages/a%20b/index&query=id%3D1&env_version=trial"
        );
    }

    fn rule_with_query(query: &str) -> Snapshot {
        let line = format!(
            r#"{{"prefix":"https://a.example.com/","appid":"wx1234567890abcdef","path":"p","query":"{query}"}}"#
        );
        let crate::model::table_file::Item::Entry(entry) = crate::model::table_file::parse_line(&line).unwrap() else {
            panic!()
        };
        let mut builder = TableBuilder::new();
        builder.insert(&entry);
        Snapshot::new(builder.build())
    }

    /// Decoding the rendered `query` once gives the entry's query plus `q`
    /// and `scancode_time`; decoding `q` once more gives the scanned URL.
    #[test]
    fn legacy_queries_round_trip_or_are_cut_within_the_limit() {
        for own in [
            "",
            "from=qr",
            &format!("x={}", "y".repeat(400)),
            &format!("x={}", "z".repeat(490)),
        ] {
            let snapshot = rule_with_query(own);
            let hit = snapshot.rule("https://a.example.com/").unwrap();
            for url in [
                "https://a.example.com/dl?c=1".to_string(),
                format!("https://a.example.com/dl?c={}", "名".repeat(60)),
                format!("https://a.example.com/{}", "p".repeat(600)),
            ] {
                let rendered = render(
                    &hit,
                    Some(LegacyScan {
                        url: &url,
                        scancode_time: 1_795_491_513,
                    }),
                );
                let query = query_param(&rendered.url);
                assert!(query.len() <= MAX_QUERY, "{} > {MAX_QUERY}", query.len());
                let decoded = percent_decode_str(query).decode_utf8().unwrap().into_owned();
                let pairs: Vec<(&str, &str)> = decoded
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.split_once('=').unwrap_or((p, "")))
                    .collect();
                let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                let q = get("q").map(|v| percent_decode_str(v).decode_utf8().unwrap().into_owned());
                if rendered.truncated {
                    assert_eq!(get("qtrunc"), Some("1").filter(|_| q.is_some()).or(get("qtrunc")));
                    if let Some(q) = &q {
                        assert!(url.starts_with(q.as_str()), "{q} is a prefix of {url}");
                    }
                } else {
                    assert_eq!(q.as_deref(), Some(url.as_str()));
                    assert_eq!(get("scancode_time"), Some("1795491513"));
                    assert_eq!(get("qtrunc"), None);
                }
                if !own.is_empty() {
                    assert!(decoded.starts_with(own), "the entry's own query comes first");
                }
            }
        }
    }
}
