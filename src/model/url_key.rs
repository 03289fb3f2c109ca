//! Normalized URL keys: the one form in which rule prefixes and scanned URLs
//! are compared.
//!
//! A rule prefix comes from an operator, a scanned URL arrives as an HTTP
//! request (scheme, `Host`, request target), and `/v1/resolve?url=` gets the
//! raw text a mini program received in `q`. All three are turned into the
//! same key by the same functions here, so they can only disagree on what
//! really differs:
//!
//! * scheme and host lower-cased, the scheme's default port dropped;
//! * an empty path written as `/`;
//! * the fragment dropped (browsers never send it);
//! * in path and query, bytes a browser would percent-encode (space,
//!   controls, non-ASCII) are encoded, and every `%XX` escape has upper-case
//!   hex. Nothing is decoded: `/a%2Fb` and `/a/b` stay different, as they
//!   are to the origin server.
//!
//! Matching follows WeChat's "scan ordinary link QR code" rules; see
//! [`prefix_matches`].

/// Normalizes an absolute `http`/`https` URL (a rule prefix, or a URL handed
/// to `/v1/resolve`). The error is the rule that was broken.
pub fn normalize_absolute(s: &str) -> Result<String, String> {
    // Browsers turn `\` into `/` and drop tabs and newlines before they ask;
    // the URL parser does the same for the authority only, so such a URL
    // would be keyed differently from what any browser sends.
    if let Some(c) = s.chars().find(|&c| c == '\\' || c.is_control()) {
        return Err(format!(
            "must not contain {c:?}: write the URL as a browser sends it (`/`, no tabs or line breaks)"
        ));
    }
    let parsed = url::Url::parse(s).map_err(|e| format!("must be an absolute http or https URL ({e})"))?;
    let scheme = parsed.scheme();
    if scheme != "http" && scheme != "https" {
        return Err("must be an http or https URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h,
        _ => return Err("must have a host".into()),
    };
    // The url crate validated and canonicalized the authority; path and query
    // are taken from the original text so that nothing is re-encoded in a way
    // a browser would not.
    let after_scheme = s.trim_start()[scheme.len()..]
        .trim_start_matches(':')
        .trim_start_matches(['/', '\\']);
    let rest_start = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let rest = &after_scheme[rest_start..];
    let rest = rest.split('#').next().unwrap_or("");
    let mut key = String::with_capacity(s.len() + 8);
    key.push_str(scheme);
    key.push_str("://");
    key.push_str(host);
    if let Some(port) = parsed.port() {
        key.push(':');
        key.push_str(&port.to_string());
    }
    push_rest(&mut key, rest.trim_end());
    Ok(key)
}

/// Writes the key of a request into `out` (cleared first): `scheme` is the
/// listener's or the trusted proxy's, `host` the `Host` header, `target` the
/// request's path and query. Fails if `host` is not a plausible host.
pub fn write_request_key(out: &mut String, scheme: &str, host: &str, target: &str) -> Result<(), InvalidHost> {
    out.clear();
    let host = strip_default_port(scheme, host);
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
    {
        return Err(InvalidHost);
    }
    out.push_str(scheme);
    out.push_str("://");
    for b in host.bytes() {
        out.push(b.to_ascii_lowercase() as char);
    }
    push_rest(out, target);
    Ok(())
}

/// The host part of a key written by [`write_request_key`] or
/// [`normalize_absolute`]: lower-case, without the scheme's default port.
pub fn host_of_key(key: &str) -> &str {
    let after = key.split_once("://").map_or(key, |(_, rest)| rest);
    let end = after.find('/').unwrap_or(after.len());
    &after[..end]
}

/// The `Host` header did not name a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHost;

/// `host` without the default port of `scheme` (the case is left alone).
pub fn strip_default_port<'h>(scheme: &str, host: &'h str) -> &'h str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    host.strip_suffix(default).unwrap_or(host)
}

/// Appends path and query in canonical form; an empty path becomes `/`.
fn push_rest(out: &mut String, rest: &str) {
    if !rest.starts_with('/') {
        out.push('/');
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() {
            out.push('%');
            out.push(bytes[i + 1].to_ascii_uppercase() as char);
            out.push(bytes[i + 2].to_ascii_uppercase() as char);
            i += 3;
            continue;
        }
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            push_escape(out, b);
        }
        i += 1;
    }
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

/// Whether a rule whose key is `prefix` matches the scanned URL `key`:
///
/// * `key` starts with `prefix` (so scheme and host are equal: every key has
///   a `/` right after its authority);
/// * if `prefix` has a query (`?`), the rest of the query is free: the query
///   is matched by prefix (`…/b?id=123` matches `…/b?id=1234`, not `…/b?id=132`);
/// * else if `prefix` ends with `/`, any sub-path matches (`…/a/` matches `…/a/b`);
/// * else the path must end where the prefix ends: `…/a/b` matches `…/a/b` and
///   `…/a/b?x=1`, but not `…/a/b/123` nor `…/a/bc`.
pub fn prefix_matches(prefix: &str, key: &str) -> bool {
    key.starts_with(prefix) && boundary_ok(prefix, key)
}

