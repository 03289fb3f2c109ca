//! Validated domain types.
//!
//! Every string that comes from outside (the table file, a request, the
//! admin API) is parsed into one of these types once, at the edge. Inner code
//! takes the types and never re-checks strings. Each parser returns a
//! [`FieldError`] that names the field and the rule that was broken, so an
//! operator can fix the input without reading code.

mod app_id;
mod code;
mod entry;
mod entry_point;
mod env_version;
mod fallback_url;
mod host;
mod page_path;
mod query;
mod rule;
mod schedule;
mod tags;

pub use app_id::AppId;
pub use code::{generate_code, Code, GENERATED_CODE_LEN};
pub use entry::{Entry, EntryKey, EntryKind, FileKey, Line, Stored};
pub use entry_point::EntryPoint;
pub use env_version::EnvVersion;
pub use fallback_url::FallbackUrl;
pub use host::{FileBody, FilePath, HostName, HostSettings, Origin, Unmatched, VerificationFile, ACME_CHALLENGE_DIR};
pub use page_path::PagePath;
pub use query::Query;
pub use rule::{CountBy, LaunchCode, Rule, RulePrefix};
pub use schedule::{Availability, Schedule};
pub use tags::{Tag, Tags};

/// A value that broke a rule of its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    /// The field's name as it appears in the table file and the JSON APIs.
    pub field: &'static str,
    /// What rule was broken, written for the person who has to fix it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// Shortens a user-supplied value for an error message so a 1 MiB field does
/// not produce a 1 MiB error.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}… ({} chars)", value.chars().count())
    }
}
