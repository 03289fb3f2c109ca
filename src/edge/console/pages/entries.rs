//! Codes and rules: lists with search, an entry's page (fields, QR, chart, history), the forms.

use super::*;

#[derive(Template)]
#[template(path = "console/list.html")]
struct ListPage {
    f: Frame,
    base: &'static str,
    key_label: &'static str,
    new_label: &'static str,
    can_write: bool,
    q: String,
    tag: String,
    appid: String,
    rows: Vec<ListRow>,
    next: Option<String>,
    error: Option<String>,
}

struct ListRow {
    key: String,
    href: String,
    appid: String,
    path: String,
    tags: String,
    disabled: bool,
    scans: String,
}

pub async fn codes(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    listing(ctx, Kind::Code, query).await
}

pub async fn rules(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    listing(ctx, Kind::Rule, query).await
}

async fn listing(ctx: Ctx, kind: Kind, query: Option<String>) -> Response {
    let (text, tag, appid, after) = (q(&query, "q"), q(&query, "tag"), q(&query, "appid"), q(&query, "after"));
    // A rule is found by its normalized prefix: a URL typed in any
    // spelling is normalized as the API keys it.
    let starts = match kind {
        Kind::Rule => crate::model::url_key::normalize_absolute(text.trim()).unwrap_or_else(|_| text.trim().into()),
        Kind::Code => text.trim().to_string(),
    };
    let mut uri = format!("{}?limit={PAGE_ROWS}", kind.api());
    for (name, value) in [("starts", &starts), ("tag", &tag), ("appid", &appid), ("after", &after)] {
        if !value.trim().is_empty() {
            uri.push_str(&format!("&{name}={}", encoded(value.trim())));
        }
    }
    // A refused search keeps the form (to fix it) with the API's status.
    let (page, error, status) = match ctx.get::<Page>(&uri).await {
        Ok(page) => (page, None, StatusCode::OK),
        Err(refusal) => (
            Page {
                items: Vec::new(),
                next: None,
            },
            Some(refusal.describe()),
            refusal.status,
        ),
    };
    let today = ctx.state.admin.options.days.today();
    let range = format!("from={}&to={}", date_string(today - 6), date_string(today));
    let mut rows = Vec::with_capacity(page.items.len());
    for item in &page.items {
        let key = kind.key_of(&item.line);
        let scans = match ctx
            .get::<StatsAnswer>(&with_query(&kind.api_of(&key, "/stats"), &range))
            .await
        {
            Ok(stats) => stats.total.total.to_string(),
            Err(_) => "–".into(),
        };
        rows.push(ListRow {
            href: kind.href(&key),
            key,
            appid: item.line.appid.clone().unwrap_or_default(),
            path: item.line.path.clone().unwrap_or_default(),
            tags: item.line.tags.join(" "),
            disabled: item.line.disabled,
            scans,
        });
    }
    let next = page.next.map(|after| {
        format!(
            "{}?q={}&tag={}&appid={}&after={}",
            kind.base(),
            encoded(&text),
            encoded(&tag),
            encoded(&appid),
            encoded(&after)
        )
    });
    let t = ctx.t;
    let list = ListPage {
        f: ctx.frame(if kind == Kind::Code { t.codes } else { t.rules }),
        base: kind.base(),
        key_label: if kind == Kind::Code { t.f_code } else { t.f_prefix },
        new_label: if kind == Kind::Code { t.new_code } else { t.new_rule },
        can_write: ctx.can_write(),
        q: text,
        tag,
        appid,
        rows,
        next,
        error,
    };
    html(status, &list)
}

