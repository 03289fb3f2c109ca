//! The console's pages and forms. Each reads and writes through the admin
//! API ([`Ctx::api`]) and renders what it answered; a refusal is shown in
//! the API's words (a field error next to its field).

use super::chart;
use super::form::{self, Fields};
use super::text::Text;
use super::{html, session_cookie, ConsoleState, Ctx, Frame, Posted, Refused};
use crate::edge::api::{
    AuditPage, BulkAnswer, DayCounts, ImportAnswer, KeyInfo, KeyList, Page, StatsAnswer, StoredEntry, TagList,
};
use crate::model::domain::Line;
use crate::model::percent::encoded;
use crate::replication::stats::date_string;
use askama::Template;
use axum::body::Body;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

/// Rows of a listing page.
const PAGE_ROWS: u32 = 25;

fn q(query: &Option<String>, name: &str) -> String {
    crate::model::percent::get(query.as_deref().unwrap_or(""), name)
        .and_then(Result::ok)
        .unwrap_or_default()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

// ---------------------------------------------------------------- errors

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    f: Frame,
    message: String,
    back: String,
}

/// The API's refusal as a page with its status.
fn refused(ctx: &Ctx, refusal: &Refused, back: &str) -> Response {
    let heading = if refusal.status == StatusCode::NOT_FOUND {
        ctx.t.not_found
    } else {
        ctx.t.refused
    };
    html(
        refusal.status,
        &ErrorPage {
            f: ctx.frame(heading),
            message: refusal.error.message.clone(),
            back: back.into(),
        },
    )
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    f: Frame,
    error: Option<String>,
}

fn sign_in_form(t: &'static Text, status: StatusCode, error: Option<String>) -> Response {
    html(
        status,
        &SignInPage {
            f: Frame {
                t,
                heading: t.sign_in.into(),
                nav: None,
            },
            error,
        },
    )
}

pub async fn sign_in_page(headers: HeaderMap) -> Response {
    sign_in_form(Text::of(super::lang_of(&headers)), StatusCode::OK, None)
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    key: String,
}

/// Checks the key as the API would (throttled per address), then starts a
/// session acting with it.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    client: Option<axum::Extension<crate::edge::admin::auth::ClientAddr>>,
    headers: HeaderMap,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let t = Text::of(super::lang_of(&headers));
    let Ok(axum::Form(SignIn { key })) = form else {
        return sign_in_form(t, StatusCode::UNPROCESSABLE_ENTITY, Some(t.wrong_key.into()));
    };
    let key = key.trim();
    let bearer = format!("Bearer {key}");
    let client = client.map(|c| c.0 .0);
    use crate::edge::admin::auth::{check, Refusal};
    match check(&state.admin, client, Some(bearer.as_bytes())) {
        Ok(_) => {
            let id = state.sessions.start(key);
            let mut response = see_other("/console/");
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&state, Some(&id)));
            response
        }
        Err(Refusal::Throttled) => sign_in_form(t, StatusCode::TOO_MANY_REQUESTS, Some(t.throttled.into())),
        Err(Refusal::Unauthorized) => sign_in_form(t, StatusCode::UNAUTHORIZED, Some(t.wrong_key.into())),
    }
}

pub async fn sign_out(State(state): State<ConsoleState>, posted: Posted) -> Response {
    state.sessions.end(&posted.ctx.id);
    let mut response = see_other("/console/sign-in");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, None));
    response
}

/// `?to=zh|en&back=/console/…`: remembers the language in a cookie.
pub async fn switch_language(State(state): State<ConsoleState>, RawQuery(query): RawQuery) -> Response {
    let to = if q(&query, "to") == "zh" { "zh" } else { "en" };
    let back = q(&query, "back");
    // Only back into the console: never a redirect to elsewhere.
    let back = if back.starts_with("/console") && !back.contains("//") && !back.contains('\\') {
        back
    } else {
        "/console/".into()
    };
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let mut response = see_other(&back);
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{}={to}; Path=/console; Max-Age=31536000; SameSite=Strict; HttpOnly{secure}",
        super::LANG_COOKIE
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

// ---------------------------------------------------------------- overview

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    f: Frame,
    totals: Option<Totals>,
    node: NodeFacts,
}

