use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// Where people without WeChat (or on a desktop) are sent: an absolute
/// `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FallbackUrl(Box<str>);

impl FallbackUrl {
    pub const MAX_CHARS: usize = 2048;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FallbackUrl {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: &str| Err(FieldError::new("fallback_url", format!("{rule}, got {}", excerpt(s))));
        if s.len() > Self::MAX_CHARS {
            return fail("must be at most 2048 characters");
        }
        match url::Url::parse(s) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => fail("must be an http or https URL"),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => fail("must have a host"),
            // Store the parsed form: it is what a browser would request.
            Ok(u) => Ok(FallbackUrl(String::from(u).into())),
            Err(e) => fail(&format!("must be an absolute http or https URL ({e})")),
        }
    }
}

impl fmt::Display for FallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_only() {
        assert_eq!(
            "https://example.com/promo".parse::<FallbackUrl>().unwrap().as_str(),
            "https://example.com/promo"
        );
        assert!("http://example.com".parse::<FallbackUrl>().is_ok());
        for bad in [
            "",
            "example.com",
            "javascript:alert(1)",
            "ftp://example.com/",
            "weixin://dl/business/",
            "https://",
        ] {
            assert_eq!(bad.parse::<FallbackUrl>().unwrap_err().field, "fallback_url", "{bad}");
        }
    }
}