#[derive(Template)]
#[template(path = "console/detail.html")]
struct DetailPage {
    f: Frame,
    notice: Option<String>,
    fields: Vec<(&'static str, String)>,
    disabled: bool,
    scheme: String,
    public_url: Option<String>,
    can_write: bool,
    csrf: String,
    edit_href: String,
    state_href: String,
    delete_href: String,
    qr: Option<QrLinks>,
    /// Why the QR code would be wrong on a poster (no `--public-url`).
    qr_warning: Option<String>,
    hidden: Vec<(&'static str, String)>,
    from: String,
    to: String,
    stats_error: Option<String>,
    chart: String,
    class_names: Vec<&'static str>,
    days: Vec<(String, Vec<u64>, u64)>,
    history: Vec<HistoryRow>,
}

struct QrLinks {
    preview: String,
    action: String,
    png: String,
    svg: String,
}

struct HistoryRow {
    time: String,
    who: String,
    action: String,
    after: String,
}

pub async fn code(ctx: Ctx, Path(code): Path<String>, RawQuery(query): RawQuery) -> Response {
    detail(ctx, Kind::Code, code, query).await
}

pub async fn rule(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let prefix = q(&query, "prefix");
    detail(ctx, Kind::Rule, prefix, query).await
}

/// The labelled fields of an entry, as the form names them.
fn labelled(t: &Text, line: &Line) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut put = |label: &'static str, value: &Option<String>| {
        if let Some(v) = value {
            out.push((label, v.clone()));
        }
    };
    put(t.f_code, &line.code);
    put(t.f_prefix, &line.prefix);
    put(t.f_appid, &line.appid);
    put(t.f_path, &line.path);
    put(t.f_query, &line.query);
    put(t.f_env, &line.env_version);
    put(t.f_fallback, &line.fallback_url);
    put(t.f_valid_from, &line.valid_from);
    put(t.f_valid_until, &line.valid_until);
    put(t.f_count_by, &line.count_by);
    if !line.tags.is_empty() {
        out.push((t.f_tags, line.tags.join(" ")));
    }
    out
}

async fn detail(ctx: Ctx, kind: Kind, key: String, query: Option<String>) -> Response {
    let entry: StoredEntry = match ctx.get(&kind.api_of(&key, "")).await {
        Ok(entry) => entry,
        Err(refusal) => return refused(&ctx, &refusal, kind.base()),
    };
    let line = &entry.line;
    let key = kind.key_of(line);
    let t = ctx.t;
    let scans = scans_of(&ctx, kind, &key, &query).await;
    let history = history_of(&ctx, &key).await;
    let scheme = crate::model::scheme_url::plain(
        line.appid.as_deref().unwrap_or(""),
        line.path.as_deref().unwrap_or(""),
        line.query.as_deref().unwrap_or(""),
        line.env_version.as_deref().unwrap_or("release"),
    );
    let (public_url, qr) = match kind {
        Kind::Code => (
            Some(crate::edge::admin::qr::public_url(&ctx.state.admin, &key)),
            Some(QrLinks::of(&key)),
        ),
        Kind::Rule => (None, None),
    };
    let [edit_href, state_href, delete_href] = action_links(kind, &key);
    let notice = Some(t.saved.to_string()).filter(|_| !q(&query, "saved").is_empty());
    let page = DetailPage {
        f: ctx.frame(key.clone()),
        notice,
        fields: labelled(t, line),
        disabled: line.disabled,
        scheme,
        public_url,
        can_write: ctx.can_write(),
        csrf: ctx.session.csrf.to_string(),
        edit_href,
        state_href,
        delete_href,
        qr_warning: qr
            .as_ref()
            .and_then(|_| crate::edge::admin::qr::loopback_warning(&ctx.state.admin)),
        qr,
        hidden: match kind {
            Kind::Rule => vec![("prefix", key.clone())],
            Kind::Code => Vec::new(),
        },
        from: scans.from,
        to: scans.to,
        stats_error: scans.error,
        chart: scans.chart,
        class_names: vec![
            t.class_ios,
            t.class_android,
            t.class_wechat,
            t.class_wechat_scan,
            t.class_inapp,
            t.class_desktop,
            t.class_other,
        ],
        days: scans.days,
        history,
    };
    html(StatusCode::OK, &page)
}

/// An entry's scans over the asked range (the last 30 days unless asked):
/// the chart and the rows of the table under it.
struct Scans {
    from: String,
    to: String,
    chart: String,
    days: Vec<(String, Vec<u64>, u64)>,
    error: Option<String>,
}