struct Totals {
    today: u64,
    week: u64,
    month: u64,
    chart: String,
    classes: Vec<(&'static str, u64)>,
    top_codes: Vec<Top>,
    top_rules: Vec<Top>,
    lost: Vec<Top>,
}

struct Top {
    key: String,
    href: String,
    total: u64,
}

struct NodeFacts {
    applied: i64,
    head: i64,
    lag: String,
    entries: usize,
}

fn add_day(into: &mut DayCounts, d: &DayCounts) {
    into.ios += d.ios;
    into.android += d.android;
    into.wechat += d.wechat;
    into.inapp += d.inapp;
    into.desktop += d.desktop;
    into.other += d.other;
    into.not_found += d.not_found;
    into.total += d.total;
}

fn class_totals(t: &Text, total: &DayCounts) -> Vec<(&'static str, u64)> {
    vec![
        (t.class_ios, total.ios),
        (t.class_android, total.android),
        (t.class_wechat, total.wechat),
        (t.class_inapp, total.inapp),
        (t.class_desktop, total.desktop),
        (t.class_other, total.other),
    ]
}

pub async fn overview(ctx: Ctx) -> Response {
    let admin = &ctx.state.admin;
    let status = admin.writer.replica().status();
    let snapshot = admin.writer.replica().load();
    let lag = status.lag();
    let node = NodeFacts {
        applied: status.applied,
        head: status.store_head,
        lag: if lag.is_zero() {
            "0 s".into()
        } else {
            format!("{:.1} s", lag.as_secs_f64())
        },
        entries: snapshot.code_count() + snapshot.rule_count(),
    };
    let today = admin.options.days.today();
    let (from, to) = (date_string(today - 29), date_string(today));
    let unscoped = ctx.is_admin() || ctx.principal.scopes.is_empty();
    let totals = if unscoped {
        let range = format!("from={from}&to={to}&top=10");
        let codes: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=code&{range}")).await;
        let rules: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=rule&{range}")).await;
        let hosts: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=host&{range}")).await;
        match (codes, rules, hosts) {
            (Ok(codes), Ok(rules), Ok(hosts)) => {
                let mut merged = chart::every_day(&from, &to, &codes.days);
                for (day, r) in merged.iter_mut().zip(chart::every_day(&from, &to, &rules.days)) {
                    add_day(day, &r);
                }
                let sum = |days: &[DayCounts]| days.iter().map(|d| d.total).sum::<u64>();
                let mut total = codes.total.clone();
                add_day(&mut total, &rules.total);
                let top = |entries: &[crate::edge::api::EntryTotal], href: &dyn Fn(&str) -> String| {
                    entries
                        .iter()
                        .map(|e| Top {
                            key: e.key.clone(),
                            href: href(&e.key),
                            total: e.total,
                        })
                        .collect::<Vec<_>>()
                };
                Some(Totals {
                    today: merged.last().map_or(0, |d| d.total),
                    week: sum(&merged[merged.len().saturating_sub(7)..]),
                    month: sum(&merged),
                    chart: chart::bars(ctx.t, "overview", &merged),
                    classes: class_totals(ctx.t, &total),
                    top_codes: top(&codes.entries, &|k| format!("/console/codes/{}", encoded(k))),
                    top_rules: top(&rules.entries, &|k| format!("/console/rule?prefix={}", encoded(k))),
                    lost: top(&hosts.entries, &|_| String::new()),
                })
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return refused(&ctx, &e, "/console/"),
        }
    } else {
        None
    };
    let page = OverviewPage {
        f: ctx.frame(ctx.t.overview),
        totals,
        node,
    };
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- listings

/// Codes or rules, as one set of pages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Code,
    Rule,
}

impl Kind {
    fn api(self) -> &'static str {
        match self {
            Kind::Code => "/admin/v1/codes",
            Kind::Rule => "/admin/v1/rules",
        }
    }

    fn base(self) -> &'static str {
        match self {
            Kind::Code => "/console/codes",
            Kind::Rule => "/console/rules",
        }
    }

    /// The console page of one entry.
    fn href(self, key: &str) -> String {
        match self {
            Kind::Code => format!("/console/codes/{}", encoded(key)),
            Kind::Rule => format!("/console/rule?prefix={}", encoded(key)),
        }
    }

    /// An API path of one entry: `suffix` after the code, or the rule's
    /// `?prefix=`.
    fn api_of(self, key: &str, suffix: &str) -> String {
        match self {
            Kind::Code => format!("/admin/v1/codes/{}{suffix}", encoded(key)),
            Kind::Rule => format!("/admin/v1/rules{suffix}?prefix={}", encoded(key)),
        }
    }

