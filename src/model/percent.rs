//! Percent-encoding, both ways, for every part of qrlaunch: strict
//! decoding of path segments and query values, and encoding as a URL
//! component (JavaScript's `encodeURIComponent`).
//!
//! `form_urlencoded` replaces bad UTF-8 with U+FFFD and keeps broken `%`
//! escapes; a resolver must not look up something other than what was asked,
//! so here both are errors that name the parameter.

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Appends `s` encoded once as a URL component.
pub fn push_encoded(out: &mut String, s: &str) {
    out.extend(utf8_percent_encode(s, COMPONENT));
}

/// `s` encoded once as a URL component.
pub fn encoded(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Length of `s` once encoded as a URL component.
pub fn encoded_len(s: &str) -> usize {
    s.bytes().map(|b| if is_unreserved(b) { 1 } else { 3 }).sum()
}

/// Appends `s` encoded twice: a value inside a query that is itself
/// encoded once more. `%` of the first pass becomes `%25` in the second.
pub fn push_encoded_twice(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(s.len());
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str("%25");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Length of `s` once encoded twice.
pub fn encoded_twice_len(s: &str) -> usize {
    s.bytes().map(|b| if is_unreserved(b) { 1 } else { 5 }).sum()
}

fn is_unreserved(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
}

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
    raw(query, name).map(decode)
}

/// Decodes one path segment or parameter value strictly.
pub fn decode_strict(raw: &[u8]) -> Result<std::borrow::Cow<'_, str>, ParamError> {
    if !valid_escapes(raw) {
        return Err(ParamError::BadEscape);
    }
    percent_decode(raw).decode_utf8().map_err(|_| ParamError::BadUtf8)
}

fn decode(value: &str) -> Result<String, ParamError> {
    if !value.contains('+') {
        return decode_strict(value.as_bytes()).map(|v| v.into_owned());
    }
    let spaced = value.replace('+', " ");
    decode_strict(spaced.as_bytes()).map(|v| v.into_owned())
}

/// The raw (not decoded) value of the first parameter called `name`, for
/// values that are plain words or numbers; `None` if there is none.
pub fn raw<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
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
    fn encoding_round_trips_through_one_and_two_decodes() {
        use percent_encoding::percent_decode_str;
        for raw in ["a=1&b=2", "x=%41 y", "名=值", "u=https://a.b/c?d=e&f=g#h", "~*'()!"] {
            let once = encoded(raw);
            assert_eq!(once.len(), encoded_len(raw));
            assert_eq!(percent_decode_str(&once).decode_utf8().unwrap(), raw);
            let mut twice = String::new();
            push_encoded_twice(&mut twice, raw);
            assert_eq!(twice.len(), encoded_twice_len(raw));
            let first = percent_decode_str(&twice).decode_utf8().unwrap().into_owned();
            assert_eq!(first, once);
            assert_eq!(percent_decode_str(&first).decode_utf8().unwrap(), raw);
        }
    }

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
