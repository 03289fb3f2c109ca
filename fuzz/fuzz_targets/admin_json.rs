//! The admin API's JSON bodies: never a panic, whatever the bytes; an
//! error names a field or says the JSON is bad.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrlaunch::edge::admin::body::{parse, parse_value};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(line) => {
            let _ = line.validate();
            let _ = line.wants_generated_code();
        }
        Err(e) => assert!(e.status.is_client_error()),
    }
    let _ = parse_value(data);
});