    fn key_of(self, line: &Line) -> String {
        match self {
            Kind::Code => line.code.clone().unwrap_or_default(),
            Kind::Rule => line.prefix.clone().unwrap_or_default(),
        }
    }
}

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
    let (page, error) = match ctx.get::<Page>(&uri).await {
        Ok(page) => (page, None),
        Err(refusal) => (
            Page {
                items: Vec::new(),
                next: None,
            },
            Some(refusal.error.message),
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
    html(StatusCode::OK, &list)
}

/// `uri` with `extra` added to its query.
fn with_query(uri: &str, extra: &str) -> String {
    if uri.contains('?') {
        format!("{uri}&{extra}")
    } else {
        format!("{uri}?{extra}")
    }
}

// ---------------------------------------------------------------- one entry

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
    // The chart's range: the last 30 days unless asked.
    let today = ctx.state.admin.options.days.today();
    let from = Some(q(&query, "from"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| date_string(today - 29));
    let to = Some(q(&query, "to"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| date_string(today));
    let stats = ctx
        .get::<StatsAnswer>(&with_query(
            &kind.api_of(&key, "/stats"),
            &format!("from={}&to={}", encoded(&from), encoded(&to)),
        ))
        .await;
    let (chart, days, stats_error) = match stats {
        Ok(stats) => {
            let every = chart::every_day(&stats.from, &stats.to, &stats.days);
            let rows = every
                .iter()
                .filter(|d| d.total > 0 || d.other > 0)
                .map(|d| {
                    (
                        d.day.clone().unwrap_or_default(),
                        vec![d.ios, d.android, d.wechat, d.inapp, d.desktop, d.other],
                        d.total,
                    )
                })
                .collect();
            (chart::bars(t, "entry", &every), rows, None)
        }
        Err(refusal) => (String::new(), Vec::new(), Some(refusal.error.message)),
    };
    let history = match ctx
        .get::<AuditPage>(&format!("/admin/v1/audit?limit=20&entry={}", encoded(&key)))
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
    };
    let scheme = crate::model::scheme_url::plain(
        line.appid.as_deref().unwrap_or(""),
        line.path.as_deref().unwrap_or(""),
        line.query.as_deref().unwrap_or(""),
        line.env_version.as_deref().unwrap_or("release"),
    );
    let (public_url, qr) = match kind {
        Kind::Code => {
            let base = format!("/console/codes/{}/qr", encoded(&key));
            (
                Some(crate::edge::admin::qr::public_url(&ctx.state.admin, &key)),
                Some(QrLinks {
                    preview: format!("{base}?format=svg&size=256"),
                    png: format!("{base}?format=png&size=1024&download=1"),
                    svg: format!("{base}?format=svg&size=1024&download=1"),
                    action: base,
                }),
            )
        }
        Kind::Rule => (None, None),
    };
    let (edit_href, state_href, delete_href) = match kind {
        Kind::Code => {
            let base = format!("/console/codes/{}", encoded(&key));
            (
                format!("{base}/edit"),
                format!("{base}/state"),
                format!("{base}/delete"),
            )
        }
        Kind::Rule => {
            let p = encoded(&key);
            (
                format!("/console/rule/edit?prefix={p}"),
                format!("/console/rule/state?prefix={p}"),
                format!("/console/rule/delete?prefix={p}"),
            )
        }
    };
    let notice = match q(&query, "saved").as_str() {
        "" => None,
        _ => Some(t.saved.to_string()),
    };
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
        qr,
        hidden: match kind {
            Kind::Rule => vec![("prefix", key.clone())],
            Kind::Code => Vec::new(),
        },
        from,
        to,
        stats_error,
        chart,
        class_names: vec![
            t.class_ios,
            t.class_android,
            t.class_wechat,
            t.class_inapp,
            t.class_desktop,
            t.class_other,
        ],
        days,
        history,
    };
    html(StatusCode::OK, &page)
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

/// A name fit for a file: characters other than letters, digits, `-` and
/// `_` become `_`.
fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ---------------------------------------------------------------- entry forms

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
    let heading = format!("{} {key}", ctx.t.edit);
    entry_form(
        &ctx,
        kind,
        heading,
        edit_action(kind, &key),
        &form::fields_of(&entry.line),
        None,
        true,
    )
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
    let name = if kind == Kind::Code { "code" } else { "prefix" };
    fields = {
        let mut kept = Fields::default();
        kept.push(name, &key);
        for (k, v) in fields_iter(&fields) {
            if k != name {
                kept.push(k, v);
            }
        }
        kept
    };
    let line = form::line_of(&fields);
    let body = serde_json::to_value(&line).unwrap_or_default();
    match ctx.send(Method::PUT, &kind.api_of(&key, ""), &body).await.ok() {
        Ok(_) => see_other(&format!("{}{}saved=1", kind.href(&key), sep(kind))),
        Err(refusal) => {
            let heading = format!("{} {key}", ctx.t.edit);
            entry_form(
                &ctx,
                kind,
                heading,
                edit_action(kind, &key),
                &fields,
                Some(&refusal),
                true,
            )
        }
    }
}

