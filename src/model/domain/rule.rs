use super::{excerpt, Code, EntryPoint, FieldError, Schedule, Tags};
use crate::model::url_key;
use std::fmt;
use std::str::FromStr;

/// A launch code and what it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchCode {
    pub code: Code,
    pub entry: EntryPoint,
    pub schedule: Schedule,
    /// Labels for campaigns; kept in the store, not in the scan table.
    pub tags: Tags,
}

/// A legacy QR URL rule: every scanned URL that this prefix matches (by
/// WeChat's "scan ordinary link QR code" semantics) opens `entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub prefix: RulePrefix,
    pub entry: EntryPoint,
    pub schedule: Schedule,
    /// Labels for campaigns; kept in the store, not in the scan table.
    pub tags: Tags,
    /// The query parameter whose values are counted apart (`channel`:
    /// one count per poster of `…/download?channel=poster1`).
    pub count_by: Option<CountBy>,
}

/// The name of a query parameter a rule counts by: 1-64 characters of
/// `A-Z a-z 0-9 _ - .`, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountBy(Box<str>);

impl CountBy {
    pub const MAX_CHARS: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CountBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CountBy {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<CountBy, FieldError> {
        let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if s.is_empty() || s.len() > CountBy::MAX_CHARS || !s.bytes().all(ok) {
            return Err(FieldError::new(
                "count_by",
                format!(
                    "`count_by` is the name of a query parameter: 1-{} characters of A-Z a-z 0-9 _ - . (got {})",
                    CountBy::MAX_CHARS,
                    excerpt(s)
                ),
            ));
        }
        Ok(CountBy(s.into()))
    }
}

/// The URL prefix of a rule, e.g. `https://www.example.com/app/download?channel=`.
///
/// Keeps the text as the operator wrote it (for display and export) and the
/// normalized key the matcher compares (see [`crate::model::url_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RulePrefix {
    original: Box<str>,
    key: Box<str>,
}

impl RulePrefix {
    pub const MAX_CHARS: usize = 4096;

    /// The prefix as written in the table.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The normalized key: lower-case scheme and host, no default port,
    /// path and query with canonical percent-encoding.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl FromStr for RulePrefix {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "prefix",
                format!("must be at most {} characters, got {}", Self::MAX_CHARS, excerpt(s)),
            ));
        }
        if s.contains('#') {
            return Err(FieldError::new(
                "prefix",
                format!(
                    "must not contain a fragment (`#`): browsers never send it, got {}",
                    excerpt(s)
                ),
            ));
        }
        let key = url_key::normalize_absolute(s)
            .map_err(|rule| FieldError::new("prefix", format!("{rule}, got {}", excerpt(s))))?;
        Ok(RulePrefix {
            original: s.into(),
            key: key.into(),
        })
    }
}

impl fmt::Display for RulePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}
