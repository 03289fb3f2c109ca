use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// A mini program page path such as `pages/promo/index`: case-sensitive,
/// relative (no leading `/`), and without a query, which goes in [`super::Query`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PagePath(Box<str>);

impl PagePath {
    pub const MAX_CHARS: usize = 256;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PagePath {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: &str| Err(FieldError::new("path", format!("{rule}, got {}", excerpt(s))));
        if s.is_empty() {
            return fail("must not be empty");
        }
        if s.chars().count() > Self::MAX_CHARS {
            return fail("must be at most 256 characters");
        }
        if s.starts_with('/') {
            return fail("must not start with `/` (write `pages/index/index`)");
        }
        if s.contains('?') {
            return fail("must not contain `?`: put the query in the `query` field");
        }
        if s.contains('#') {
            return fail("must not contain `#`");
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return fail("must not contain spaces or control characters");
        }
        Ok(PagePath(s.into()))
    }
}

impl fmt::Display for PagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_page_paths() {
        for ok in ["pages/index/index", "p", "分包/页面/index", &"a".repeat(256)] {
            assert_eq!(ok.parse::<PagePath>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_with_the_rule_broken() {
        let cases = [
            ("", "empty"),
            ("/pages/index", "start with `/`"),
            ("pages/index?id=1", "`?`"),
            ("pages/a#b", "`#`"),
            ("pages/a b", "spaces"),
            (&"a".repeat(257), "256"),
        ];
        for (bad, rule) in cases {
            let err = bad.parse::<PagePath>().unwrap_err();
            assert_eq!(err.field, "path");
            assert!(err.message.contains(rule), "{bad}: {}", err.message);
        }
    }
}
