//! The audit log with filters.

use super::*;

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditListPage {
    f: Frame,
    entry: String,
    key: String,
    from: String,
    to: String,
    error: Option<String>,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

struct AuditRow {
    time: String,
    who: String,
    client: String,
    action: String,
    kind: String,
    entry: String,
    before: String,
    after: String,
}

pub async fn audit(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let (entry, key, from, to, after) = (
        q(&query, "entry"),
        q(&query, "key"),
        q(&query, "from"),
        q(&query, "to"),
        q(&query, "after"),
    );
    let mut uri = "/admin/v1/audit?limit=50".to_string();
    for (name, value) in [
        ("entry", &entry),
        ("key", &key),
        ("from", &from),
        ("to", &to),
        ("after", &after),
    ] {
        if !value.trim().is_empty() {
            uri.push_str(&format!("&{name}={}", encoded(value.trim())));
        }
    }
    let json = |v: &serde_json::Value| if v.is_null() { String::new() } else { v.to_string() };
    let (rows, next, error, status) = match ctx.get::<AuditPage>(&uri).await {
        Ok(page) => (
            page.items
                .iter()
                .map(|a| AuditRow {
                    time: rfc3339(a.time),
                    who: format!("{} ({})", a.key.name, a.key.id),
                    client: a.client.clone().unwrap_or_default(),
                    action: a.action.clone(),
                    kind: a.kind.clone(),
                    entry: a.entry.clone(),
                    before: json(&a.before),
                    after: json(&a.after),
                })
                .collect(),
            page.next.map(|n| {
                format!(
                    "/console/audit?entry={}&key={}&from={}&to={}&after={}",
                    encoded(&entry),
                    encoded(&key),
                    encoded(&from),
                    encoded(&to),
                    encoded(&n)
                )
            }),
            None,
            StatusCode::OK,
        ),
        Err(refusal) => (Vec::new(), None, Some(refusal.describe()), refusal.status),
    };
    let page = AuditListPage {
        f: ctx.frame(ctx.t.audit),
        entry,
        key,
        from,
        to,
        error,
        rows,
        next,
    };
    html(status, &page)
}
