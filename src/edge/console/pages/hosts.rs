//! Hosts (admin keys): unmatched URLs and verification files.

use super::*;

#[derive(Template)]
#[template(path = "console/hosts.html")]
struct HostsPage {
    f: Frame,
    notice: Option<String>,
    error: Option<String>,
    csrf: String,
    rows: Vec<HostRow>,
}

struct HostRow {
    host: String,
    unmatched: String,
    settings: bool,
    files: Vec<String>,
}

/// `?host=`: also that host's files, when it has no settings (a host may
/// serve verification files and leave unmatched URLs to 404).
pub async fn hosts(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let focus = Some(q(&query, "host")).filter(|h| !h.trim().is_empty());
    hosts_page(ctx, StatusCode::OK, None, None, focus).await
}

async fn files_of(ctx: &Ctx, host: &str) -> Vec<String> {
    match ctx
        .get::<Page>(&format!("/admin/v1/hosts/{}/files", encoded(host)))
        .await
    {
        Ok(files) => files.items.into_iter().filter_map(|f| f.line.file).collect(),
        Err(_) => Vec::new(),
    }
}

async fn hosts_page(
    ctx: Ctx,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    focus: Option<String>,
) -> Response {
    let page: Page = match ctx.get("/admin/v1/hosts?limit=1000").await {
        Ok(page) => page,
        Err(refusal) => return refused(&ctx, &refusal, "/console/"),
    };
    let mut rows = Vec::new();
    for item in page.items {
        let host = item.line.host.clone().unwrap_or_default();
        rows.push(HostRow {
            unmatched: item.line.unmatched.clone().unwrap_or_else(|| "404".into()),
            files: files_of(&ctx, &host).await,
            host,
            settings: true,
        });
    }
    if let Some(host) = focus.map(|h| h.trim().to_ascii_lowercase()) {
        if !rows.iter().any(|r| r.host == host) {
            rows.insert(
                0,
                HostRow {
                    unmatched: "404".into(),
                    files: files_of(&ctx, &host).await,
                    host,
                    settings: false,
                },
            );
        }
    }
    let page = HostsPage {
        f: ctx.frame(ctx.t.hosts),
        notice,
        error,
        csrf: ctx.session.csrf.to_string(),
        rows,
    };
    html(status, &page)
}

/// The hosts page after a change, showing the host it was about.
async fn after_host_change(ctx: Ctx, reply: crate::edge::console::ApiReply, host: String) -> Response {
    match reply.ok() {
        Ok(_) => {
            let saved = ctx.t.saved.to_string();
            hosts_page(ctx, StatusCode::OK, Some(saved), None, Some(host)).await
        }
        Err(refusal) => {
            let message = refusal.describe();
            hosts_page(ctx, refusal.status, None, Some(message), Some(host)).await
        }
    }
}

pub async fn save_host(Posted { ctx, fields }: Posted) -> Response {
    let host = fields.text("host").unwrap_or_default();
    let mut line = json!({ "host": host });
    if let Some(unmatched) = fields.text("unmatched") {
        line["unmatched"] = unmatched.into();
    }
    let reply = ctx
        .send(Method::PUT, &format!("/admin/v1/hosts/{}", encoded(&host)), &line)
        .await;
    after_host_change(ctx, reply, host).await
}

pub async fn delete_host(Posted { ctx, fields }: Posted) -> Response {
    let host = fields.text("host").unwrap_or_default();
    let reply = ctx
        .api(Method::DELETE, &format!("/admin/v1/hosts/{}", encoded(&host)), None)
        .await;
    after_host_change(ctx, reply, host).await
}

pub async fn save_file(Posted { ctx, fields }: Posted) -> Response {
    let host = fields.text("host").unwrap_or_default();
    let file = fields.text("file").unwrap_or_default();
    let body = fields.get("body").unwrap_or_default().to_string();
    let reply = ctx
        .api(
            Method::PUT,
            &format!("/admin/v1/hosts/{}/files?path={}", encoded(&host), encoded(&file)),
            Some((Body::from(body), "text/plain; charset=utf-8")),
        )
        .await;
    after_host_change(ctx, reply, host).await
}

pub async fn delete_file(Posted { ctx, fields }: Posted) -> Response {
    let host = fields.text("host").unwrap_or_default();
    let file = fields.text("file").unwrap_or_default();
    let reply = ctx
        .api(
            Method::DELETE,
            &format!("/admin/v1/hosts/{}/files?path={}", encoded(&host), encoded(&file)),
            None,
        )
        .await;
    after_host_change(ctx, reply, host).await
}
