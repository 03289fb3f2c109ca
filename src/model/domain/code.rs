use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// A launch code: the one path segment of `https://go.example.com/{code}`.
///
/// It must also fit WeChat's `scene` field (at most 32 characters of
/// `0-9A-Za-z!#$&'()*+,/:;=?@-._~`), so a code can be handed to a mini
/// program unchanged. `/`, `?` and `#` are left out so that a code is always
/// exactly one path segment, and the names of the service's own routes are
/// reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(Box<str>);

/// Path segments the service answers itself; a code with one of these names
/// could never be scanned.
pub const RESERVED: &[&str] = &[
    "healthz",
    "readyz",
    "metrics",
    "v1",
    "admin",
    "favicon.ico",
    "robots.txt",
    ".",
    "..",
];

impl Code {
    pub const MAX_CHARS: usize = 32;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `b` may appear in a code.
    pub fn is_code_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!$&'()*+,:;=@-._~".contains(&b)
    }
}

impl FromStr for Code {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: String| Err(FieldError::new("code", format!("{rule}, got {}", excerpt(s))));
        if s.is_empty() {
            return fail("must not be empty".into());
        }
        if s.len() > Self::MAX_CHARS {
            return fail(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if let Some(c) = s.chars().find(|&c| !(c.is_ascii() && Code::is_code_byte(c as u8))) {
            return fail(format!(
                "may only contain 0-9 A-Z a-z and !$&'()*+,:;=@-._~ (found {c:?})"
            ));
        }
        if RESERVED.contains(&s) {
            return fail("is reserved for the service's own routes".into());
        }
        Ok(Code(s.into()))
    }
}

/// Length of a generated code: 62^7 ≈ 3.5e12 possibilities.
pub const GENERATED_CODE_LEN: u32 = 7;

/// A random base62 code of [`GENERATED_CODE_LEN`] characters from the
/// thread's CSPRNG: codes are neither sequential nor guessable from others.
pub fn generate_code() -> Code {
    use rand::Rng;
    let low = 62u128.pow(GENERATED_CODE_LEN - 1);
    let high = 62u128.pow(GENERATED_CODE_LEN);
    Code(base62::encode(rand::rng().random_range(low..high)).into())
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_scene_charset_without_path_delimiters() {
        for ok in ["spring24", "3xK9aB", "a", "!$&'()*+,:;=@-._~", &"Z".repeat(32)] {
            assert_eq!(ok.parse::<Code>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_with_the_rule_broken() {
        let cases = [
            ("", "empty"),
            (&"a".repeat(33) as &str, "32"),
            ("a/b", "'/'"),
            ("a?b", "'?'"),
            ("a#b", "'#'"),
            ("a b", "' '"),
            ("a%20", "'%'"),
            ("码", "'码'"),
            ("healthz", "reserved"),
            ("..", "reserved"),
        ];
        for (bad, rule) in cases {
            let err = bad.parse::<Code>().unwrap_err();
            assert_eq!(err.field, "code");
            assert!(err.message.contains(rule), "{bad}: {}", err.message);
        }
    }
}