async fn scans_of(ctx: &Ctx, kind: Kind, key: &str, query: &Option<String>) -> Scans {
    let today = ctx.state.admin.options.days.today();
    let asked = |name: &str, default: i32| {
        Some(q(query, name))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| date_string(default))
    };
    let (from, to) = (asked("from", today - 29), asked("to", today));
    let stats = ctx
        .get::<StatsAnswer>(&with_query(
            &kind.api_of(key, "/stats"),
            &format!("from={}&to={}", encoded(&from), encoded(&to)),
        ))
        .await;
    match stats {
        Ok(stats) => {
            let every = chart::every_day(&stats.from, &stats.to, &stats.days);
            let days = every
                .iter()
                .filter(|d| d.total > 0 || d.other > 0)
                .map(|d| {
                    (
                        d.day.clone().unwrap_or_default(),
                        vec![d.ios, d.android, d.wechat, d.wechat_scan, d.inapp, d.desktop, d.other],
                        d.total,
                    )
                })
                .collect();
            Scans {
                chart: chart::bars(ctx.t, "entry", &every),
                from,
                to,
                days,
                error: None,
            }
        }
        Err(refusal) => Scans {
            from,
            to,
            chart: String::new(),
            days: Vec::new(),
            error: Some(refusal.error.message),
        },
    }
}

