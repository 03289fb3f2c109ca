//! `GET /admin/v1/audit`: who changed what, newest first. An admin key sees
//! every line; other keys see the lines about codes and rules within their
//! scopes (never keys, hosts, files or imports).

use super::entries::MAX_LIMIT;
use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{from_ms, AuditItem, AuditKey, AuditPage, ErrorBody};
use crate::model::domain::{Entry, Line, RulePrefix};
use crate::model::percent;
use crate::replication::audit::{Query, Row};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The audit log, filtered: `key` (a key's id), `entry` (a code, a rule's
/// prefix URL, a host, a key's id), `from`/`to` (RFC 3339 or a UTC day,
/// `2026-12-05`; `to` exclusive), `after` (the `next` of the previous page),
/// `limit` (1-1000, default 100).
#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit",
    params(("key" = Option<String>, Query, description = "only this key's changes"),
           ("entry" = Option<String>, Query, description = "only changes of this code, rule prefix, host or key id"),
           ("from" = Option<String>, Query, description = "from this time (RFC 3339) or UTC day"),
           ("to" = Option<String>, Query, description = "before this time or day"),
           ("after" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = AuditPage), (status = 422, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let param = |name: &'static str| match percent::get(&query, name) {
        None => Ok(None),
        Some(Ok(v)) if v.is_empty() => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(ApiError::invalid(name, format!("`{name}` {}", e.describe()))),
    };
    let limit = match param("limit")? {
        None => 100,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("a whole number from 1 to {MAX_LIMIT}")))?,
    };
    let before_id = param("after")?
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("after", "not a cursor this API gave"))
        })
        .transpose()?;
    let entry = param("entry")?.map(|e| normalized_entry(&e)).transpose()?;
    let mut audit = Query {
        before_id,
        limit,
        key_id: param("key")?,
        entry,
        from_ms: param("from")?.map(|t| time_ms("from", &t)).transpose()?,
        to_ms: param("to")?.map(|t| time_ms("to", &t)).transpose()?,
        entries_only: false,
    };
    // A key with less than admin reads on, in batches of lines about codes
    // and rules, until it has a page of lines it may see (so that neither
    // the items nor `next` tell of the others), or until it has read
    // SCANNED_AT_MOST lines: then `next` (a cursor, nothing more) lets it
    // go on.
    let principal = super::access::current();
    let scoped = !principal.is_admin();
    if scoped {
        audit.entries_only = true;
        audit.limit = MAX_LIMIT;
    }
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let next = loop {
        let rows = state.writer.store().audit(audit.clone()).await?;
        let more = rows.len() == audit.limit as usize;
        scanned += rows.len();
        audit.before_id = rows.last().map(|r| r.id);
        let mut full = None;
        for row in rows.iter().filter(|r| principal.is_admin() || visible(&principal, r)) {
            items.push(item(row));
            if items.len() == limit as usize {
                full = Some(row.id.to_string());
                break;
            }
        }
        if full.is_some() {
            // Older lines may follow: the client asks once more.
            break full;
        }
        if !more {
            break None;
        }
        if scanned >= SCANNED_AT_MOST {
            break audit.before_id.map(|id| id.to_string());
        }
    };
    Ok(Json(AuditPage { items, next }).into_response())
}

/// Lines a key with scopes reads through in one request at most.
const SCANNED_AT_MOST: usize = 20_000;

/// A rule's prefix as stored (normalized); anything else as given (a code
/// is case-sensitive; hosts are stored in lower case).
fn normalized_entry(entry: &str) -> Result<String, ApiError> {
    if entry.contains("://") {
        let prefix: RulePrefix = entry
            .parse()
            .map_err(|e: crate::model::domain::FieldError| ApiError::invalid("entry", e.message))?;
        return Ok(prefix.key().to_string());
    }
    Ok(entry.to_string())
}

/// RFC 3339, or a day (`2026-12-05`, from its UTC midnight).
fn time_ms(field: &'static str, text: &str) -> Result<i64, ApiError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let day = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| {
        ApiError::invalid(
            field,
            format!("`{field}` is a time (RFC 3339) or a day like 2026-12-05"),
        )
    })?;
    Ok(day.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Whether a key that is not admin may see this line: a code or rule
/// within its scopes, before or after the change.
fn visible(principal: &super::access::Principal, row: &Row) -> bool {
    if !matches!(row.record.kind.as_str(), "code" | "rule") {
        return false;
    }
    [&row.record.before, &row.record.after]
        .into_iter()
        .flatten()
        .filter_map(|text| serde_json::from_str::<Line>(text).ok())
        .filter_map(|line| line.validate().ok())
        .any(|entry: Entry| principal.covers(&entry))
}

fn item(row: &Row) -> AuditItem {
    let json = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    AuditItem {
        time: from_ms(row.at),
        key: AuditKey {
            id: row.actor.key_id.clone(),
            name: row.actor.key_name.clone(),
        },
        client: row.actor.client.clone(),
        action: row.record.action.clone(),
        kind: row.record.kind.clone(),
        entry: row.record.entry.clone(),
        before: json(&row.record.before),
        after: json(&row.record.after),
        position: row.position,
    }
}
