use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// A host that qrlaunch answers for, as a request names it: lower-case,
/// with a port only when it is not the scheme's default
/// (`app.shop-example.com`, `127.0.0.1:8080`, `[::1]:8080`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(Box<str>);

impl HostName {
    pub const MAX_CHARS: usize = 255;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `b` may appear in a host (before lower-casing).
    pub fn is_host_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-._:[]".contains(&b)
    }
}

impl FromStr for HostName {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: &str| Err(FieldError::new("host", format!("{rule}, got {}", excerpt(s))));
        if s.is_empty() || s.len() > Self::MAX_CHARS {
            return fail("must be a host name of 1-255 characters, like `app.shop-example.com`");
        }
        if !s.bytes().all(Self::is_host_byte) {
            return fail(
                "must be a host name (letters, digits, `-` and `.`, an optional `:port`), without scheme or path",
            );
        }
        let (name, port) = if s.starts_with('[') {
            match s.find(']') {
                Some(end) => (&s[..=end], s[end + 1..].strip_prefix(':')),
                None => return fail("has an unclosed `[`"),
            }
        } else {
            match s.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (s, None),
            }
        };
        let rest_ok = s.starts_with('[') && s.len() == name.len() + port.map_or(0, |p| p.len() + 1);
        if s.starts_with('[') && !rest_ok {
            return fail("must be `[address]` or `[address]:port`");
        }
        if let Some(port) = port {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return fail("has a port that is not a number from 1 to 65535");
            }
        }
        if name.is_empty()
            || name.starts_with('.')
            || name.contains("..")
            || (!name.starts_with('[') && name.contains(['[', ']']))
        {
            return fail("must name a host");
        }
        Ok(HostName(s.to_ascii_lowercase().into()))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a URL on a taken-over host goes when no rule matches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Unmatched {
    /// `404`, the default.
    #[default]
    NotFound,
    /// `302` to the same path and query on this origin
    /// (`https://origin.shop-example.com`), so the rest of the old site keeps working.
    PassThrough(Origin),
}

/// A pass-through origin: an `http`/`https` URL without query or fragment.
/// Its path, if any, is put before the request's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(Box<str>);

impl Origin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Origin {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: &str| Err(FieldError::new("unmatched", format!("{rule}, got {}", excerpt(s))));
        if s.len() > 2048 {
            return fail("must be at most 2048 characters");
        }
        let Ok(url) = url::Url::parse(s) else {
            return fail("must be an absolute http or https URL such as `https://origin.shop-example.com`");
        };
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return fail("must be an absolute http or https URL such as `https://origin.shop-example.com`");
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return fail("must not have a query, a fragment or user info");
        }
        let text = url.as_str().trim_end_matches('/');
        Ok(Origin(text.into()))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an operator set for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    pub host: HostName,
    pub unmatched: Unmatched,
}

/// A small text file served as-is on one host at one exact path: the
/// domain verification file WeChat asks for when a QR rule is registered
/// (`/MP_verify_abcdef0123.txt`, or under the rule's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationFile {
    pub host: HostName,
    pub path: FilePath,
    pub body: FileBody,
}

/// The path of a verification file: `/`, directories, then a name of
/// 1-64 characters of `0-9 A-Z a-z - _` ending in `.txt`; or an ACME
/// HTTP-01 challenge, `/.well-known/acme-challenge/` and a token of 1-128
/// characters of `0-9 A-Z a-z - _` (RFC 8555, section 8.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilePath(Box<str>);

/// Where ACME HTTP-01 challenge files live (RFC 8555, section 8.3).
pub const ACME_CHALLENGE_DIR: &str = "/.well-known/acme-challenge/";

impl FilePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path of the HTTP-01 challenge file for `token` (`None` when the
    /// token is not one a path may hold).
    pub fn acme_challenge(token: &str) -> Option<FilePath> {
        format!("{ACME_CHALLENGE_DIR}{token}").parse().ok()
    }
}

impl FromStr for FilePath {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || {
            Err(FieldError::new(
                "file",
                format!(
                    "must be a path like `/MP_verify_abcdef0123.txt` or `/app/abcdef0123.txt` (directories of 0-9 A-Z a-z - _ ., a name ending in `.txt`), got {}",
                    excerpt(s)
                ),
            ))
        };
        if let Some(token) = s.strip_prefix(ACME_CHALLENGE_DIR) {
            let ok = (1..=128).contains(&token.len())
                && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            return if ok {
                Ok(FilePath(s.into()))
            } else {
                Err(FieldError::new(
                    "file",
                    format!(
                        "an ACME challenge is `{ACME_CHALLENGE_DIR}` and a token of 1-128 characters of 0-9 A-Z a-z - _, got {}",
                        excerpt(s)
                    ),
                ))
            };
        }
        let Some(rest) = s.strip_prefix('/') else { return fail() };
        if s.len() > 512 {
            return fail();
        }
        let mut segments: Vec<&str> = rest.split('/').collect();
        let Some(name) = segments.pop() else { return fail() };
        let dirs_ok = segments.iter().all(|d| {
            !d.is_empty()
                && *d != "."
                && *d != ".."
                && d.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        let stem = name.strip_suffix(".txt").unwrap_or("");
        let name_ok =
            (1..=64).contains(&stem.len()) && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !dirs_ok || !name_ok {
            return fail();
        }
        Ok(FilePath(s.into()))
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text of a verification file: at most 1 KiB of UTF-8 without NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileBody(Box<str>);

impl FileBody {
    pub const MAX_BYTES: usize = 1024;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FileBody {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > Self::MAX_BYTES || s.contains('\0') {
            return Err(FieldError::new(
                "body",
                format!(
                    "must be at most {} bytes of text, got {} bytes",
                    Self::MAX_BYTES,
                    s.len()
                ),
            ));
        }
        Ok(FileBody(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for (input, want) in [
            ("App.Shop-Example.com", "app.shop-example.com"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::1]", "[::1]"),
        ] {
            assert_eq!(input.parse::<HostName>().unwrap().as_str(), want);
        }
        for bad in [
            "",
            "https://a.com",
            "a.com/x",
            "a.com:0",
            "a.com:99999",
            "a b",
            ".a.com",
            "a.com:x",
        ] {
            assert!(bad.parse::<HostName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_and_files() {
        assert_eq!(
            "https://Origin.example.com/".parse::<Origin>().unwrap().as_str(),
            "https://origin.example.com"
        );
        assert_eq!(
            "https://o.example.com/old/".parse::<Origin>().unwrap().as_str(),
            "https://o.example.com/old"
        );
        for bad in [
            "ftp://a.com",
            "https://a.com/?x=1",
            "origin.example.com",
            "javascript:alert(1)",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
        for ok in [
            "/MP_verify_abc.txt",
            "/app/download/abcdef0123.txt",
            "/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
        ] {
            assert!(ok.parse::<FilePath>().is_ok(), "{ok}");
        }
        assert_eq!(
            FilePath::acme_challenge("a-b_C9").unwrap().as_str(),
            "/.well-known/acme-challenge/a-b_C9"
        );
        assert!(FilePath::acme_challenge("a/b").is_none());
        for bad in [
            "MP.txt",
            "/a.html",
            "/../a.txt",
            "//a.txt",
            "/a/.txt",
            "/a b.txt",
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/a/b",
            "/.well-known/acme-challenge/a.b",
            "/.well-known/acme-challenge/../x.txt",
        ] {
            assert!(bad.parse::<FilePath>().is_err(), "{bad}");
        }
        assert!("x".repeat(1025).parse::<FileBody>().is_err());
    }
}
