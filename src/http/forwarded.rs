//! The scheme a request was made with.
//!
//! qrlaunch listens on plain HTTP; behind a CDN or TLS terminator the
//! original scheme arrives in `X-Forwarded-Proto`. Rules match scheme
//! exactly, so a forged header could steer a scan to another rule: the
//! header is believed only from peers in the trusted proxy list.

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

/// `https` or `http`: from a trusted proxy's `X-Forwarded-Proto` when it
/// names one of them, otherwise the listener's own `http`.
pub fn scheme(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> &'static str {
    let Some(value) = headers.get("x-forwarded-proto") else {
        return "http";
    };
    let peer = canonical(peer);
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return "http";
    }
    // A chain of proxies appends: the first value is the client's.
    let first = value.as_bytes().split(|&b| b == b',').next().unwrap_or_default();
    if first.trim_ascii().eq_ignore_ascii_case(b"https") {
        "https"
    } else {
        "http"
    }
}

/// An IPv4 peer on a dual-stack socket shows up as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_believed_only_from_trusted_peers() {
        let mut headers = HeaderMap::new();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(scheme(&headers, local, &loopback()), "http");
        headers.insert("x-forwarded-proto", "HTTPS, http".parse().unwrap());
        assert_eq!(scheme(&headers, local, &loopback()), "https");
        assert_eq!(scheme(&headers, mapped, &loopback()), "https");
        assert_eq!(scheme(&headers, remote, &loopback()), "http");
        assert_eq!(scheme(&headers, local, &[]), "http");
        headers.insert("x-forwarded-proto", "gopher".parse().unwrap());
        assert_eq!(scheme(&headers, local, &loopback()), "http");
    }
}
