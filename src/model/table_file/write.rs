//! An entry written back as a table-file line (export, the change log).

use crate::model::domain::{Entry, Line};

/// Appends `entry` as one line, with its `\n`.
pub fn write_line(out: &mut Vec<u8>, entry: &Entry) {
    // Serializing plain strings and bools into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &Line::from(entry));
    out.push(b'\n');
}
