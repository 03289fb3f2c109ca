//! Reading a whole table file line by line: the line cap, blank lines,
//! and keys that appear twice.

use super::parse::{parse_line, Item, LineError, Problem};
use super::MAX_LINE;
use crate::model::domain::{EntryKey, FieldError};
use std::collections::HashMap;
use std::io::BufRead;

/// Why a table file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Line(#[from] LineError),
    #[error("reading the table file: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a table file line by line, validating each line and refusing a
/// key seen on an earlier line.
pub struct Reader<R> {
    inner: R,
    pub(super) buf: Vec<u8>,
    line: usize,
    seen: Seen,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: Vec::with_capacity(1024),
            line: 0,
            seen: Seen::default(),
        }
    }

    /// Lines read so far.
    pub fn lines(&self) -> usize {
        self.line
    }

    /// The next non-blank line: `Ok(Some(Ok(..)))` valid, `Ok(Some(Err(..)))`
    /// a bad line (reading may go on), `Ok(None)` at the end.
    pub fn next_item(&mut self) -> std::io::Result<Option<Result<(usize, Item), LineError>>> {
        loop {
            let Some(complete) = read_line_capped(&mut self.inner, &mut self.buf, MAX_LINE)? else {
                return Ok(None);
            };
            self.line += 1;
            let line = self.line;
            let bad = |problem| Ok(Some(Err(LineError { line, problem })));
            if !complete {
                return bad(Problem::TooLong);
            }
            let raw = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
            let Ok(text) = std::str::from_utf8(raw) else {
                return bad(Problem::NotUtf8);
            };
            if text.trim().is_empty() {
                continue;
            }
            let item = match parse_line(text) {
                Ok(item) => item,
                Err(problem) => return bad(problem),
            };
            if let Item::Entry(entry) = &item {
                let key = entry.key();
                if let Some(first) = self.seen.insert(&key, line) {
                    return bad(duplicate(&key, first));
                }
            }
            return Ok(Some(Ok((line, item))));
        }
    }
}

/// The one message for a key that appears twice in an import.
pub fn duplicate(key: &EntryKey, first: usize) -> Problem {
    let (field, what) = match key {
        EntryKey::Code(_) => ("code", "same code as line {first}".to_string()),
        EntryKey::Rule(_) => (
            "prefix",
            "same prefix as line {first} (after normalizing scheme, host, port and escapes)".to_string(),
        ),
        EntryKey::Host(_) => ("host", "same host as line {first}".to_string()),
        EntryKey::File(_) => ("file", "same host and file as line {first}".to_string()),
    };
    Problem::Field(FieldError::new(field, what.replace("{first}", &first.to_string())))
}

/// Keys seen so far, by a 128-bit hash: a million keys take 48 MiB of
/// slots (2^21 of 24 bytes) rather than the keys themselves, and a false
/// "duplicate" would need a 128-bit collision. Two `u64`s, not a `u128`:
/// a `u128`'s 16-byte alignment made each slot 32 bytes, and a first seed
/// inserts a million keys at random places in it.
#[derive(Default)]
struct Seen {
    first_line: HashMap<(u64, u64), usize, ahash::RandomState>,
    hashers: (ahash::RandomState, ahash::RandomState),
}

impl Seen {
    fn insert(&mut self, key: &EntryKey, line: usize) -> Option<usize> {
        let hash = (self.hashers.0.hash_one(key), self.hashers.1.hash_one(key));
        match self.first_line.entry(hash) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

/// Reads up to and without the next `\n` into `buf` (cleared first),
/// keeping at most `cap` bytes: `Some(true)` a whole line, `Some(false)` a
/// line over `cap` (the rest of it is skipped), `None` at the end.
pub fn read_line_capped(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut over = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(!over));
        }
        any = true;
        let (piece, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(end) => (&chunk[..end], Some(end + 1)),
            None => (chunk, None),
        };
        if !over {
            if buf.len() + piece.len() > cap {
                over = true;
                buf.clear();
            } else {
                buf.extend_from_slice(piece);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(!over));
        }
    }
}
