use super::{excerpt, FieldError};
use std::fmt;
use std::str::FromStr;

/// A mini program's AppID: `wx` followed by 16 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(Box<str>);

impl AppId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AppId {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() == 18 && s.starts_with("wx") && s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit);
        if ok {
            Ok(AppId(s.into()))
        } else {
            Err(FieldError::new(
                "appid",
                format!("must be `wx` followed by 16 hexadecimal digits, got {}", excerpt(s)),
            ))
        }
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_wx_and_sixteen_hex_digits() {
        for ok in ["wx1234567890abcdef", "wxABCDEF0123456789"] {
            assert_eq!(ok.parse::<AppId>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "wx",
            "wx1234567890abcde",
            "wx1234567890abcdef0",
            "wa1234567890abcdef",
            "wx1234567890abcdeg",
            "WX1234567890abcdef",
            "wx１234567890abcde",
        ] {
            let err = bad.parse::<AppId>().unwrap_err();
            assert_eq!(err.field, "appid", "{bad}");
        }
    }
}
