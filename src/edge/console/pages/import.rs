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
const MAX_UPLOAD: usize = 256 << 20;

/// An uploaded NDJSON or CSV file, imported all or nothing through the
/// API's import (CSV is turned into NDJSON first).
pub async fn import(ctx: Ctx, mut multipart: Multipart) -> Response {
    let mut csrf_ok = false;
    let mut mode = "upsert".to_string();
    let mut file: Option<(String, bytes::Bytes)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                let message = error.body_text();
                return import_page_with(&ctx, StatusCode::BAD_REQUEST, |p| p.error = Some(message));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "csrf" => {
                let value = field.text().await.unwrap_or_default();
                csrf_ok = ctx.session.csrf_matches(&value);
            }
            "mode" => mode = field.text().await.unwrap_or_default(),
            // The token comes first in the form: a file is read only once it matched.
            "file" if csrf_ok => {
                let file_name = field.file_name().unwrap_or_default().to_string();
                match field.bytes().await {
                    Ok(bytes) if bytes.len() <= MAX_UPLOAD => file = Some((file_name, bytes)),
                    Ok(_) => {
                        return import_page_with(&ctx, StatusCode::PAYLOAD_TOO_LARGE, |p| {
                            p.error = Some(format!("the file is larger than {} MiB", MAX_UPLOAD >> 20))
                        })
                    }
                    Err(error) => {
                        let message = error.body_text();
                        return import_page_with(&ctx, StatusCode::BAD_REQUEST, |p| p.error = Some(message));
                    }
                }
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return crate::edge::console::BadToken.into_response();
    }
    let Some((file_name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return import_page_with(&ctx, StatusCode::UNPROCESSABLE_ENTITY, |p| {
            p.error = Some("choose a file to upload (NDJSON or CSV)".into())
        });
    };
    let is_csv = file_name.to_ascii_lowercase().ends_with(".csv")
        || bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace() && **b != 0xef && **b != 0xbb && **b != 0xbf)
            != Some(&b'{');
    // CSV becomes NDJSON with the file's line numbers: the API's "line 3"
    // is line 3 of the uploaded file either way.
    let body = if is_csv {
        let mut ndjson = Vec::with_capacity(bytes.len() * 2);
        if let Err(error) = crate::model::table_file::csv::csv_to_ndjson(&bytes[..], &mut ndjson) {
            let message = error.to_string();
            return import_page_with(&ctx, StatusCode::UNPROCESSABLE_ENTITY, |p| p.error = Some(message));
        }
        bytes::Bytes::from(ndjson)
    } else {
        bytes
    };
    let mode = if mode == "insert" { "insert" } else { "upsert" };
    let reply = ctx
        .api(
            Method::POST,
            &format!("/admin/v1/import?mode={mode}"),
            Some((Body::from(body), "application/x-ndjson")),
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
                    let _ = csv.write_record([line.to_string(), code.clone(), url]);
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
