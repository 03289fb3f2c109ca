//! The headers a scan reads: Host syntax, Accept-Language and the
//! forwarding headers. Never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrlaunch::edge::http::forwarded::{loopback, scheme};
use qrlaunch::edge::http::pages::language;
use qrlaunch::edge::http::service::valid_host;

fuzz_target!(|data: &[u8]| {
    let _ = language(Some(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = valid_host(text);
    }
    if let Ok(value) = hyper::header::HeaderValue::from_bytes(data) {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("forwarded", value.clone());
        let _ = scheme(&headers, "127.0.0.1".parse().unwrap(), &loopback(), false);
        headers.insert("x-forwarded-proto", value);
        let _ = scheme(&headers, "127.0.0.1".parse().unwrap(), &loopback(), false);
    }
});
