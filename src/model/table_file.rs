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

use crate::model::domain::{Entry, EntryKey, FieldError, Line};
use crate::model::table::{Table, TableBuilder};
use std::collections::HashMap;
use std::io::BufRead;

/// Longest accepted line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// The table that ships in `examples/table.ndjson`, embedded so that
/// `cargo run --release` serves something from any directory.
pub const EXAMPLE_TABLE: &str = include_str!("../../examples/table.ndjson");

/// One valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Entry(Entry),
    /// A code line without `code`: valid otherwise; the server picks the code.
    Generate(Line),
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a valid table object: {0}")]
    Json(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("the line is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("the line is not valid UTF-8")]
    NotUtf8,
}

impl Problem {
    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Problem::Field(e) => Some(e.field),
            _ => None,
        }
    }

    /// The message without the field name (the API reports the field apart).
    pub fn message(&self) -> String {
        match self {
            Problem::Field(e) => e.message.clone(),
            other => other.to_string(),
        }
    }
}

/// A bad line: its 1-based number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    pub line: usize,
    pub problem: Problem,
}

/// Why a table file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Line(#[from] LineError),
    #[error("reading the table file: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses and validates one line.
pub fn parse_line(text: &str) -> Result<Item, Problem> {
    let mut de = serde_json::Deserializer::from_str(text);
    let line: Line = serde_path_to_error::deserialize(&mut de).map_err(json_problem)?;
    de.end().map_err(|e| Problem::Json(json_message(&e)))?;
    if line.wants_generated_code() {
        // Check every other field with a stand-in code.
        let mut probe = line.clone();
        probe.code = Some("generated".into());
        probe.validate()?;
        return Ok(Item::Generate(line));
    }
    Ok(Item::Entry(line.validate()?))
}

/// A serde error as a problem: a wrongly typed field is named as the
/// field; syntax errors say where.
fn json_problem(error: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = json_message(&inner);
    let field = match path.split(['.', '[']).next() {
        Some(name) if !name.is_empty() && name != "?" => known_field(name),
        _ => None,
    };
    match field {
        Some(field) => Problem::Field(FieldError::new(field, message)),
        None => Problem::Json(message),
    }
}

/// The `'static` name of a field of [`Line`], for error reports.
pub fn known_field(name: &str) -> Option<&'static str> {
    const FIELDS: &[&str] = &[
        "code",
        "prefix",
        "host",
        "file",
        "appid",
        "path",
        "query",
        "env_version",
        "fallback_url",
        "valid_from",
        "valid_until",
        "disabled",
        "tags",
        "unmatched",
        "body",
    ];
    FIELDS.iter().copied().find(|f| *f == name)
}

/// serde_json's message without its own "at line 1 column N" when the line
/// number is ours to give; the column is still useful.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) if e.column() > 0 => format!("{} (column {})", &text[..at], e.column()),
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Reads a table file line by line, validating each line and refusing a
/// key seen on an earlier line.
pub struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    line: usize,
    seen: Seen,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: Vec::with_capacity(1024),
            line: 0,
            seen: Seen::default(),
        }
    }

    /// Lines read so far.
    pub fn lines(&self) -> usize {
        self.line
    }

    /// The next non-blank line: `Ok(Some(Ok(..)))` valid, `Ok(Some(Err(..)))`
    /// a bad line (reading may go on), `Ok(None)` at the end.
    pub fn next_item(&mut self) -> std::io::Result<Option<Result<(usize, Item), LineError>>> {
        loop {
            let Some(complete) = read_line_capped(&mut self.inner, &mut self.buf, MAX_LINE)? else {
                return Ok(None);
            };
            self.line += 1;
            let line = self.line;
            let bad = |problem| Ok(Some(Err(LineError { line, problem })));
            if !complete {
                return bad(Problem::TooLong);
            }
            let raw = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
            let Ok(text) = std::str::from_utf8(raw) else {
                return bad(Problem::NotUtf8);
            };
            if text.trim().is_empty() {
                continue;
            }
            let item = match parse_line(text) {
                Ok(item) => item,
                Err(problem) => return bad(problem),
            };
            if let Item::Entry(entry) = &item {
                let key = entry.key();
                if let Some(first) = self.seen.insert(&key, line) {
                    return bad(duplicate(&key, first));
                }
            }
            return Ok(Some(Ok((line, item))));
        }
    }
}

/// The one message for a key that appears twice in an import.
pub fn duplicate(key: &EntryKey, first: usize) -> Problem {
    let (field, what) = match key {
        EntryKey::Code(_) => ("code", "same code as line {first}".to_string()),
        EntryKey::Rule(_) => (
            "prefix",
            "same prefix as line {first} (after normalizing scheme, host, port and escapes)".to_string(),
        ),
        EntryKey::Host(_) => ("host", "same host as line {first}".to_string()),
        EntryKey::File(_) => ("file", "same host and file as line {first}".to_string()),
    };
    Problem::Field(FieldError::new(field, what.replace("{first}", &first.to_string())))
}

/// Keys seen so far, by a 128-bit hash: a million keys take ~25 MB rather
/// than the keys themselves, and a false "duplicate" would need a 128-bit
/// collision.
#[derive(Default)]
struct Seen {
    first_line: HashMap<u128, usize, ahash::RandomState>,
    hashers: (ahash::RandomState, ahash::RandomState),
}

impl Seen {
    fn insert(&mut self, key: &EntryKey, line: usize) -> Option<usize> {
        let hash = (u128::from(self.hashers.0.hash_one(key)) << 64) | u128::from(self.hashers.1.hash_one(key));
        match self.first_line.entry(hash) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

/// Reads up to and without the next `\n` into `buf` (cleared first),
/// keeping at most `cap` bytes: `Some(true)` a whole line, `Some(false)` a
/// line over `cap` (the rest of it is skipped), `None` at the end.
pub fn read_line_capped(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut over = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(!over));
        }
        any = true;
        let (piece, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(end) => (&chunk[..end], Some(end + 1)),
            None => (chunk, None),
        };
        if !over {
            if buf.len() + piece.len() > cap {
                over = true;
                buf.clear();
            } else {
                buf.extend_from_slice(piece);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(!over));
        }
    }
}

/// Reads a whole table file into a [`Table`] (no store involved): `qrlaunch
/// check`. Stops at the first bad line; host and file lines are checked
/// and counted but are not part of the scan table.
pub fn load(reader: impl BufRead) -> Result<Loaded, ReadError> {
    let mut reader = Reader::new(reader);
    let mut builder = TableBuilder::new();
    let mut loaded = Loaded::default();
    while let Some(item) = reader.next_item()? {
        let (_, item) = item?;
        match item {
            Item::Entry(entry) => {
                builder.insert(&entry);
                match entry {
                    Entry::Host(_) => loaded.hosts += 1,
                    Entry::File(_) => loaded.files += 1,
                    Entry::Code(_) | Entry::Rule(_) => {}
                }
            }
            Item::Generate(_) => loaded.generated += 1,
        }
    }
    loaded.table = builder.build();
    Ok(loaded)
}

/// What [`load`] read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub table: Table,
    pub hosts: usize,
    pub files: usize,
    /// Code lines without `code`, which an import would give generated codes.
    pub generated: usize,
}

/// Appends `entry` as one line, with its `\n`.
pub fn write_line(out: &mut Vec<u8>, entry: &Entry) {
    // Serializing plain strings and bools into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &Line::from(entry));
    out.push(b'\n');
}

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
