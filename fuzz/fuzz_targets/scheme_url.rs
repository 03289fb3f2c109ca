//! The scheme URL: for any rule query and scanned URL, the `query` it
//! carries fits WeChat's 512 characters, and decoding it gives back the
//! entry's query plus `q` (the scanned URL, or a prefix of it when
//! shortened) and `scancode_time`, exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use qrlaunch::model::domain::Line;
use qrlaunch::model::table_file::{parse_line, Item};
use qrlaunch::model::scheme_url::{query_param, render, LegacyScan, MAX_QUERY};
use qrlaunch::model::table::{Snapshot, TableBuilder};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (own_query, scanned) = text.split_once('\n').unwrap_or((text, "https://a.example.com/x"));
    let line = Line {
        prefix: Some("https://a.example.com/".into()),
        appid: Some("wx1234567890abcdef".into()),
        path: Some("pages/p".into()),
        query: Some(own_query.into()),
        ..Line::default()
    };
    let Ok(Item::Entry(entry)) = parse_line(&serde_json::to_string(&line).unwrap()) else { return };
    let mut builder = TableBuilder::new();
    builder.insert(&entry);
    let snapshot = Snapshot::new(builder.build());
    let Some(hit) = snapshot.rule("https://a.example.com/") else { return };
    let time = 1_795_491_513;
    let rendered = render(&hit, Some(LegacyScan { url: scanned, scancode_time: time }));
    let query = query_param(&rendered.url);
    assert!(query.len() <= MAX_QUERY, "{} > {MAX_QUERY}", query.len());
    let decoded = percent_decode_str(query).decode_utf8().unwrap().into_owned();
    let rest = if own_query.is_empty() {
        decoded.as_str()
    } else {
        let rest = decoded.strip_prefix(own_query).expect("the entry's query comes first");
        rest.strip_prefix('&').unwrap_or(rest)
    };
    if rendered.truncated {
        if let Some(q) = rest.strip_prefix("q=") {
            let value = q.split('&').next().unwrap();
            let value = percent_decode_str(value).decode_utf8().unwrap();
            assert!(scanned.starts_with(&*value), "{value:?} is a prefix of {scanned:?}");
        }
    } else {
        let want_q = percent_encoding::utf8_percent_encode(scanned, qrlaunch::model::percent::COMPONENT).to_string();
        assert_eq!(rest, format!("q={want_q}&scancode_time={time}"));
    }
});
