//! Surrogate keys: how a cache in front finds the answers a change makes
//! stale.
//!
//! Every cacheable answer names what it was made from in `Surrogate-Key`
//! and `xkey` (the same value): the host (`h-HOST`), the code its path is
//! or could become (`c-CODE`) and [`ALL`]. After a change is applied,
//! [`keys_of`] gives the keys to purge. Keys are tokens without spaces or
//! commas, which xkey would split on; anything else is percent-escaped the
//! same way for answers and for purges.

use super::change::Change;
use super::domain::{Entry, EntryKey};
use hyper::header::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeSet;

/// The key every cacheable answer carries: purging it empties the cache.
pub const ALL: &str = "qrlaunch";

/// What a key may hold as it is: `A-Z a-z 0-9 . _ ~ - :` (a port's colon
/// stays); the rest is percent-encoded.
const KEY_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'-')
    .remove(b':');

/// One surrogate key: a token without spaces or commas (xkey splits on
/// them), escaped the same way for answers and purges.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SurrogateKey(String);

impl SurrogateKey {
    /// [`ALL`]: every cacheable answer.
    pub fn all() -> SurrogateKey {
        SurrogateKey(ALL.to_string())
    }

    /// The key of a launch code (and of every answer on the code's URL).
    pub fn code(code: &str) -> SurrogateKey {
        SurrogateKey(format!("c-{}", percent_encoding::utf8_percent_encode(code, KEY_SAFE)))
    }

    /// The key of a host (normalized: lower-case, no default port).
    pub fn host(host: &str) -> SurrogateKey {
        SurrogateKey(format!("h-{}", percent_encoding::utf8_percent_encode(host, KEY_SAFE)))
    }

    pub fn is_all(&self) -> bool {
        self.0 == ALL
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SurrogateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The keys to purge once `changes` are applied.
pub fn keys_of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> BTreeSet<SurrogateKey> {
    let mut keys = BTreeSet::new();
    for change in changes {
        match change {
            Change::Put(Entry::Code(c)) => {
                keys.insert(SurrogateKey::code(c.code.as_str()));
            }
            Change::Delete(EntryKey::Code(code)) => {
                keys.insert(SurrogateKey::code(code));
            }
            Change::Put(Entry::Rule(r)) => {
                keys.insert(SurrogateKey::host(super::url_key::host_of_key(r.prefix.key())));
            }
            Change::Delete(EntryKey::Rule(key)) => {
                keys.insert(SurrogateKey::host(super::url_key::host_of_key(key)));
            }
            Change::Put(Entry::Host(h)) => {
                keys.insert(SurrogateKey::host(h.host.as_str()));
            }
            Change::Delete(EntryKey::Host(host)) => {
                keys.insert(SurrogateKey::host(host));
            }
            Change::Put(Entry::File(f)) => {
                keys.insert(SurrogateKey::host(f.host.as_str()));
            }
            Change::Delete(EntryKey::File(key)) => {
                keys.insert(SurrogateKey::host(key.host()));
            }
            Change::Resync => {
                keys.insert(SurrogateKey::all());
            }
            // No answer depends on API keys.
            Change::Keys(_) | Change::Certificates(_) => {}
        }
    }
    keys
}

/// The `Surrogate-Key`/`xkey` value of an answer about `host` and, for a
/// code (or a code-shaped 404), `code`. Written into `out` (reused).
pub fn answer_keys(out: &mut String, host: &str, code: Option<&str>) -> Option<HeaderValue> {
    out.clear();
    out.push_str(ALL);
    out.push_str(" h-");
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'~' | b'-' | b':');
    if host.bytes().all(plain) {
        // The common case, a lower-case name and maybe a port: as it is.
        out.push_str(host);
    } else {
        // The Host header as sent: lower-cased as stored hosts are, then
        // escaped exactly as `host_key` escapes them for purges.
        out.extend(percent_encoding::utf8_percent_encode(
            &host.to_ascii_lowercase(),
            KEY_SAFE,
        ));
    }
    if let Some(code) = code {
        out.push_str(" c-");
        out.extend(percent_encoding::utf8_percent_encode(code, KEY_SAFE));
    }
    // Every byte is a visible ASCII character or a space.
    HeaderValue::from_str(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_tokens_and_match_what_changes_purge() {
        let mut out = String::new();
        let value = answer_keys(&mut out, "Go.Example.com", Some("a,b c!")).unwrap();
        assert_eq!(value, "qrlaunch h-go.example.com c-a%2Cb%20c%21");
        assert_eq!(SurrogateKey::code("a,b c!").as_str(), "c-a%2Cb%20c%21");
        assert_eq!(SurrogateKey::host("go.example.com").as_str(), "h-go.example.com");
        let value = answer_keys(&mut out, "[::1]:8080", None).unwrap();
        assert_eq!(value, "qrlaunch h-%5B::1%5D:8080");
        assert_eq!(SurrogateKey::host("[::1]:8080").as_str(), "h-%5B::1%5D:8080");
        assert!(!SurrogateKey::code("x,y").as_str().contains(','));
    }
}
