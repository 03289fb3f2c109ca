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
