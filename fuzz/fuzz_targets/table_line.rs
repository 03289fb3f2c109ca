//! The table-file line parser: never a panic, and a valid line survives a
//! round trip through its own JSON form unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qrlaunch::model::domain::Line;
use qrlaunch::model::table_file::{parse_line, Item, Reader};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(Item::Entry(entry)) = parse_line(text) {
            let json = serde_json::to_string(&Line::from(&entry)).unwrap();
            match parse_line(&json) {
                Ok(Item::Entry(again)) => assert_eq!(again, entry, "{json}"),
                other => panic!("{json} did not parse back: {other:?}"),
            }
        }
    }
    // The whole-file reader, with its line cap and duplicate detection.
    let mut reader = Reader::new(data);
    while let Ok(Some(_)) = reader.next_item() {}
});
