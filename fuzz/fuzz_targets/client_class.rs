//! The User-Agent classifier: total and deterministic on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrlaunch::model::client_class::{classify, ClientClass};

fuzz_target!(|data: &[u8]| {
    let class = classify(Some(data));
    assert_eq!(classify(Some(data)), class);
    assert!(ClientClass::ALL.contains(&class));
    let _ = ClientClass::parse(data);
});