fn fields_iter(fields: &Fields) -> impl Iterator<Item = (&str, &str)> {
    [
        "code",
        "prefix",
        "appid",
        "path",
        "query",
        "env_version",
        "fallback_url",
        "valid_from",
        "valid_until",
        "tags",
        "count_by",
        "disabled",
    ]
    .into_iter()
    .filter_map(|name| fields.get(name).map(|v| (name, v)))
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

// ---------------------------------------------------------------- campaigns

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
    scans: u64,
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
        let mut scans = 0;
        for kind in ["code", "rule"] {
            let uri = format!("/admin/v1/stats?tag={}&kind={kind}&top=1&{range}", encoded(&tag.tag));
            if let Ok(stats) = ctx.get::<StatsAnswer>(&uri).await {
                scans += stats.total.total;
            }
        }
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

/// Disables or enables every code and rule of a tag.
pub async fn campaign_state(Path(tag): Path<String>, Posted { ctx, fields }: Posted) -> Response {
    let disabled = fields.get("disabled") == Some("true");
    let mut changed = 0;
    for api in ["/admin/v1/codes", "/admin/v1/rules"] {
        let reply = ctx
            .send(
                Method::PATCH,
                &format!("{api}?tag={}", encoded(&tag)),
                &json!({ "disabled": disabled }),
            )
            .await;
        match reply.json::<BulkAnswer>() {
            Ok(answer) => changed += answer.changed,
            // No rule (or no code) has the tag: nothing to change there.
            Err(refusal) if refusal.status == StatusCode::NOT_FOUND => {}
            Err(refusal) => return refused(&ctx, &refusal, "/console/campaigns"),
        }
    }
    see_other(&format!("/console/campaigns?changed={changed}"))
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
            Some(next) if codes.len() < MAX_ZIP_CODES => after = next,
            _ => return Ok(codes),
        }
    }
}

/// Most QR images in one zip.
const MAX_ZIP_CODES: usize = 10_000;

/// Every QR of a tag's codes as one zip (PNG or SVG at the chosen size).
pub async fn campaign_zip(ctx: Ctx, Path(tag): Path<String>, RawQuery(query): RawQuery) -> Response {
    let format = if q(&query, "format") == "svg" { "svg" } else { "png" };
    let size = Some(q(&query, "size"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "1024".into());
    let codes = match codes_of_tag(&ctx, &tag).await {
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
            return super::plain_error(StatusCode::INTERNAL_SERVER_ERROR, "the zip could not be written");
        }
    }
    let Ok(cursor) = zip.finish() else {
        return super::plain_error(StatusCode::INTERNAL_SERVER_ERROR, "the zip could not be written");
    };
    attachment(
        cursor.into_inner(),
        "application/zip",
        &format!("qr-{}-{format}.zip", safe_file_name(&tag)),
    )
}

