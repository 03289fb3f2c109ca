//! The scheme a request was made with.
//!
//! qrlaunch listens on plain HTTP; behind a CDN or TLS terminator the
//! original scheme arrives in `X-Forwarded-Proto` or RFC 7239's
//! `Forwarded: proto=`. Rules match the scheme exactly, so a forged header
//! could steer a scan to another rule: the headers are believed only from
//! peers in the trusted proxy list. Where TLS always ends upstream,
//! `--assume-https` says so for every request, and then no header is read
//! at all: a cache in front that does not key on these headers cannot be
//! made to store an `http` answer for everyone by one forged request.

use hyper::header::{HeaderName, FORWARDED};
use hyper::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The default trusted proxies: a TLS terminator on the same machine.
pub fn loopback() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("valid CIDR"),
        "::1/128".parse().expect("valid CIDR"),
    ]
}

/// How a request's scheme was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Nothing said otherwise: the listener's own `http`.
    Listener,
    /// A trusted proxy's header named it.
    Forwarded(&'static str),
    /// `--assume-https`.
    Assumed,
    /// The request came over this node's own TLS listener.
    Tls,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Listener => "http",
            Scheme::Forwarded(name) => name,
            Scheme::Assumed | Scheme::Tls => "https",
        }
    }
}

/// Whether `peer` is in `trusted` (an IPv4 peer on a dual-stack socket
/// shows up as `::ffff:a.b.c.d`).
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&peer))
}

/// Names built once: a header looked up by `&str` is parsed on every call.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The scheme of a request: `https` under `--assume-https`, whatever the
/// headers say; else a trusted proxy's `X-Forwarded-Proto`, else its
/// `Forwarded: proto=`, else `http`.
pub fn scheme(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet], assume_https: bool) -> Scheme {
    if assume_https {
        return Scheme::Assumed;
    }
    if reads_headers(peer, trusted, assume_https) {
        if let Some(value) = headers.get(X_FORWARDED_PROTO) {
            // A chain of proxies appends: the first value is the client's.
            let first = value.as_bytes().split(|&b| b == b',').next().unwrap_or_default();
            if let Some(name) = known(first) {
                return Scheme::Forwarded(name);
            }
        } else if let Some(name) = headers.get(FORWARDED).and_then(|v| forwarded_proto(v.as_bytes())) {
            return Scheme::Forwarded(name);
        }
    }
    Scheme::Listener
}

/// Whether the scheme of a request from `peer` depends on its forwarding
/// headers: then an answer must name them in `Vary`.
pub fn reads_headers(peer: IpAddr, trusted: &[IpNet], assume_https: bool) -> bool {
    !assume_https && is_trusted(peer, trusted)
}

fn known(value: &[u8]) -> Option<&'static str> {
    let value = value.trim_ascii();
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    if value.eq_ignore_ascii_case(b"https") {
        Some("https")
    } else if value.eq_ignore_ascii_case(b"http") {
        Some("http")
    } else {
        None
    }
}

/// `proto=` of the first element of an RFC 7239 `Forwarded` header.
fn forwarded_proto(value: &[u8]) -> Option<&'static str> {
    let first = value.split(|&b| b == b',').next()?;
    first.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        key.trim_ascii()
            .eq_ignore_ascii_case(b"proto")
            .then(|| known(value))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_believed_only_from_trusted_peers() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "203.0.113.9".parse().unwrap();
        let with = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            headers
        };
        let cases: &[(HeaderMap, IpAddr, bool, &str)] = &[
            (HeaderMap::new(), local, false, "http"),
            (HeaderMap::new(), remote, true, "https"),
            (with("x-forwarded-proto", "HTTPS, http"), local, false, "https"),
            (with("x-forwarded-proto", "https"), mapped, false, "https"),
            (with("x-forwarded-proto", "https"), remote, false, "http"),
            // --assume-https means https, whatever a proxy's headers say.
            (with("x-forwarded-proto", "http"), local, true, "https"),
            (with("forwarded", "proto=http"), local, true, "https"),
            (with("x-forwarded-proto", "gopher"), local, false, "http"),
            (
                with("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
                local,
                false,
                "https",
            ),
            (with("forwarded", "Proto=\"HTTPS\", proto=http"), local, false, "https"),
            (with("forwarded", "for=192.0.2.60"), local, false, "http"),
            (with("forwarded", "proto=https"), remote, false, "http"),
        ];
        for (headers, peer, assume, want) in cases {
            assert_eq!(
                scheme(headers, *peer, &loopback(), *assume).name(),
                *want,
                "{headers:?} {peer} {assume}"
            );
        }
        assert_eq!(scheme(&HeaderMap::new(), local, &[], false), Scheme::Listener);
    }
}
