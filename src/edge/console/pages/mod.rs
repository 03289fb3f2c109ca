//! The console's pages and forms, a module a page. Each reads and writes
//! through the admin API ([`Ctx::api`]) and renders what it answered; a
//! refusal is shown in the API's words (a field error next to its field).
//!
//! * [`sign_in`]: sign-in, sign-out, the language switch;
//! * [`overview`]: the overview;
//! * [`entries`]: codes and rules (lists, pages, forms, QR images);
//! * [`campaigns`]: tags: disable/enable all, QR zip, counts CSV;
//! * [`import`]: NDJSON and CSV uploads;
//! * [`hosts`], [`keys`], [`audit`]: the admin pages and the log.

use super::chart;
use super::form::{self, Fields};
use super::text::Text;
use super::{html, plain_error, session_cookie, ConsoleState, Ctx, Frame, Posted, Refused};
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

mod audit;
mod campaigns;
mod entries;
mod hosts;
mod import;
mod keys;
mod overview;
mod sign_in;

pub use audit::audit;
pub use campaigns::{campaign_csv, campaign_state, campaign_zip, campaigns};
pub use entries::{
    code, code_qr, code_state, codes, create_code, create_rule, delete_code, delete_rule, edit_code, edit_rule,
    new_code, new_rule, rule, rule_state, rules, save_code, save_rule,
};
pub use hosts::{delete_file, delete_host, hosts, save_file, save_host};
pub use import::{generated_csv, import, import_page, MAX_UPLOAD};
pub use keys::{create_key, delete_key, keys, rotate_key};
pub use overview::overview;
pub use sign_in::{sign_in, sign_in_page, sign_out, switch_language};

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

/// `uri` with `extra` added to its query.
fn with_query(uri: &str, extra: &str) -> String {
    if uri.contains('?') {
        format!("{uri}&{extra}")
    } else {
        format!("{uri}?{extra}")
    }
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

fn attachment(body: impl Into<Body>, content_type: &'static str, name: &str) -> Response {
    let mut response = (StatusCode::OK, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A CSV cell a spreadsheet will not run as a formula.
fn spreadsheet_safe(value: &str) -> String {
    crate::model::table_file::csv::spreadsheet_safe(value).into_owned()
}
