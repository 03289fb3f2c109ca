//! Strict decoding of a query string's values.
//!
//! `form_urlencoded` replaces bad UTF-8 with U+FFFD and keeps broken `%`
//! escapes; a resolver must not look up something other than what was asked,
//! so here both are errors that name the parameter.

use percent_encoding::percent_decode;

/// Why a parameter could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    BadEscape,
    BadUtf8,
}

impl ParamError {
    pub fn describe(&self) -> &'static str {
        match self {
            ParamError::BadEscape => "has an invalid percent-encoding (`%` must be followed by two hex digits)",
            ParamError::BadUtf8 => "is not valid UTF-8 once percent-decoded",
        }
    }
}

/// The decoded value of the first parameter called `name` (`+` is a space),
/// `None` if there is none.
pub fn get(query: &str, name: &str) -> Option<Result<String, ParamError>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode(value))
    })
}

/// Decodes one path segment or parameter value strictly.
pub fn decode_strict(raw: &[u8]) -> Result<std::borrow::Cow<'_, str>, ParamError> {
    if !valid_escapes(raw) {
        return Err(ParamError::BadEscape);
    }
    percent_decode(raw).decode_utf8().map_err(|_| ParamError::BadUtf8)
}

fn decode(value: &str) -> Result<String, ParamError> {
    let spaced = value.replace('+', " ");
    decode_strict(spaced.as_bytes()).map(|v| v.into_owned())
}

/// Whether every `%` starts a `%XX` escape.
pub fn valid_escapes(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            match raw.get(i + 1..i + 3) {
                Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_strictly() {
        assert_eq!(get("code=a%21b&x=1", "code"), Some(Ok("a!b".into())));
        assert_eq!(
            get("x=1&url=https%3A%2F%2Fa.b%2F%3Fc%3D1+2", "url"),
            Some(Ok("https://a.b/?c=1 2".into()))
        );
        assert_eq!(get("code", "code"), Some(Ok(String::new())));
        assert_eq!(get("x=1", "code"), None);
        assert_eq!(get("code=%zz", "code"), Some(Err(ParamError::BadEscape)));
        assert_eq!(get("code=%4", "code"), Some(Err(ParamError::BadEscape)));
        assert_eq!(get("code=%ff", "code"), Some(Err(ParamError::BadUtf8)));
        assert_eq!(get("code=%E4%B8%AD", "code"), Some(Ok("中".into())));
    }
}
