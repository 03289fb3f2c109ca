//! Writing to standard output. A reader that goes away (`qrlaunch export |
//! head`) ends the command quietly, as it does for other Unix tools.

use super::client::CliError;
use std::io::Write;

/// Standard output closed by its reader: stop, successfully.
#[derive(Debug)]
pub struct Closed;

/// Writes one line to standard output.
pub fn line(text: &str) -> Result<(), Closed> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|_| Closed)
}

/// One JSON value as a line.
pub fn json(value: &impl serde::Serialize) -> Result<(), Closed> {
    line(&serde_json::to_string(value).unwrap_or_default())
}

/// Maps a closed standard output to success.
pub fn finish(result: Result<(), Closed>) -> Result<(), CliError> {
    match result {
        Ok(()) | Err(Closed) => Ok(()),
    }
}

/// Whether an I/O error means the reader went away.
pub fn is_closed(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::BrokenPipe
}
