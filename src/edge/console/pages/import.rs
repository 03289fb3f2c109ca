//! Imports: an NDJSON or CSV upload, all or nothing, through the API's import.

use super::*;

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    f: Frame,
    csrf: String,
    error: Option<String>,
    line_errors: Vec<(usize, String, String)>,
    summary: Option<String>,
    generated: Vec<(usize, String, String)>,
}

fn import_page_with(ctx: &Ctx, status: StatusCode, fill: impl FnOnce(&mut ImportPage)) -> Response {
    let mut page = ImportPage {
        f: ctx.frame(ctx.t.import),
        csrf: ctx.session.csrf.to_string(),
        error: None,
        line_errors: Vec::new(),
        summary: None,
        generated: Vec::new(),
    };
    fill(&mut page);
    html(status, &page)
}

pub async fn import_page(ctx: Ctx) -> Response {
    import_page_with(&ctx, StatusCode::OK, |_| {})
}

/// Largest import upload through the console.
pub const MAX_UPLOAD: usize = 256 << 20;

/// Why an upload was not taken.
fn upload_refused(ctx: &Ctx, status: StatusCode, message: String) -> Response {
    import_page_with(ctx, status, |p| p.error = Some(message))
}

/// Writes the file field to a temporary file in the spool directory, at
/// most [`MAX_UPLOAD`] bytes; its name and length.
async fn spool(
    ctx: &Ctx,
    mut field: axum::extract::multipart::Field<'_>,
) -> Result<(String, std::fs::File, u64), Response> {
    use std::io::Write as _;
    let file_name = field.file_name().unwrap_or_default().to_string();
    let io = |e: std::io::Error| {
        upload_refused(
            ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upload could not be spooled: {e}"),
        )
    };
    let mut file = tempfile::tempfile_in(&ctx.state.admin.options.spool_dir).map_err(io)?;
    let mut length = 0u64;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                length += chunk.len() as u64;
                if length > MAX_UPLOAD as u64 {
                    return Err(upload_refused(
                        ctx,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the file is larger than {} MiB: import it with `qrlaunch import FILE`",
                            MAX_UPLOAD >> 20
                        ),
                    ));
                }
                file.write_all(&chunk).map_err(io)?;
            }
            Ok(None) => break,
            Err(error) => return Err(upload_refused(ctx, error.status(), error.body_text())),
        }
    }
    Ok((file_name, file, length))
}

/// Whether an upload is CSV: by its name, else by its first character
/// (NDJSON starts with `{`). The file is left at its start.
fn looks_like_csv(name: &str, file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read as _, Seek as _};
    file.rewind()?;
    if name.to_ascii_lowercase().ends_with(".csv") {
        return Ok(true);
    }
    let mut head = [0u8; 256];
    let n = file.read(&mut head)?;
    file.rewind()?;
    let first = head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace() && ![0xef, 0xbb, 0xbf].contains(*b));
    Ok(first.is_some_and(|b| *b != b'{'))
}

