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

    /// One pass over the bytes: every stored code's query is checked again
    /// whenever a table is built from the store (a million at a node's
    /// start), so this is kept to a byte loop.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |rule: String| Err(FieldError::new("query", format!("{rule}, got {}", excerpt(s))));
        if s.starts_with('?') {
            return fail("must not start with `?` (write `id=42&from=poster`)".into());
        }
        let bytes = s.as_bytes();
        let mut control = false;
        // The first pair that is empty (`Some(true)`) or has no key.
        let mut bad_pair: Option<bool> = None;
        let mut pair_start = true;
        for (i, &b) in bytes.iter().enumerate() {
            // Unicode's control characters (`char::is_control`): C0 and
            // DEL are single bytes, C1 (U+0080..U+009F) is 0xC2 0x80..0x9F.
            control |= b < 0x20 || b == 0x7f || (b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)));
            if pair_start && bad_pair.is_none() && (b == b'&' || b == b'=') {
                bad_pair = Some(b == b'&');
            }
            pair_start = b == b'&';
        }
        if pair_start && !bytes.is_empty() && bad_pair.is_none() {
            bad_pair = Some(true);
        }
        if control {
            return fail("must not contain control characters".into());
        }
        if let Some(empty) = bad_pair {
            let what = if empty {
                "an empty pair (`&&` or a trailing `&`)"
            } else {
                "a pair without a key"
            };
            return fail(format!("must be `key=value` pairs joined by `&`, found {what}"));
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

    /// The rules as first written, one after the other: the byte loop
    /// must give the same answer (and message) for every input.
    fn reference(s: &str) -> Result<(), String> {
        if s.starts_with('?') {
            return Err("?".into());
        }
        if s.chars().any(char::is_control) {
            return Err("control".into());
        }
        if !s.is_empty() {
            if let Some(pair) = s.split('&').find(|pair| pair.is_empty() || pair.starts_with('=')) {
                return Err(if pair.is_empty() { "empty pair" } else { "no key" }.into());
            }
        }
        if encoded_len(s) > Query::MAX_ENCODED_CHARS {
            return Err("long".into());
        }
        Ok(())
    }

    fn kind(error: &FieldError) -> &'static str {
        let m = &error.message;
        if m.contains("start with `?`") {
            "?"
        } else if m.contains("control") {
            "control"
        } else if m.contains("empty pair") {
            "empty pair"
        } else if m.contains("without a key") {
            "no key"
        } else {
            "long"
        }
    }

    #[test]
    fn the_byte_loop_agrees_with_the_rules_on_every_short_string() {
        let alphabet = [
            "a", "&", "=", "?", "\n", "\u{7f}", "\u{85}", "\u{a0}", "é", "%", " ", "\u{9f}",
        ];
        let mut inputs = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            inputs.extend(last.iter().cloned());
        }
        inputs.push("a=".to_string() + &"b".repeat(508));
        inputs.push("a=".to_string() + &"b".repeat(509));
        for input in &inputs {
            let got = input.parse::<Query>().map(drop).map_err(|e| kind(&e).to_string());
            assert_eq!(got, reference(input), "{input:?}");
        }
    }
}
