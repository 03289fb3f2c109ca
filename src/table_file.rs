//! The NDJSON table file: one JSON object a line, a launch code or a rule.
//!
//! ```text
//! {"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42&from=poster","env_version":"release","fallback_url":"https://example.com/promo"}
//! {"prefix":"https://www.example.com/app/download?channel=","appid":"wx1234567890abcdef","path":"pages/download/index"}
//! ```
//!
//! Optional on both: `query` (default empty), `env_version` (default
//! `release`), `fallback_url`, `valid_from` / `valid_until` (RFC 3339) and
//! `disabled`. Unknown fields are errors, so a typo such as `"app_id"` is
//! caught instead of silently ignored. Blank lines are skipped. The first bad
//! line stops the load with its line number and the field's error.

use crate::domain::{EntryPoint, FieldError, LaunchCode, Rule, Schedule};
use crate::table::{BuildError, Table, TableBuilder};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::BufRead;

/// One line of the table file, before validation.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TableLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub appid: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default = "release")]
    pub env_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

fn release() -> String {
    "release".into()
}

/// A validated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableEntry {
    Code(LaunchCode),
    Rule(Rule),
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a valid table object: {0}")]
    Json(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Duplicate(#[from] BuildError),
}

/// A table file that could not be loaded, with the 1-based line at fault.
#[derive(Debug, thiserror::Error)]
pub enum TableFileError {
    #[error("line {line}: {error}")]
    Line { line: usize, error: LineError },
    #[error("reading the table file: {0}")]
    Io(#[from] std::io::Error),
}

impl TableLine {
    /// Validates every field into a domain value.
    pub fn validate(&self) -> Result<TableEntry, FieldError> {
        let entry = EntryPoint {
            appid: self.appid.parse()?,
            path: self.path.parse()?,
            query: self.query.parse()?,
            env_version: self.env_version.parse()?,
            fallback_url: self.fallback_url.as_deref().map(str::parse).transpose()?,
        };
        let schedule = Schedule::parse(self.valid_from.as_deref(), self.valid_until.as_deref(), self.disabled)?;
        match (&self.code, &self.prefix) {
            (Some(code), None) => Ok(TableEntry::Code(LaunchCode {
                code: code.parse()?,
                entry,
                schedule,
            })),
            (None, Some(prefix)) => Ok(TableEntry::Rule(Rule {
                prefix: prefix.parse()?,
                entry,
                schedule,
            })),
            (Some(_), Some(_)) => Err(FieldError::new(
                "prefix",
                "a line has either `code` or `prefix`, not both",
            )),
            (None, None) => Err(FieldError::new(
                "code",
                "a line needs `code` (a launch code) or `prefix` (a legacy URL rule)",
            )),
        }
    }
}

/// Parses and validates one line of the file.
pub fn parse_line(line: &str) -> Result<TableEntry, LineError> {
    let raw: TableLine = serde_json::from_str(line).map_err(|e| LineError::Json(json_message(&e)))?;
    Ok(raw.validate()?)
}

/// serde_json's message without its own "at line 1 column N" when the line
/// number is ours to give; the column is still useful.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &text[..at], e.column()),
        None => text,
    }
}

/// The validated entries of a table file with their 1-based line numbers;
/// blank lines are skipped. Stops at the first bad line.
pub fn entries(reader: impl BufRead) -> impl Iterator<Item = Result<(usize, TableEntry), TableFileError>> {
    reader.lines().enumerate().filter_map(|(index, line)| {
        let number = index + 1;
        match line {
            Err(e) => Some(Err(TableFileError::Io(e))),
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(
                parse_line(&line)
                    .map(|e| (number, e))
                    .map_err(|error| TableFileError::Line { line: number, error }),
            ),
        }
    })
}

/// Reads a whole table file into a [`Table`].
pub fn load(reader: impl BufRead) -> Result<Table, TableFileError> {
    let mut builder = TableBuilder::new();
    let mut rule_lines: HashMap<Box<str>, usize> = HashMap::new();
    for item in entries(reader) {
        let (number, entry) = item?;
        let at = |error: LineError| TableFileError::Line { line: number, error };
        match entry {
            TableEntry::Code(code) => builder.insert_code(&code).map_err(|e| at(e.into()))?,
            TableEntry::Rule(rule) => {
                if let Some(first) = rule_lines.insert(rule.prefix.key().into(), number) {
                    let message =
                        format!("same prefix as line {first} (after normalizing scheme, host, port and escapes)");
                    return Err(at(FieldError::new("prefix", message).into()));
                }
                builder.insert_rule(&rule).map_err(|e| at(e.into()))?;
            }
        }
    }
    builder.build().map_err(|error| TableFileError::Line {
        line: 0,
        error: error.into(),
    })
}

/// The table that ships in `examples/table.ndjson`, embedded so that
/// `cargo run --release` serves something from any directory.
pub const EXAMPLE_TABLE: &str = include_str!("../examples/table.ndjson");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_loads() {
        let table = load(EXAMPLE_TABLE.as_bytes()).unwrap();
        assert!(table.code("spring24").is_some());
        assert!(table.rule_count() > 0);
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
            (r#"{"appid":"wx1234567890abcdef","path":"p"}"#, "needs `code`"),
            (
                r#"{"code":"a1","appid":"wx1234567890abcdef","path":"p"}"#,
                "appears twice",
            ),
            (r#"{"code":"a2", "#, "line 3: not a valid table object"),
        ];
        for (bad, want) in cases {
            let file = format!("{good}\n\n{bad}\n{good}");
            let err = load(file.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn duplicate_rule_names_both_lines() {
        let file = r#"{"prefix":"https://a.com/x","appid":"wx1234567890abcdef","path":"p"}
{"prefix":"HTTPS://A.COM:443/x","appid":"wx1234567890abcdef","path":"q"}"#;
        let err = load(file.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("line 2: field `prefix`: same prefix as line 1"),
            "{err}"
        );
    }

    #[test]
    fn a_line_round_trips_through_serde() {
        let line = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42&from=poster","env_version":"trial","fallback_url":"https://example.com/promo","valid_until":"2027-01-01T00:00:00Z","disabled":true}"#;
        let raw: TableLine = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&raw).unwrap(), line);
    }
}