/// An uploaded NDJSON or CSV file, imported all or nothing through the
/// API's import (CSV is turned into NDJSON first). The file is spooled to
/// disk and streamed to the API, never held in memory whole.
pub async fn import(ctx: Ctx, mut multipart: Multipart) -> Response {
    let mut csrf_ok = false;
    let mut mode = "upsert".to_string();
    let mut upload: Option<(String, std::fs::File, u64)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return upload_refused(&ctx, error.status(), error.body_text()),
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "csrf" => {
                let value = field.text().await.unwrap_or_default();
                csrf_ok = ctx.session.csrf_matches(&value);
            }
            "mode" => mode = field.text().await.unwrap_or_default(),
            // The token comes first in the form: a file is read only once it matched.
            "file" if csrf_ok => match spool(&ctx, field).await {
                Ok(spooled) => upload = Some(spooled),
                Err(refusal) => return refusal,
            },
            _ => {}
        }
    }
    if !csrf_ok {
        return crate::edge::console::BadToken.into_response();
    }
    let Some((file_name, mut file, _)) = upload.filter(|(_, _, length)| *length > 0) else {
        return upload_refused(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "choose a file to upload (NDJSON or CSV)".into(),
        );
    };
    let io = |e: std::io::Error| {
        upload_refused(
            &ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upload could not be read back: {e}"),
        )
    };
    let is_csv = match looks_like_csv(&file_name, &mut file) {
        Ok(is_csv) => is_csv,
        Err(e) => return io(e),
    };
    // CSV becomes NDJSON with the file's line numbers: the API's "line 3"
    // is line 3 of the uploaded file either way.
    let file = if is_csv {
        let spool_dir = ctx.state.admin.options.spool_dir.clone();
        let converted = crate::replication::background::run("qrlaunch-csv", move || {
            let mut ndjson = tempfile::tempfile_in(spool_dir).map_err(|e| e.to_string())?;
            let mut out = std::io::BufWriter::new(&mut ndjson);
            crate::model::table_file::csv::csv_to_ndjson(std::io::BufReader::new(file), &mut out)
                .map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
            drop(out);
            std::io::Seek::rewind(&mut ndjson).map_err(|e| e.to_string())?;
            Ok::<_, String>(ndjson)
        })
        .await;
        match converted {
            Some(Ok(ndjson)) => ndjson,
            Some(Err(message)) => return upload_refused(&ctx, StatusCode::UNPROCESSABLE_ENTITY, message),
            None => return upload_refused(&ctx, StatusCode::INTERNAL_SERVER_ERROR, "the CSV reader stopped".into()),
        }
    } else {
        if let Err(e) = std::io::Seek::rewind(&mut file) {
            return io(e);
        }
        file
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)));
    let mode = if mode == "insert" { "insert" } else { "upsert" };
    let reply = ctx
        .api(
            Method::POST,
            &format!("/admin/v1/import?mode={mode}"),
            Some((body, "application/x-ndjson")),
        )
        .await;
    match reply.json::<ImportAnswer>() {
        Ok(answer) => {
            let generated: Vec<(usize, String, String)> = answer
                .generated
                .iter()
                .map(|g| (g.line, g.code.clone(), encoded(&g.code).to_string()))
                .collect();
            if !generated.is_empty() {
                let mut csv = csv::Writer::from_writer(Vec::new());
                let _ = csv.write_record(["line", "code", "url"]);
                for (line, code, _) in &generated {
                    let url = crate::edge::admin::qr::public_url(&ctx.state.admin, code);
                    let _ = csv.write_record([line.to_string(), spreadsheet_safe(code), url]);
                }
                let text = String::from_utf8(csv.into_inner().unwrap_or_default()).unwrap_or_default();
                ctx.state.sessions.keep_generated(&ctx.id, text);
            }
            let summary = format!(
                "{} {}, {} {}, {} {}",
                answer.codes, ctx.t.codes, answer.rules, ctx.t.rules, answer.hosts, ctx.t.hosts
            );
            import_page_with(&ctx, StatusCode::OK, |p| {
                p.summary = Some(summary);
                p.generated = generated;
            })
        }
        Err(refusal) => {
            let lines = refusal
                .error
                .errors
                .iter()
                .map(|e| (e.line, e.field.clone().unwrap_or_default(), e.message.clone()))
                .collect();
            let message = refusal.error.message.clone();
            import_page_with(&ctx, refusal.status, |p| {
                p.error = Some(message);
                p.line_errors = lines;
            })
        }
    }
}

/// The codes the session's last import generated, as CSV.
pub async fn generated_csv(ctx: Ctx) -> Response {
    match &ctx.session.generated {
        Some(csv) => attachment(csv.to_string(), "text/csv; charset=utf-8", "generated-codes.csv"),
        None => see_other("/console/import"),
    }
}
