//! Strict percent-decoding: never a panic; what decodes, encoded again,
//! decodes to itself; query parameters are found or not, never mangled.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrlaunch::model::percent::{decode_strict, encoded, get};

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode_strict(data) {
        let again = encoded(&decoded);
        assert_eq!(decode_strict(again.as_bytes()).unwrap(), decoded);
    }
    if let Ok(query) = std::str::from_utf8(data) {
        for name in ["code", "url", "prefix", "tag"] {
            let _ = get(query, name);
        }
    }
});
