//! Campaigns (tags): disable or enable all, every QR as a zip, the counts as CSV.

use super::*;

#[derive(Template)]
#[template(path = "console/campaigns.html")]
struct CampaignsPage {
    f: Frame,
    notice: Option<String>,
    error: Option<String>,
    can_write: bool,
    csrf: String,
    rows: Vec<CampaignRow>,
}

struct CampaignRow {
    tag: String,
    /// For a query string and for a path.
    tag_q: String,
    tag_p: String,
    codes: u64,
    rules: u64,
    /// `–` when the key may not read them.
    scans: String,
}

pub async fn campaigns(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let tags: TagList = match ctx.get("/admin/v1/tags").await {
        Ok(tags) => tags,
        Err(refusal) => return refused(&ctx, &refusal, "/console/"),
    };
    let today = ctx.state.admin.options.days.today();
    let range = format!("from={}&to={}", date_string(today - 29), date_string(today));
    let mut rows = Vec::new();
    for tag in tags.items {
        let mut scans = Some(0);
        for kind in ["code", "rule"] {
            let uri = format!("/admin/v1/stats?tag={}&kind={kind}&top=1&{range}", encoded(&tag.tag));
            scans = match ctx.get::<StatsAnswer>(&uri).await {
                Ok(stats) => scans.map(|n| n + stats.total.total),
                Err(_) => None,
            };
        }
        let scans = scans.map_or_else(|| "–".to_string(), |n| n.to_string());
        rows.push(CampaignRow {
            tag_q: encoded(&tag.tag).to_string(),
            tag_p: encoded(&tag.tag).to_string(),
            tag: tag.tag,
            codes: tag.codes,
            rules: tag.rules,
            scans,
        });
    }
    let notice = match q(&query, "changed").as_str() {
        "" => None,
        n => Some(format!("{} {n}", ctx.t.changed_n)),
    };
    let page = CampaignsPage {
        f: ctx.frame(ctx.t.campaigns),
        notice,
        error: None,
        can_write: ctx.can_write(),
        csrf: ctx.session.csrf.to_string(),
        rows,
    };
    html(StatusCode::OK, &page)
}

/// Disables or enables every code and rule of a tag, in one transaction
/// (`PATCH /admin/v1/tags/{tag}`): all of them or none.
pub async fn campaign_state(Path(tag): Path<String>, Posted { ctx, fields }: Posted) -> Response {
    let disabled = fields.get("disabled") == Some("true");
    let reply = ctx
        .send(
            Method::PATCH,
            &format!("/admin/v1/tags/{}", encoded(&tag)),
            &json!({ "disabled": disabled }),
        )
        .await;
    match reply.json::<BulkAnswer>() {
        Ok(answer) => see_other(&format!("/console/campaigns?changed={}", answer.changed)),
        Err(refusal) => refused(&ctx, &refusal, "/console/campaigns"),
    }
}

/// Every code of a tag, page after page, from the API.
async fn codes_of_tag(ctx: &Ctx, tag: &str) -> Result<Vec<String>, Refused> {
    let mut codes = Vec::new();
    let mut after = String::new();
    loop {
        let mut uri = format!("/admin/v1/codes?limit=1000&tag={}", encoded(tag));
        if !after.is_empty() {
            uri.push_str(&format!("&after={}", encoded(&after)));
        }
        let page: Page = ctx.get(&uri).await?;
        codes.extend(page.items.iter().filter_map(|e| e.line.code.clone()));
        match page.next {
            Some(next) if codes.len() <= MAX_ZIP_CODES => after = next,
            _ => return Ok(codes),
        }
    }
}

/// Most QR images in one zip; more is `qrlaunch qr --all --tag`'s job.
const MAX_ZIP_CODES: usize = 5_000;