/// The part of [`prefix_matches`] after the literal prefix test.
pub(crate) fn boundary_ok(prefix: &str, key: &str) -> bool {
    if prefix.ends_with('/') || prefix.contains('?') {
        return true;
    }
    matches!(key.as_bytes().get(prefix.len()), None | Some(b'?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        normalize_absolute(s).unwrap()
    }

    #[test]
    fn normalizes_scheme_host_port_and_escapes() {
        let cases = [
            ("https://WWW.Example.com/App", "https://www.example.com/App"),
            ("HTTPS://example.com:443/a", "https://example.com/a"),
            ("http://example.com:80", "http://example.com/"),
            ("http://example.com:8080?x=1", "http://example.com:8080/?x=1"),
            (
                "https://example.com/a b?c=%e4%b8%ad#frag",
                "https://example.com/a%20b?c=%E4%B8%AD",
            ),
            (
                "https://example.com/下载?渠道=1",
                "https://example.com/%E4%B8%8B%E8%BD%BD?%E6%B8%A0%E9%81%93=1",
            ),
            ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
        ];
        for (input, want) in cases {
            assert_eq!(key(input), want, "{input}");
        }
    }

    #[test]
    fn rejects_non_http_and_credentials() {
        for bad in [
            "ftp://example.com/",
            "https://bs.example.com\\promo",
            "https://example.com/a\\b",
            "https://example.com/a\tb",
            "https://exam\tple.com/",
            "https://example.com/a\nb",
            "example.com/a",
            "https://user:pw@example.com/",
            "weixin://dl/business/",
            "https://",
        ] {
            assert!(normalize_absolute(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_key_matches_the_absolute_form() {
        let mut out = String::new();
        write_request_key(
            &mut out,
            "https",
            "WWW.example.com:443",
            "/app/download?channel=poster42",
        )
        .unwrap();
        assert_eq!(out, key("https://www.example.com/app/download?channel=poster42"));
        write_request_key(&mut out, "http", "example.com:8080", "/%e4?a=%zz").unwrap();
        assert_eq!(out, "http://example.com:8080/%E4?a=%zz");
        for bad in ["", "a b", "evil.com/path", "user@host"] {
            assert_eq!(
                write_request_key(&mut out, "http", bad, "/"),
                Err(InvalidHost),
                "{bad:?}"
            );
        }
    }

    /// WeChat's documented matching rules, one line each: (rule, scanned URL, matches?).
    #[test]
    fn wechat_matching_rules() {
        let cases = [
            // scheme and host must match exactly
            ("https://www.qq.com/a/b", "https://www.qq.com/a/b", true),
            ("https://www.qq.com/a/b", "http://www.qq.com/a/b", false),
            ("https://www.qq.com/a/b", "https://qq.com/a/b", false),
            ("https://www.qq.com/a/b", "https://www.qq.com.evil.com/a/b", false),
            ("https://www.qq.com/", "https://www.qq.com:8443/a", false),
            // sub-paths only under a prefix ending in `/`
            ("https://www.qq.com/a/b", "https://www.qq.com/a/b/123", false),
            ("https://www.qq.com/a/b", "https://www.qq.com/a/bc", false),
            ("https://www.qq.com/a/", "https://www.qq.com/a/b/123", true),
            ("https://www.qq.com/a/", "https://www.qq.com/a/bc", true),
            ("https://www.qq.com/a/", "https://www.qq.com/a", false),
            // a prefix without a query matches any query on its path
            ("https://www.qq.com/a/b", "https://www.qq.com/a/b?id=1", true),
            // the query is matched by prefix
            ("https://www.qq.com/a/b?id=123", "https://www.qq.com/a/b?id=123", true),
            ("https://www.qq.com/a/b?id=123", "https://www.qq.com/a/b?id=1234", true),
            ("https://www.qq.com/a/b?id=123", "https://www.qq.com/a/b?id=132", false),
            ("https://www.qq.com/a/b?id=123", "https://www.qq.com/a/b", false),
            ("https://www.qq.com/a/b?id=123", "https://www.qq.com/a/b/?id=123", false),
            // path is case-sensitive, host is not
            ("https://www.qq.com/a/b", "https://www.qq.com/A/b", false),
            ("https://www.qq.com/a/b", "https://WWW.QQ.COM/a/b", true),
        ];
        for (rule, url, want) in cases {
            assert_eq!(prefix_matches(&key(rule), &key(url)), want, "{rule} vs {url}");
        }
    }
}