/// The entry's last 20 audit lines.
async fn history_of(ctx: &Ctx, key: &str) -> Vec<HistoryRow> {
    match ctx
        .get::<AuditPage>(&format!("/admin/v1/audit?limit=20&entry={}", encoded(key)))
        .await
    {
        Ok(page) => page
            .items
            .into_iter()
            .map(|a| HistoryRow {
                time: rfc3339(a.time),
                who: a.key.name,
                action: a.action,
                after: if a.after.is_null() {
                    String::new()
                } else {
                    a.after.to_string()
                },
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl QrLinks {
    fn of(code: &str) -> QrLinks {
        let base = format!("/console/codes/{}/qr", encoded(code));
        QrLinks {
            preview: format!("{base}?format=svg&size=256"),
            png: format!("{base}?format=png&size=1024&download=1"),
            svg: format!("{base}?format=svg&size=1024&download=1"),
            action: base,
        }
    }
}

/// Where an entry's edit page, disable/enable and delete forms go.
fn action_links(kind: Kind, key: &str) -> [String; 3] {
    match kind {
        Kind::Code => {
            let base = format!("/console/codes/{}", encoded(key));
            [
                format!("{base}/edit"),
                format!("{base}/state"),
                format!("{base}/delete"),
            ]
        }
        Kind::Rule => {
            let p = encoded(key);
            [
                format!("/console/rule/edit?prefix={p}"),
                format!("/console/rule/state?prefix={p}"),
                format!("/console/rule/delete?prefix={p}"),
            ]
        }
    }
}

/// The QR image of a code, from the API; with `download=1`, as a file.
pub async fn code_qr(ctx: Ctx, Path(code): Path<String>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let download = crate::model::percent::get(&query, "download").is_some();
    let format = crate::model::percent::get(&query, "format")
        .and_then(Result::ok)
        .unwrap_or_else(|| "svg".into());
    let mut api = String::new();
    for name in ["format", "size", "margin", "ec"] {
        if let Some(Ok(value)) = crate::model::percent::get(&query, name) {
            api.push_str(&format!("&{name}={}", encoded(&value)));
        }
    }
    let uri = format!("/admin/v1/codes/{}/qr?{}", encoded(&code), api.trim_start_matches('&'));
    let reply = match ctx.api(Method::GET, &uri, None).await.ok() {
        Ok(reply) => reply,
        Err(refusal) => return refused(&ctx, &refusal, &format!("/console/codes/{}", encoded(&code))),
    };
    let content_type = reply
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = (StatusCode::OK, reply.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=60"));
    if download {
        let extension = if format == "png" { "png" } else { "svg" };
        let name = safe_file_name(&code);
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"qr-{name}.{extension}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

#[derive(Template)]
#[template(path = "console/entry_form.html")]
struct EntryForm {
    f: Frame,
    action: String,
    csrf: String,
    inputs: Vec<Input>,
    disabled: bool,
    error: Option<String>,
}

struct Input {
    name: &'static str,
    label: &'static str,
    value: String,
    hint: &'static str,
    error: Option<String>,
    readonly: bool,
}

/// The form of a code or rule, filled with `values`, the API's refusal
/// shown next to its field (or above the form when it names none).
fn entry_form(
    ctx: &Ctx,
    kind: Kind,
    heading: String,
    action: String,
    values: &Fields,
    refusal: Option<&Refused>,
    editing: bool,
) -> Response {
    let t = ctx.t;
    let mut names: Vec<(&'static str, &'static str, &'static str)> = match kind {
        Kind::Code => vec![("code", t.f_code, if editing { "" } else { t.code_hint })],
        Kind::Rule => vec![("prefix", t.f_prefix, "")],
    };
    names.extend([
        ("appid", t.f_appid, ""),
        ("path", t.f_path, ""),
        ("query", t.f_query, ""),
        ("env_version", t.f_env, ""),
        ("fallback_url", t.f_fallback, ""),
        ("valid_from", t.f_valid_from, t.time_hint),
        ("valid_until", t.f_valid_until, t.time_hint),
        ("tags", t.f_tags, t.tags_hint),
    ]);
    if kind == Kind::Rule {
        names.push(("count_by", t.f_count_by, ""));
    }
    let field_of_error = refusal.and_then(|r| r.error.field.clone());
    let mut placed = false;
    let inputs = names
        .into_iter()
        .map(|(name, label, hint)| {
            let error = match (&field_of_error, refusal) {
                (Some(field), Some(r)) if field == name || (name == "env_version" && field == "env") => {
                    placed = true;
                    Some(r.error.message.clone())
                }
                _ => None,
            };
            Input {
                name,
                label,
                value: values
                    .get(name)
                    .unwrap_or(if name == "env_version" { "release" } else { "" })
                    .into(),
                hint,
                error,
                readonly: editing && (name == "code" || name == "prefix"),
            }
        })
        .collect();
    let status = refusal.map_or(StatusCode::OK, |r| r.status);
    let error = refusal.filter(|_| !placed).map(|r| r.error.message.clone());
    html(
        status,
        &EntryForm {
            f: ctx.frame(heading),
            action,
            csrf: ctx.session.csrf.to_string(),
            inputs,
            disabled: values.ticked("disabled"),
            error,
        },
    )
}

pub async fn new_code(ctx: Ctx) -> Response {
    let heading = ctx.t.new_code.to_string();
    entry_form(
        &ctx,
        Kind::Code,
        heading,
        "/console/codes/new".into(),
        &Fields::default(),
        None,
        false,
    )
}

pub async fn new_rule(ctx: Ctx) -> Response {
    let heading = ctx.t.new_rule.to_string();
    entry_form(
        &ctx,
        Kind::Rule,
        heading,
        "/console/rules/new".into(),
        &Fields::default(),
        None,
        false,
    )
}

pub async fn create_code(posted: Posted) -> Response {
    create(posted, Kind::Code).await
}

pub async fn create_rule(posted: Posted) -> Response {
    create(posted, Kind::Rule).await
}

async fn create(Posted { ctx, fields }: Posted, kind: Kind) -> Response {
    let line = form::line_of(&fields);
    let body = serde_json::to_value(&line).unwrap_or_default();
    match ctx.send(Method::POST, kind.api(), &body).await.json::<StoredEntry>() {
        Ok(created) => see_other(&format!(
            "{}{}saved=1",
            kind.href(&kind.key_of(&created.line)),
            sep(kind)
        )),
        Err(refusal) => {
            let (heading, action) = match kind {
                Kind::Code => (ctx.t.new_code, "/console/codes/new"),
                Kind::Rule => (ctx.t.new_rule, "/console/rules/new"),
            };
            entry_form(
                &ctx,
                kind,
                heading.into(),
                action.into(),
                &fields,
                Some(&refusal),
                false,
            )
        }
    }
}

/// What comes between an entry's page and a query parameter.
fn sep(kind: Kind) -> &'static str {
    match kind {
        Kind::Code => "?",
        Kind::Rule => "&",
    }
}

pub async fn edit_code(ctx: Ctx, Path(code): Path<String>) -> Response {
    edit(ctx, Kind::Code, code).await
}

pub async fn edit_rule(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let prefix = q(&query, "prefix");
    edit(ctx, Kind::Rule, prefix).await
}

fn edit_action(kind: Kind, key: &str) -> String {
    match kind {
        Kind::Code => format!("/console/codes/{}/edit", encoded(key)),
        Kind::Rule => format!("/console/rule/edit?prefix={}", encoded(key)),
    }
}

async fn edit(ctx: Ctx, kind: Kind, key: String) -> Response {
    let entry: StoredEntry = match ctx.get(&kind.api_of(&key, "")).await {
        Ok(entry) => entry,
        Err(refusal) => return refused(&ctx, &refusal, kind.base()),
    };
    let key = kind.key_of(&entry.line);
    edit_form(&ctx, kind, &key, &form::fields_of(&entry.line), None)
}

/// The edit form of the entry at `key`, with a refusal next to its field.
fn edit_form(ctx: &Ctx, kind: Kind, key: &str, values: &Fields, refusal: Option<&Refused>) -> Response {
    let heading = format!("{} {key}", ctx.t.edit);
    entry_form(ctx, kind, heading, edit_action(kind, key), values, refusal, true)
}

pub async fn save_code(Path(code): Path<String>, posted: Posted) -> Response {
    save(posted, Kind::Code, code).await
}

pub async fn save_rule(RawQuery(query): RawQuery, posted: Posted) -> Response {
    let prefix = q(&query, "prefix");
    save(posted, Kind::Rule, prefix).await
}

/// Replaces the entry with what the form holds (`PUT`: every field).
async fn save(Posted { ctx, mut fields }: Posted, kind: Kind, key: String) -> Response {
    // The key is the page's, whatever the form says.
    fields.set(if kind == Kind::Code { "code" } else { "prefix" }, &key);
    let line = form::line_of(&fields);
    let body = serde_json::to_value(&line).unwrap_or_default();
    match ctx.send(Method::PUT, &kind.api_of(&key, ""), &body).await.ok() {
        Ok(_) => see_other(&format!("{}{}saved=1", kind.href(&key), sep(kind))),
        Err(refusal) => edit_form(&ctx, kind, &key, &fields, Some(&refusal)),
    }
}

pub async fn code_state(Path(code): Path<String>, posted: Posted) -> Response {
    set_state(posted, Kind::Code, code).await
}

pub async fn rule_state(RawQuery(query): RawQuery, posted: Posted) -> Response {
    let prefix = q(&query, "prefix");
    set_state(posted, Kind::Rule, prefix).await
}

/// Disables or enables one entry (a merge patch of `disabled`).
async fn set_state(Posted { ctx, fields }: Posted, kind: Kind, key: String) -> Response {
    let disabled = fields.get("disabled") == Some("true");
    match ctx
        .send(Method::PATCH, &kind.api_of(&key, ""), &json!({ "disabled": disabled }))
        .await
        .ok()
    {
        Ok(_) => see_other(&format!("{}{}saved=1", kind.href(&key), sep(kind))),
        Err(refusal) => refused(&ctx, &refusal, &kind.href(&key)),
    }
}

pub async fn delete_code(Path(code): Path<String>, posted: Posted) -> Response {
    delete(posted, Kind::Code, code).await
}

pub async fn delete_rule(RawQuery(query): RawQuery, posted: Posted) -> Response {
    let prefix = q(&query, "prefix");
    delete(posted, Kind::Rule, prefix).await
}

async fn delete(Posted { ctx, .. }: Posted, kind: Kind, key: String) -> Response {
    match ctx.api(Method::DELETE, &kind.api_of(&key, ""), None).await.ok() {
        Ok(_) => see_other(kind.base()),
        Err(refusal) => refused(&ctx, &refusal, &kind.href(&key)),
    }
}