/// Every QR of a tag's codes as one zip (PNG or SVG at the chosen size).
pub async fn campaign_zip(ctx: Ctx, Path(tag): Path<String>, RawQuery(query): RawQuery) -> Response {
    let format = if q(&query, "format") == "svg" { "svg" } else { "png" };
    let size = Some(q(&query, "size"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "1024".into());
    // A zip is drawn whole in memory: two at a time on a node.
    let Ok(_turn) = ctx.state.zips.try_acquire() else {
        return plain_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "two QR zips are being made on this node already: try again in a minute",
        );
    };
    let codes = match codes_of_tag(&ctx, &tag).await {
        Ok(codes) if codes.is_empty() => {
            return plain_error(StatusCode::NOT_FOUND, "no code this key can see has this tag")
        }
        Ok(codes) if codes.len() > MAX_ZIP_CODES => {
            return plain_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!(
                    "this campaign has more than {MAX_ZIP_CODES} codes: write their QR images with `qrlaunch qr --all --tag TAG --out DIR`"
                ),
            )
        }
        Ok(codes) => codes,
        Err(refusal) => return refused(&ctx, &refusal, "/console/campaigns"),
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(if format == "png" {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    });
    let mut names = std::collections::HashSet::new();
    for code in &codes {
        let uri = format!(
            "/admin/v1/codes/{}/qr?format={format}&size={}",
            encoded(code),
            encoded(&size)
        );
        let image = match ctx.api(Method::GET, &uri, None).await.ok() {
            Ok(reply) => reply.body,
            Err(refusal) => return refused(&ctx, &refusal, "/console/campaigns"),
        };
        // Two codes may differ only in characters a file name cannot hold.
        let mut name = format!("{}.{format}", safe_file_name(code));
        let mut n = 1;
        while !names.insert(name.clone()) {
            n += 1;
            name = format!("{}-{n}.{format}", safe_file_name(code));
        }
        use std::io::Write;
        if zip.start_file(name, options).is_err() || zip.write_all(&image).is_err() {
            return plain_error(StatusCode::INTERNAL_SERVER_ERROR, "the zip could not be written");
        }
    }
    let Ok(cursor) = zip.finish() else {
        return plain_error(StatusCode::INTERNAL_SERVER_ERROR, "the zip could not be written");
    };
    attachment(
        cursor.into_inner(),
        "application/zip",
        &format!("qr-{}-{format}.zip", safe_file_name(&tag)),
    )
}

/// A tag's counts as CSV: one row an entry, day and class.
pub async fn campaign_csv(ctx: Ctx, Path(tag): Path<String>, RawQuery(query): RawQuery) -> Response {
    let today = ctx.state.admin.options.days.today();
    let from = Some(q(&query, "from"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| date_string(today - 29));
    let to = Some(q(&query, "to"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| date_string(today));
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record([
        "kind",
        "key",
        "day",
        "ios",
        "android",
        "wechat",
        "wechat_scan",
        "inapp",
        "desktop",
        "other",
        "total",
    ]);
    for kind in ["code", "rule"] {
        let uri = format!(
            "/admin/v1/stats?tag={}&kind={kind}&from={}&to={}",
            encoded(&tag),
            encoded(&from),
            encoded(&to)
        );
        let stats: StatsAnswer = match ctx.get(&uri).await {
            Ok(stats) => stats,
            Err(refusal) => return refused(&ctx, &refusal, "/console/campaigns"),
        };
        for entry in &stats.entries {
            for d in &entry.days {
                let n = |v: u64| v.to_string();
                let _ = out.write_record([
                    kind.to_string(),
                    spreadsheet_safe(&entry.key),
                    d.day.clone().unwrap_or_default(),
                    n(d.ios),
                    n(d.android),
                    n(d.wechat),
                    n(d.wechat_scan),
                    n(d.inapp),
                    n(d.desktop),
                    n(d.other),
                    n(d.total),
                ]);
            }
        }
    }
    let body = out.into_inner().unwrap_or_default();
    attachment(
        body,
        "text/csv; charset=utf-8",
        &format!("counts-{}.csv", safe_file_name(&tag)),
    )
}
