//! `qrlaunch import FILE|-` and `qrlaunch export [FILE]`.

use super::client::{root_cause, AdminClient, CliError};
use super::output;
use crate::edge::api::ImportAnswer;
use crate::edge::config::{ImportFormat, ImportMode};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::blocking::Body;
use reqwest::Method;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Instant;

/// Streams a table file (or standard input, `-`) to `POST
/// /admin/v1/import`, with a progress bar on a terminal; prints the
/// summary, and the generated codes as NDJSON (to `out`, or standard output).
pub fn import(
    client: &AdminClient,
    file: &Path,
    mode: ImportMode,
    format: Option<ImportFormat>,
    out: Option<&Path>,
) -> Result<(), CliError> {
    let file_error = |e: std::io::Error| CliError::File {
        path: file.into(),
        reason: e.to_string(),
    };
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let opened = std::fs::File::open(file).map_err(file_error)?;
        // A pipe or a device reports no useful size: stream it chunked.
        let size = opened.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (Box::new(opened), size)
    };
    let csv = match format {
        Some(format) => format == ImportFormat::Csv,
        None => file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    // CSV is turned into NDJSON in a temporary file first (line numbers
    // kept: the server's "line 3" is line 3 of the CSV file).
    let (reader, size) = if csv {
        let mut ndjson = tempfile::tempfile().map_err(file_error)?;
        let mut writer = std::io::BufWriter::new(&mut ndjson);
        crate::model::table_file::csv::csv_to_ndjson(BufReader::new(reader), &mut writer).map_err(|e| {
            CliError::File {
                path: file.into(),
                reason: e.to_string(),
            }
        })?;
        writer.flush().map_err(file_error)?;
        drop(writer);
        let size = ndjson.metadata().map_err(file_error)?.len();
        std::io::Seek::rewind(&mut ndjson).map_err(file_error)?;
        (Box::new(ndjson) as Box<dyn Read + Send>, Some(size))
    } else {
        (reader, size)
    };
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    if reader.fill_buf().map_err(file_error)?.is_empty() {
        return Err(CliError::File {
            path: file.into(),
            reason: "the input is empty: nothing to import".into(),
        });
    }
    let bar = match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("importing {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("importing {spinner} {bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    let progress = bar.wrap_read(reader);
    let body = match size {
        Some(size) => Body::sized(progress, size),
        None => Body::new(progress),
    };
    let request = client
        .request(Method::POST, &format!("/admin/v1/import?mode={}", mode.as_str()))
        .header("content-type", "application/x-ndjson")
        .body(body);
    let started = Instant::now();
    let answer = client.json::<ImportAnswer>(request);
    bar.finish_and_clear();
    let answer = answer?;
    if answer.lines == 0 {
        return Err(CliError::Answer(
            "the server read no lines from a non-empty input".into(),
        ));
    }
    eprintln!(
        "imported in {:.1} s: {} lines, {} codes, {} rules, {} hosts, {} files ({}, position {})",
        started.elapsed().as_secs_f64(),
        answer.lines,
        answer.codes,
        answer.rules,
        answer.hosts,
        answer.files,
        answer.mode,
        answer.position,
    );
    for warning in &answer.warnings {
        eprintln!("qrlaunch: warning: {}", warning.message);
    }
    if answer.generated.is_empty() {
        return Ok(());
    }
    match out {
        Some(path) => {
            let failed = |e: std::io::Error| CliError::File {
                path: path.into(),
                reason: e.to_string(),
            };
            let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(failed)?);
            for generated in &answer.generated {
                serde_json::to_writer(&mut file, generated).map_err(|e| failed(e.into()))?;
                file.write_all(b"\n").map_err(failed)?;
            }
            file.into_inner()
                .map_err(|e| failed(e.into_error()))?
                .sync_all()
                .map_err(failed)?;
            eprintln!(
                "{} generated codes written to {}",
                answer.generated.len(),
                path.display()
            );
            Ok(())
        }
        None => output::finish(answer.generated.iter().try_for_each(output::json)),
    }
}

/// Streams `GET /admin/v1/export` to `file` or standard output.
pub fn export(client: &AdminClient, file: Option<&Path>) -> Result<(), CliError> {
    let mut response = client.send(client.request(Method::GET, "/admin/v1/export"))?;
    let failed = |reason: String| CliError::File {
        path: file.map_or_else(|| "(standard output)".into(), Path::to_path_buf),
        reason,
    };
    match file {
        Some(path) => {
            let mut out = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
            response.copy_to(&mut out).map_err(|e| failed(root_cause(&e)))?;
            out.sync_all().map_err(|e| failed(e.to_string()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = response
                    .read(&mut buf)
                    .map_err(|e| failed(format!("reading the export: {e}")))?;
                if n == 0 {
                    break;
                }
                match stdout.write_all(&buf[..n]) {
                    Ok(()) => {}
                    Err(e) if output::is_closed(&e) => return Ok(()),
                    Err(e) => return Err(failed(e.to_string())),
                }
            }
            match stdout.flush() {
                Err(e) if !output::is_closed(&e) => Err(failed(e.to_string())),
                _ => Ok(()),
            }
        }
    }
}

/// `qrlaunch backup FILE`: the node's consistent copy of its store
/// (`GET /admin/v1/backup`), written beside FILE, synced, then renamed to
/// it, checked, and summed up as one JSON line.
pub fn backup(client: &AdminClient, file: &Path) -> Result<(), CliError> {
    let failed = |reason: String| CliError::File {
        path: file.into(),
        reason,
    };
    if file.exists() {
        return Err(failed("exists already: name a new file".into()));
    }
    // FILE.partial, made new (never someone else's file, never through a
    // link), readable by its owner only: the copy holds key hashes and the
    // audit log. Made before asking, so a wrong directory costs nothing.
    let mut partial_name = file.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = std::path::PathBuf::from(partial_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&partial).map_err(|e| CliError::File {
        path: partial.clone(),
        reason: e.to_string(),
    })?;
    let written = (|| {
        let mut response = client
            .send(client.request(Method::GET, "/admin/v1/backup"))
            .map_err(|e| e.to_string())?;
        response.copy_to(&mut out).map_err(|e| root_cause(&e))?;
        out.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&partial, file).map_err(|e| e.to_string())
    })();
    if let Err(reason) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(failed(reason));
    }
    let info = crate::replication::store::backup::inspect(file).map_err(CliError::Answer)?;
    let mut line = serde_json::to_value(&info).unwrap_or_default();
    line["path"] = file.display().to_string().into();
    output::finish(output::json(&line))
}
