//! What a URL resolves to: the one decision that scans and
//! `/v1/resolve?url=` both make, so the tool used to check a URL can never
//! disagree with what phones get.
//!
//! In order, for a URL `scheme://host/path?query`:
//!
//! 1. a verification file stored for this host at exactly this path;
//! 2. a launch code: on a code host (a `--public-url`'s host, or any host
//!    without the flag), a single path segment below the base path that is
//!    a known code (strictly percent-decoded: `/a%21b` is `a!b`);
//! 3. the rule with the longest matching prefix (WeChat's semantics, see
//!    [`crate::model::url_key`]);
//! 4. the host's pass-through origin, if one is set;
//! 5. not found (or `400` when the path was badly encoded).

use crate::model::percent::decode_strict;
use crate::model::table::{Hit, Snapshot};
use crate::model::url_key::{self, InvalidHost};

/// A URL as it was asked for, before normalization.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host as sent (any case, maybe a port).
    pub host: &'a str,
    /// The path alone.
    pub path: &'a str,
    /// Path and query as sent.
    pub path_and_query: &'a str,
}

/// Where launch codes answer: the base URLs they are printed under.
#[derive(Debug, Clone, Default)]
pub struct CodeHosts {
    /// `(host, base path)`; empty: codes answer on every host at `/`.
    bases: Vec<(String, String)>,
}

/// A `--public-url` that is not usable as a code base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--public-url {url}: {reason}")]
pub struct BadPublicUrl {
    pub url: String,
    pub reason: String,
}

impl CodeHosts {
    /// Codes on every host (no `--public-url`).
    pub fn anywhere() -> CodeHosts {
        CodeHosts::default()
    }

    /// Codes only under these base URLs (`https://go.example.com/`,
    /// `https://example.com/c/`).
    pub fn parse(urls: &[String]) -> Result<CodeHosts, BadPublicUrl> {
        let mut bases = Vec::new();
        for url in urls {
            let bad = |reason: &str| BadPublicUrl {
                url: url.clone(),
                reason: reason.into(),
            };
            let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad("must be an http or https URL"));
            }
            if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
                return Err(bad("must not have a query, a fragment or user info"));
            }
            let host = match (parsed.host_str(), parsed.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_string(),
                (None, _) => return Err(bad("must have a host")),
            };
            let mut path = parsed.path().to_string();
            if !path.ends_with('/') {
                path.push('/');
            }
            bases.push((host.to_ascii_lowercase(), path));
        }
        Ok(CodeHosts { bases })
    }

    /// The hosts of the base URLs (none without `--public-url`).
    pub fn hosts(&self) -> impl Iterator<Item = &str> + '_ {
        self.bases.iter().map(|(h, _)| h.as_str())
    }

    pub fn is_anywhere(&self) -> bool {
        self.bases.is_empty()
    }

    /// The first base URL's pieces: what a code's printed URL starts with.
    pub fn first(&self) -> Option<(&str, &str)> {
        self.bases.first().map(|(h, p)| (h.as_str(), p.as_str()))
    }

    /// Whether `host` (normalized) is a code host.
    pub fn is_code_host(&self, host: &str) -> bool {
        self.bases.is_empty() || self.bases.iter().any(|(h, _)| h == host)
    }

    /// The base path codes answer below on `host` (any case, no default
    /// port): `/` without `--public-url`.
    pub fn base_path(&self, host: &str) -> &str {
        self.bases
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
            .map_or("/", |(_, path)| path.as_str())
    }

    /// The code segment of `path` when `host` (any case, no default port)
    /// is a code host: one segment right below the base path.
    pub fn segment<'p>(&self, host: &str, path: &'p str) -> Option<&'p str> {
        let rest = if self.bases.is_empty() {
            path.strip_prefix('/')?
        } else {
            self.bases
                .iter()
                .filter(|(h, _)| h.eq_ignore_ascii_case(host))
                .find_map(|(_, base)| path.strip_prefix(base.as_str()))?
        };
        (!rest.is_empty() && rest.len() <= MAX_ENCODED_CODE && !rest.as_bytes().contains(&b'/')).then_some(rest)
    }
}

