use super::{excerpt, FieldError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// When an entry answers: an optional validity window (UNIX seconds, from
/// inclusive, until exclusive) and an operator's off switch. An entry outside
/// its window or disabled answers `410 Gone`, not `404`, so a scan of an old
/// poster says "this campaign is over" rather than "never existed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Schedule {
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub disabled: bool,
}

/// Whether an entry answers at a given moment, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Live,
    Disabled,
    NotYetValid,
    Expired,
}

impl Schedule {
    /// Builds a schedule from the table file's optional RFC 3339 strings.
    pub fn parse(valid_from: Option<&str>, valid_until: Option<&str>, disabled: bool) -> Result<Schedule, FieldError> {
        let valid_from = valid_from.map(|s| parse_rfc3339("valid_from", s)).transpose()?;
        let valid_until = valid_until.map(|s| parse_rfc3339("valid_until", s)).transpose()?;
        if let (Some(from), Some(until)) = (valid_from, valid_until) {
            if until <= from {
                return Err(FieldError::new("valid_until", "must be later than `valid_from`"));
            }
        }
        Ok(Schedule {
            valid_from,
            valid_until,
            disabled,
        })
    }

    pub fn availability(&self, now_unix: i64) -> Availability {
        if self.disabled {
            Availability::Disabled
        } else if self.valid_from.is_some_and(|from| now_unix < from) {
            Availability::NotYetValid
        } else if self.valid_until.is_some_and(|until| now_unix >= until) {
            Availability::Expired
        } else {
            Availability::Live
        }
    }

    /// The window bounds back in RFC 3339 (UTC), as the table file writes them.
    pub fn valid_from_rfc3339(&self) -> Option<String> {
        self.valid_from.map(format_rfc3339)
    }

    pub fn valid_until_rfc3339(&self) -> Option<String> {
        self.valid_until.map(format_rfc3339)
    }
}

fn parse_rfc3339(field: &'static str, s: &str) -> Result<i64, FieldError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|e| {
            FieldError::new(
                field,
                format!(
                    "must be an RFC 3339 time like `2026-01-31T23:59:59Z` ({e}), got {}",
                    excerpt(s)
                ),
            )
        })
}

fn format_rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_from_inclusive_until_exclusive() {
        let s = Schedule::parse(Some("2026-01-01T00:00:00Z"), Some("2026-02-01T00:00:00+08:00"), false).unwrap();
        let from = s.valid_from.unwrap();
        let until = s.valid_until.unwrap();
        assert_eq!(from, 1_767_225_600);
        assert_eq!(until, 1_769_875_200);
        assert_eq!(s.availability(from - 1), Availability::NotYetValid);
        assert_eq!(s.availability(from), Availability::Live);
        assert_eq!(s.availability(until - 1), Availability::Live);
        assert_eq!(s.availability(until), Availability::Expired);
        assert_eq!(s.valid_from_rfc3339().as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn disabled_wins_and_errors_name_the_field() {
        let s = Schedule::parse(None, None, true).unwrap();
        assert_eq!(s.availability(0), Availability::Disabled);
        assert_eq!(
            Schedule::parse(Some("yesterday"), None, false).unwrap_err().field,
            "valid_from"
        );
        assert_eq!(
            Schedule::parse(None, Some("2026-13-01T00:00:00Z"), false)
                .unwrap_err()
                .field,
            "valid_until"
        );
        let backwards = Schedule::parse(Some("2026-02-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"), false);
        assert_eq!(backwards.unwrap_err().field, "valid_until");
    }
}
