//! One line of the table file: parsed, validated, or what is wrong with it.

use super::MAX_LINE;
use crate::model::domain::{Entry, FieldError, Line};

/// One valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Entry(Entry),
    /// A code line without `code`: valid otherwise; the server picks the code.
    /// Boxed: a `Line` is twice an `Entry`'s size, and every line of an
    /// import is moved several times on its way to the store (parsed, read
    /// ahead, batched), while lines without a code are few.
    Generate(Box<Line>),
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

/// Parses and validates one line.
pub fn parse_line(text: &str) -> Result<Item, Problem> {
    // Plain serde_json first; only a line that fails is read again with
    // its path tracked, for the field to name (tracking every line was a
    // tenth of a large import's work).
    let line: Line = match serde_json::from_str(text) {
        Ok(line) => line,
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let line: Line = serde_path_to_error::deserialize(&mut de).map_err(json_problem)?;
            de.end().map_err(|e| Problem::Json(json_message(&e)))?;
            line
        }
    };
    if line.wants_generated_code() {
        // Check every other field with a stand-in code.
        let mut probe = line.clone();
        probe.code = Some("generated".into());
        probe.validate()?;
        return Ok(Item::Generate(Box::new(line)));
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

/// Every field of [`Line`], as the table file names them.
pub const FIELDS: &[&str] = &[
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
    "count_by",
    "unmatched",
    "body",
];

/// The `'static` name of a field of [`Line`], for error reports.
pub fn known_field(name: &str) -> Option<&'static str> {
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
