//! Request target and Host normalization: never a panic, and a key is its
//! own normal form (normalizing it again changes nothing).
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrlaunch::model::url_key::{host_of_key, normalize_absolute, prefix_matches, write_request_key};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = normalize_absolute(text) {
        assert_eq!(normalize_absolute(&key).as_deref(), Ok(key.as_str()), "{text:?}");
        assert!(prefix_matches(&key, &key));
        let _ = host_of_key(&key);
    }
    // Split the input as a Host header and a request target.
    let (host, target) = text.split_once('\n').unwrap_or((text, "/"));
    let mut key = String::new();
    for scheme in ["http", "https"] {
        if write_request_key(&mut key, scheme, host, target).is_ok() {
            assert!(key.starts_with(scheme));
            let _ = host_of_key(&key);
        }
    }
});