fn attachment(body: impl Into<Body>, content_type: &'static str, name: &str) -> Response {
    let mut response = (StatusCode::OK, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
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
        "kind", "key", "day", "ios", "android", "wechat", "inapp", "desktop", "other", "total",
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
                    entry.key.clone(),
                    d.day.clone().unwrap_or_default(),
                    n(d.ios),
                    n(d.android),
                    n(d.wechat),
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

// ---------------------------------------------------------------- import

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
        return super::BadToken.into_response();
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

// ---------------------------------------------------------------- hosts

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

pub async fn hosts(ctx: Ctx) -> Response {
    hosts_page(ctx, StatusCode::OK, None, None).await
}

async fn hosts_page(ctx: Ctx, status: StatusCode, notice: Option<String>, error: Option<String>) -> Response {
    let page: Page = match ctx.get("/admin/v1/hosts?limit=1000").await {
        Ok(page) => page,
        Err(refusal) => return refused(&ctx, &refusal, "/console/"),
    };
    let mut rows = Vec::new();
    for item in page.items {
        let host = item.line.host.clone().unwrap_or_default();
        let files = match ctx
            .get::<Page>(&format!("/admin/v1/hosts/{}/files", encoded(&host)))
            .await
        {
            Ok(files) => files.items.into_iter().filter_map(|f| f.line.file).collect(),
            Err(_) => Vec::new(),
        };
        rows.push(HostRow {
            unmatched: item.line.unmatched.clone().unwrap_or_else(|| "404".into()),
            host,
            settings: true,
            files,
        });
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

async fn after_host_change(ctx: Ctx, reply: super::ApiReply) -> Response {
    match reply.ok() {
        Ok(_) => {
            let saved = ctx.t.saved.to_string();
            hosts_page(ctx, StatusCode::OK, Some(saved), None).await
        }
        Err(refusal) => {
            let message = match &refusal.error.field {
                Some(field) => format!("{field}: {}", refusal.error.message),
                None => refusal.error.message.clone(),
            };
            hosts_page(ctx, refusal.status, None, Some(message)).await
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
    after_host_change(ctx, reply).await
}

pub async fn delete_host(Posted { ctx, fields }: Posted) -> Response {
    let host = fields.text("host").unwrap_or_default();
    let reply = ctx
        .api(Method::DELETE, &format!("/admin/v1/hosts/{}", encoded(&host)), None)
        .await;
    after_host_change(ctx, reply).await
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
    after_host_change(ctx, reply).await
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
    after_host_change(ctx, reply).await
}

// ---------------------------------------------------------------- keys

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    f: Frame,
    secret: Option<String>,
    error: Option<String>,
    csrf: String,
    rows: Vec<KeyRow>,
}

struct KeyRow {
    id: String,
    name: String,
    role: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
}

pub async fn keys(ctx: Ctx) -> Response {
    keys_page(ctx, StatusCode::OK, None, None).await
}

async fn keys_page(ctx: Ctx, status: StatusCode, secret: Option<String>, error: Option<String>) -> Response {
    let list: KeyList = match ctx.get("/admin/v1/keys").await {
        Ok(list) => list,
        Err(refusal) => return refused(&ctx, &refusal, "/console/"),
    };
    let t = ctx.t;
    let rows = list
        .items
        .into_iter()
        .map(|k: KeyInfo| {
            let mut scopes = Vec::new();
            for (label, values) in [(t.f_tags, &k.tags), (t.key_hosts, &k.hosts), (t.key_appids, &k.appids)] {
                if !values.is_empty() {
                    scopes.push(format!("{label}: {}", values.join(" ")));
                }
            }
            KeyRow {
                id: k.id,
                name: k.name,
                role: k.role,
                scopes: scopes.join("; "),
                created: rfc3339(k.created),
                expires: k.expires.map(rfc3339).unwrap_or_default(),
                last_used: k.last_used.map(rfc3339).unwrap_or_default(),
            }
        })
        .collect();
    let page = KeysPage {
        f: ctx.frame(ctx.t.keys),
        secret,
        error,
        csrf: ctx.session.csrf.to_string(),
        rows,
    };
    html(status, &page)
}

async fn after_key_change(ctx: Ctx, reply: super::ApiReply) -> Response {
    let status = reply.status;
    match reply.json::<serde_json::Value>() {
        Ok(answer) => {
            let secret = answer["secret"].as_str().map(str::to_string);
            keys_page(ctx, StatusCode::OK, secret, None).await
        }
        // A delete answers 204 without a body.
        Err(_) if status.is_success() => keys_page(ctx, StatusCode::OK, None, None).await,
        Err(refusal) => {
            let message = match &refusal.error.field {
                Some(field) => format!("{field}: {}", refusal.error.message),
                None => refusal.error.message.clone(),
            };
            keys_page(ctx, refusal.status, None, Some(message)).await
        }
    }
}

pub async fn create_key(Posted { ctx, fields }: Posted) -> Response {
    let list = |name: &str| form::split_tags(fields.get(name).unwrap_or(""));
    let mut key = json!({
        "name": fields.get("name").unwrap_or("").trim(),
        "role": fields.get("role").unwrap_or("viewer"),
        "tags": list("tags"),
        "hosts": list("hosts"),
        "appids": list("appids"),
    });
    if let Some(expires) = fields.text("expires") {
        key["expires"] = expires.into();
    }
    let reply = ctx.send(Method::POST, "/admin/v1/keys", &key).await;
    after_key_change(ctx, reply).await
}

pub async fn rotate_key(Path(id): Path<String>, Posted { ctx, .. }: Posted) -> Response {
    let reply = ctx
        .api(Method::POST, &format!("/admin/v1/keys/{}/rotate", encoded(&id)), None)
        .await;
    after_key_change(ctx, reply).await
}

pub async fn delete_key(Path(id): Path<String>, Posted { ctx, .. }: Posted) -> Response {
    let reply = ctx
        .api(Method::DELETE, &format!("/admin/v1/keys/{}", encoded(&id)), None)
        .await;
    after_key_change(ctx, reply).await
}

// ---------------------------------------------------------------- audit

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
    let (rows, next, error) = match ctx.get::<AuditPage>(&uri).await {
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
        ),
        Err(refusal) => (Vec::new(), None, Some(refusal.error.message)),
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
    html(StatusCode::OK, &page)
}
