use super::{excerpt, FieldError};
use crate::model::percent::encoded_len;
use std::fmt;
use std::str::FromStr;

/// The query a mini program page receives, `k=v&k2=v2`, stored as the
/// operator wrote it (not encoded). It is URL-encoded exactly once when it is
/// put into the WeChat scheme URL, where it may take at most 512 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Query(Box<str>);

impl Query {
    /// WeChat's limit on the encoded `query` parameter of the URL scheme.
    pub const MAX_ENCODED_CHARS: usize = 512;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Query {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: String| Err(FieldError::new("query", format!("{rule}, got {}", excerpt(s))));
        if s.starts_with('?') {
            return fail("must not start with `?` (write `id=42&from=poster`)".into());
        }
        if s.chars().any(char::is_control) {
            return fail("must not contain control characters".into());
        }
        if !s.is_empty() {
            if let Some(pair) = s.split('&').find(|pair| pair.is_empty() || pair.starts_with('=')) {
                let what = if pair.is_empty() {
                    "an empty pair (`&&` or a trailing `&`)"
                } else {
                    "a pair without a key"
                };
                return fail(format!("must be `key=value` pairs joined by `&`, found {what}"));
            }
        }
        let encoded = encoded_len(s);
        if encoded > Self::MAX_ENCODED_CHARS {
            return fail(format!(
                "must be at most {} characters once URL-encoded, is {encoded}",
                Self::MAX_ENCODED_CHARS
            ));
        }
        Ok(Query(s.into()))
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_pairs_and_empty() {
        for ok in [
            "",
            "id=42",
            "id=42&from=poster",
            "flag",
            "u=https%3A%2F%2Fa.b%2F",
            "名=值",
        ] {
            assert_eq!(ok.parse::<Query>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn limit_counts_the_encoded_form() {
        // 170 Chinese characters are 510 UTF-8 bytes, 1530 characters encoded.
        let wide = "a=".to_string() + &"值".repeat(170);
        assert!(wide.parse::<Query>().unwrap_err().message.contains("512"));
        // `=` encodes to `%3D`: 4 + 508 = 512.
        let exact = "a=".to_string() + &"b".repeat(508);
        assert!(exact.parse::<Query>().is_ok());
        let over = "a=".to_string() + &"b".repeat(509);
        assert!(over.parse::<Query>().is_err());
    }

    #[test]
    fn rejects_malformed_pairs() {
        for bad in ["?id=1", "a=1&&b=2", "a=1&", "=1", "a=\n"] {
            assert_eq!(bad.parse::<Query>().unwrap_err().field, "query", "{bad}");
        }
    }
}
