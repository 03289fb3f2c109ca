//! The NDJSON table file: one JSON object a line ([`Line`]), read and
//! written here and nowhere else.
//!
//! ```text
//! {"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42&from=poster","fallback_url":"https://example.com/promo"}
//! {"prefix":"https://www.example.com/app/download?channel=","appid":"wx1234567890abcdef","path":"pages/download/index"}
//! {"host":"www.example.com","unmatched":"https://origin.example.com"}
//! {"host":"www.example.com","file":"/MP_verify_abc.txt","body":"abc"}
//! ```
//!
//! One [`Reader`] serves `qrlaunch check`, the first start's seeding and
//! `POST /admin/v1/import`, so all three accept the same lines and word
//! their errors the same way: a line number, the field, the rule broken;
//! a key that appears twice names both lines. Lines are capped at
//! [`MAX_LINE`] bytes, whatever the reader, so a 2 GB line is an error and
//! not 2 GB of memory. Blank lines are skipped.

//!
//! * [`parse`]: one line → an [`Item`] or the [`Problem`] with it;
//! * [`read`]: the [`Reader`] of a whole file (line cap, duplicates);
//! * [`load`]: a file straight into a [`Table`](crate::model::table::Table) (`qrlaunch check`);
//! * [`write`]: an entry back into a line;
//! * [`csv`]: CSV files (a header row naming the fields) as NDJSON lines.

pub mod csv;
pub mod load;
pub mod parse;
pub mod read;
pub mod write;

pub use load::{load, Loaded};
pub use parse::{known_field, parse_line, Item, LineError, Problem};
pub use read::{duplicate, read_line_capped, ReadError, Reader};
pub use write::write_line;

/// Longest accepted line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// The table that ships in `examples/table.ndjson`, embedded so that
/// `cargo run --release` serves something from any directory.
pub const EXAMPLE_TABLE: &str = include_str!("../../../examples/table.ndjson");

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(s: &str) -> Result<Loaded, ReadError> {
        load(s.as_bytes())
    }

    #[test]
    fn the_embedded_example_loads() {
        let loaded = load_str(EXAMPLE_TABLE).unwrap();
        assert!(loaded.table.code("spring24").is_some());
        assert!(loaded.table.rule_count() > 0);
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let good = r#"{"code":"a1","appid":"wx1234567890abcdef","path":"pages/a"}"#;
        let cases = [
            (
                r#"{"code":"a2","appid":"wx12","path":"pages/a"}"#,
                "line 3: field `appid`",
            ),
            (
                r#"{"code":"a2","appid":"wx1234567890abcdef","path":"/pages/a"}"#,
                "line 3: field `path`",
            ),
            (
                r#"{"code":"a2","appid":"wx1234567890abcdef","path":"p","env_version":"prod"}"#,
                "field `env_version`",
            ),
            (
                r#"{"code":"a/2","appid":"wx1234567890abcdef","path":"p"}"#,
                "field `code`",
            ),
            (
                r#"{"prefix":"ftp://x/","appid":"wx1234567890abcdef","path":"p"}"#,
                "field `prefix`",
            ),
            (
                r#"{"code":"a2","appid":"wx1234567890abcdef","path":"p","valid_from":"soon"}"#,
                "field `valid_from`",
            ),
            (
                r#"{"code":"a2","appid":"wx1234567890abcdef","path":"p","fallback_url":"javascript:x"}"#,
                "field `fallback_url`",
            ),
            (
                r#"{"code":"a2","app_id":"wx1234567890abcdef","path":"p"}"#,
                "unknown field `app_id`",
            ),
            (r#"{"code":"a2","path":"p"}"#, "missing field `appid`"),
            (
                r#"{"code":"a2","appid":"wx1234567890abcdef","path":7}"#,
                "line 3: field `path`",
            ),
            (
                r#"{"code":"a2","code":"a3","appid":"wx1234567890abcdef","path":"p"}"#,
                "duplicate field `code`",
            ),
            (
                r#"{"prefix":"https://a.com/x","appid":"wx1234567890abcdef"}"#,
                "missing field `path`",
            ),
            (
                r#"{"code":"a1","appid":"wx1234567890abcdef","path":"p"}"#,
                "line 3: field `code`: same code as line 1",
            ),
            (r#"{"code":"a2", "#, "line 3: not a valid table object"),
            (
                r#"{"code":"a2","appid":"wx1234567890abcdef","path":"p"} x"#,
                "line 3: not a valid table object",
            ),
        ];
        for (bad, want) in cases {
            let file = format!("{good}\n\n{bad}\n{good}");
            let err = load_str(&file).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn duplicate_rule_names_both_lines() {
        let file = r#"{"prefix":"https://a.com/x","appid":"wx1234567890abcdef","path":"p"}
{"prefix":"HTTPS://A.COM:443/x","appid":"wx1234567890abcdef","path":"q"}"#;
        let err = load_str(file).unwrap_err().to_string();
        assert!(
            err.starts_with("line 2: field `prefix`: same prefix as line 1"),
            "{err}"
        );
    }

    #[test]
    fn long_lines_are_refused_without_being_held() {
        let long = format!(
            "{}\n{{\"code\":\"a\",\"appid\":\"wx1234567890abcdef\",\"path\":\"p\"}}\n",
            "x".repeat(MAX_LINE + 1)
        );
        let mut reader = Reader::new(std::io::BufReader::with_capacity(4096, long.as_bytes()));
        let first = reader.next_item().unwrap().unwrap().unwrap_err();
        assert_eq!((first.line, first.problem), (1, Problem::TooLong));
        assert!(reader.buf.capacity() <= MAX_LINE + 8192);
        let (line, _) = reader.next_item().unwrap().unwrap().unwrap();
        assert_eq!(line, 2);
        assert!(reader.next_item().unwrap().is_none());
    }

    #[test]
    fn code_lines_without_a_code_ask_for_one() {
        let item = parse_line(r#"{"appid":"wx1234567890abcdef","path":"p","tags":["spring24"]}"#).unwrap();
        assert!(matches!(item, Item::Generate(_)));
        let bad = parse_line(r#"{"appid":"wx12","path":"p"}"#).unwrap_err();
        assert_eq!(bad.field(), Some("appid"));
    }

    #[test]
    fn capped_reads_split_lines_exactly() {
        let mut input = std::io::BufReader::with_capacity(3, "ab\ncdefgh\n\nij".as_bytes());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(complete) = read_line_capped(&mut input, &mut buf, 4).unwrap() {
            got.push((String::from_utf8(buf.clone()).unwrap(), complete));
        }
        let want = [("ab", true), ("", false), ("", true), ("ij", true)];
        assert_eq!(got, want.map(|(s, c)| (s.to_string(), c)));
    }
}