/// Longest percent-encoded form of a 32-character code.
const MAX_ENCODED_CODE: usize = 3 * 32;

/// What a URL resolves to.
#[derive(Debug, Clone, Copy)]
pub enum Decision<'t> {
    /// A verification file's text.
    File(&'t str),
    Code(Hit<'t>),
    Rule(Hit<'t>),
    /// No rule matched on a host with a pass-through origin.
    PassThrough(&'t str),
    NotFound,
    BadRequest(&'static str),
}

/// Decides `target` against `snapshot`; `key` is scratch space for the
/// normalized URL (reused, so a scan does not allocate for it).
pub fn decide<'t>(snapshot: &'t Snapshot, codes: &CodeHosts, target: &Target<'_>, key: &mut String) -> Decision<'t> {
    // Without files, pass-through hosts or code bases, a code needs no
    // normalized host: the common case skips building the key.
    let needs_host = !snapshot.hosts().is_empty() || !codes.is_anywhere();
    let mut keyed = false;
    let mut host = "";
    if needs_host {
        if url_key::write_request_key(key, target.scheme, target.host, target.path_and_query).is_err() {
            return Decision::BadRequest("The Host header does not name a host.");
        }
        keyed = true;
        host = url_key::host_of_key(key);
        if let Some(body) = snapshot.hosts().file(host, target.path) {
            return Decision::File(body);
        }
    }
    let mut bad_escape = false;
    if let Some(segment) = codes.segment(host, target.path) {
        match decode_strict(segment.as_bytes()) {
            Ok(code) => {
                if let Some(hit) = snapshot.code(&code) {
                    return Decision::Code(hit);
                }
            }
            Err(_) => bad_escape = true,
        }
    }
    if !keyed {
        if let Err(InvalidHost) = url_key::write_request_key(key, target.scheme, target.host, target.path_and_query) {
            return Decision::BadRequest("The Host header does not name a host.");
        }
        host = url_key::host_of_key(key);
    }
    if let Some(hit) = snapshot.rule(key) {
        return Decision::Rule(hit);
    }
    if let Some(origin) = snapshot.hosts().get(host).and_then(|h| h.unmatched.as_ref()) {
        return Decision::PassThrough(origin.as_str());
    }
    if bad_escape {
        return Decision::BadRequest("The path has an invalid percent-encoding or is not UTF-8 once decoded.");
    }
    Decision::NotFound
}

/// Whether a rule would match `target` had it come over `https`: a
/// plain-http request from a peer whose `X-Forwarded-Proto` is not
/// believed, behind a TLS terminator that is not listed as trusted.
pub fn https_rule_would_match(snapshot: &Snapshot, target: &Target<'_>, key: &mut String) -> bool {
    target.scheme == "http"
        && url_key::write_request_key(key, "https", target.host, target.path_and_query).is_ok()
        && snapshot.rule(key).is_some()
}

/// Splits an absolute URL (the `url` of `/v1/resolve`) into a [`Target`]
/// the way a browser would send it; the error is the rule broken.
pub fn split_url(url: &str) -> Result<Target<'_>, String> {
    // The same checks as a rule prefix: http/https, a host, no user info,
    // no backslash or control characters.
    url_key::normalize_absolute(url)?;
    let trimmed = url.trim_start();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| "must be an absolute http or https URL".to_string())?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else {
        "http"
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, after) = rest.split_at(end);
    let after = after.split('#').next().unwrap_or("").trim_end();
    let path = after.split('?').next().unwrap_or("");
    Ok(Target {
        scheme,
        host,
        path: if path.is_empty() { "/" } else { path },
        path_and_query: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_bases_take_one_segment_below_their_path() {
        let anywhere = CodeHosts::anywhere();
        assert_eq!(anywhere.segment("", "/abc"), Some("abc"));
        assert_eq!(anywhere.segment("", "/a/b"), None);
        assert_eq!(anywhere.segment("", "/"), None);
        let hosts = CodeHosts::parse(&["https://Go.Example.com".into(), "https://example.com:8443/c".into()]).unwrap();
        assert_eq!(hosts.segment("go.example.com", "/abc"), Some("abc"));
        assert_eq!(hosts.segment("example.com:8443", "/c/abc"), Some("abc"));
        assert_eq!(hosts.segment("example.com:8443", "/abc"), None);
        assert_eq!(hosts.segment("www.example.com", "/abc"), None);
        assert!(CodeHosts::parse(&["ftp://x".into()]).is_err());
        assert!(CodeHosts::parse(&["https://x/?a=1".into()]).is_err());
    }

    #[test]
    fn resolve_urls_split_as_browsers_send_them() {
        let t = split_url("HTTPS://WWW.Example.com:443/app/x?y=1#frag").unwrap();
        assert_eq!(
            (t.scheme, t.host, t.path, t.path_and_query),
            ("https", "WWW.Example.com:443", "/app/x", "/app/x?y=1")
        );
        let t = split_url("http://a.com?x").unwrap();
        assert_eq!((t.path, t.path_and_query), ("/", "?x"));
        assert!(split_url("https://a.com\\x").is_err());
    }

    /// The table every decision below is made against.
    const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"code/spring24"}
{"code":"download","appid":"wx1234567890abcdef","path":"code/download"}
{"code":"a!b","appid":"wx1234567890abcdef","path":"code/bang"}
{"prefix":"https://app.shop.com/download","appid":"wx1234567890abcdef","path":"rule/download"}
{"prefix":"https://app.shop.com/download?src=box","appid":"wx1234567890abcdef","path":"rule/box"}
{"prefix":"https://app.shop.com/spring24","appid":"wx1234567890abcdef","path":"rule/spring24"}
{"prefix":"http://plain.com/","appid":"wx1234567890abcdef","path":"rule/plain"}
{"host":"app.shop.com","unmatched":"https://old.shop.com"}
{"host":"app.shop.com","file":"/download/MP_verify_x.txt","body":"verified"}
{"host":"app.shop.com","file":"/.well-known/acme-challenge/tok-1_A","body":"tok-1_A.thumbprint"}"#;

    fn snapshot() -> Snapshot {
        use crate::model::domain::Entry;
        use crate::model::table_file::{parse_line, Item};
        let (mut settings, mut files) = (Vec::new(), Vec::new());
        for line in TABLE.lines() {
            match parse_line(line).unwrap() {
                Item::Entry(Entry::Host(h)) => settings.push(h),
                Item::Entry(Entry::File(f)) => files.push(f),
                _ => {}
            }
        }
        let table = crate::model::table_file::load(TABLE.as_bytes()).unwrap().table;
        let hosts = crate::model::table::HostTable::build(&settings, &files);
        Snapshot::build(
            std::sync::Arc::new(table),
            crate::model::table::Layers::default(),
            std::sync::Arc::new(hosts),
            1,
        )
    }

    /// A decision in a few words: `code PATH`, `rule PATH`, `file BODY`,
    /// `pass ORIGIN`, `404` or `400`.
    fn short(decision: Decision<'_>) -> String {
        match decision {
            Decision::File(body) => format!("file {body}"),
            Decision::Code(hit) => format!("code {}", hit.profile.key.path),
            Decision::Rule(hit) => format!("rule {}", hit.profile.key.path),
            Decision::PassThrough(origin) => format!("pass {origin}"),
            Decision::NotFound => "404".into(),
            Decision::BadRequest(_) => "400".into(),
        }
    }

    /// One line a case: the code bases (`*`: every host), the URL, the
    /// decision. A newcomer adds a case with a line.
    const CASES: &[(&str, &str, &str)] = &[
        // Codes answer on every host without --public-url ...
        ("*", "https://go.example.com/spring24", "code code/spring24"),
        ("*", "http://anything.test/spring24?utm=1", "code code/spring24"),
        ("*", "https://go.example.com/a%21b", "code code/bang"),
        ("*", "https://go.example.com/a!b", "code code/bang"),
        ("*", "https://go.example.com/Spring24", "404"),
        ("*", "https://go.example.com/spring24/x", "404"),
        ("*", "https://go.example.com/%ff", "400"),
        // ... and a code wins over a rule for its own path on a code host.
        ("*", "https://app.shop.com/download?src=box", "code code/download"),
        // With --public-url, codes only under it; rules everywhere else.
        (
            "https://go.example.com/",
            "https://go.example.com/spring24",
            "code code/spring24",
        ),
        (
            "https://go.example.com/",
            "https://GO.example.com:443/spring24",
            "code code/spring24",
        ),
        (
            "https://go.example.com/",
            "https://app.shop.com/download?src=box",
            "rule rule/box",
        ),
        (
            "https://go.example.com/",
            "https://app.shop.com/download?src=poster",
            "rule rule/download",
        ),
        (
            "https://go.example.com/",
            "https://app.shop.com/spring24",
            "rule rule/spring24",
        ),
        ("https://go.example.com/", "https://other.test/spring24", "404"),
        (
            "https://example.com/c/",
            "https://example.com/c/spring24",
            "code code/spring24",
        ),
        ("https://example.com/c/", "https://example.com/spring24", "404"),
        // Rules: WeChat's prefix semantics, scheme exact.
        (
            "https://go.example.com/",
            "https://app.shop.com/download/x",
            "pass https://old.shop.com",
        ),
        (
            "https://go.example.com/",
            "http://app.shop.com/download",
            "pass https://old.shop.com",
        ),
        (
            "https://go.example.com/",
            "http://plain.com/any/path",
            "rule rule/plain",
        ),
        ("https://go.example.com/", "https://plain.com/any/path", "404"),
        // A verification file comes first, exactly at its path.
        ("*", "https://app.shop.com/download/MP_verify_x.txt", "file verified"),
        ("*", "https://app.shop.com/MP_verify_x.txt", "pass https://old.shop.com"),
        // A host's files answer on any port of it (an ACME server or WeChat
        // may be sent to a port of its own); another host's do not.
        (
            "*",
            "http://app.shop.com:8080/download/MP_verify_x.txt",
            "file verified",
        ),
        (
            "*",
            "http://app.shop.com/.well-known/acme-challenge/tok-1_A",
            "file tok-1_A.thumbprint",
        ),
        (
            "*",
            "http://app.shop.com:5002/.well-known/acme-challenge/tok-1_A",
            "file tok-1_A.thumbprint",
        ),
        (
            "*",
            "http://plain.com/.well-known/acme-challenge/tok-1_A",
            "rule rule/plain",
        ),
        // The host's origin catches what no rule matches; a bad escape
        // there still goes to the old site, as a browser would send it.
        (
            "https://go.example.com/",
            "https://app.shop.com/about?x=1",
            "pass https://old.shop.com",
        ),
        (
            "https://go.example.com/",
            "https://app.shop.com/%ff",
            "pass https://old.shop.com",
        ),
    ];

    #[test]
    fn every_case_decides_as_written() {
        let snapshot = snapshot();
        let mut key = String::new();
        let mut wrong = Vec::new();
        for &(bases, url, expected) in CASES {
            let codes = match bases {
                "*" => CodeHosts::anywhere(),
                base => CodeHosts::parse(&[base.to_string()]).unwrap(),
            };
            let target = split_url(url).unwrap();
            let got = short(decide(&snapshot, &codes, &target, &mut key));
            if got != expected {
                wrong.push(format!("{bases} {url}: expected {expected}, got {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
