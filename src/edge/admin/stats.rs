//! Scan counts: `GET …/stats` of a code, a rule, a host (its 404s) or a
//! tag (a campaign), by day (in --stats-time-zone) and client class. This node's pending
//! counts are flushed first, so what was just scanned here shows at once.

use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{DayCounts, EntryTotal, ErrorBody, StatsAnswer};
use crate::model::domain::{CountBy, EntryKind, FieldError, HostName, RulePrefix};
use crate::model::percent;
use crate::replication::stats::{date_string, parse_date, Days};
use crate::replication::store::{CountSelection, VALUE_SEPARATOR};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeMap;

/// Longest range of one request, in days.
const MAX_DAYS: i32 = 400;

/// `from` and `to` (inclusive dates, in the counts' time zone); the last
/// 30 days by default.
fn range(query: &str, days: &Days) -> Result<(i32, i32), ApiError> {
    let date = |name: &str| -> Result<Option<i32>, ApiError> {
        match percent::get(query, name) {
            None => Ok(None),
            Some(Ok(text)) => parse_date(&text)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("`{name}` must be a date like 2026-11-24"))),
            Some(Err(e)) => Err(ApiError::bad_request(format!("`{name}` {}", e.describe()))),
        }
    };
    let to = date("to")?.unwrap_or_else(|| days.today());
    let from = date("from")?.unwrap_or(to - 29);
    if from > to {
        return Err(ApiError::bad_request("`from` is after `to`"));
    }
    if to - from >= MAX_DAYS {
        return Err(ApiError::bad_request(format!("at most {MAX_DAYS} days at once")));
    }
    Ok((from, to))
}

/// `include_other=true`: bots and link previews (the `other` class) count
/// in the totals; by default they are shown apart and left out.
fn include_other(query: &str) -> Result<bool, ApiError> {
    match percent::get(query, "include_other") {
        None => Ok(false),
        Some(Ok(v)) if v == "true" || v == "1" => Ok(true),
        Some(Ok(v)) if v == "false" || v == "0" => Ok(false),
        Some(_) => Err(ApiError::invalid(
            "include_other",
            "`include_other` must be true or false",
        )),
    }
}

async fn answer(
    state: &AdminState,
    selection: CountSelection,
    kind: EntryKind,
    query: &str,
) -> Result<Response, ApiError> {
    let (from, to) = range(query, &state.options.days)?;
    let include_other = include_other(query)?;
    if let Some(counts) = &state.counts {
        if let Err(error) = crate::replication::stats::flush(counts, state.writer.replica(), state.writer.store()).await
        {
            tracing::warn!(%error, "pending scan counts could not be flushed before a stats request");
        }
    }
    let (key, tag, by) = match &selection {
        CountSelection::Key(_, key) => (Some(key.clone()), None, None),
        CountSelection::Tag(_, tag) => (None, Some(tag.to_string()), None),
        CountSelection::Kind(_) => (None, None, None),
        CountSelection::Values(rule, param) => (Some(rule.clone()), None, Some(param.clone())),
    };
    let per_entry = !matches!(selection, CountSelection::Key(..));
    let top = match percent::get(query, "top") {
        None => usize::MAX,
        Some(Ok(text)) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| ApiError::bad_request("`top` must be a whole number from 1 to 10000"))?,
        Some(Err(e)) => return Err(ApiError::bad_request(format!("`top` {}", e.describe()))),
    };
    let rows = state.writer.store().counts(selection, from, to).await?;
    let mut days: BTreeMap<i32, DayCounts> = BTreeMap::new();
    let mut entries: BTreeMap<String, BTreeMap<i32, DayCounts>> = BTreeMap::new();
    let mut total = DayCounts::default();
    for row in rows {
        let n = row.count.max(0) as u64;
        days.entry(row.day).or_default().add(row.class, n);
        total.add(row.class, n);
        if per_entry {
            // A value's key is `rule \x1f param \x1f value`: show the value.
            let key = match &by {
                Some(_) => row.key.rsplit(VALUE_SEPARATOR).next().unwrap_or_default().to_string(),
                None => row.key,
            };
            entries
                .entry(key)
                .or_default()
                .entry(row.day)
                .or_default()
                .add(row.class, n);
        }
    }
    let finish = |day: i32, mut counts: DayCounts| {
        counts.day = Some(date_string(day));
        if !include_other {
            counts.total -= counts.other;
        }
        counts
    };
    let days = days.into_iter().map(|(day, counts)| finish(day, counts)).collect();
    if !include_other {
        total.total -= total.other;
    }
    let mut entries: Vec<EntryTotal> = entries
        .into_iter()
        .map(|(key, days)| {
            let days: Vec<DayCounts> = days.into_iter().map(|(day, counts)| finish(day, counts)).collect();
            EntryTotal {
                key,
                total: days.iter().map(|d| d.total).sum(),
                days,
            }
        })
        .collect();
    entries.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    entries.truncate(top);
    Ok(Json(StatsAnswer {
        kind: kind.as_str().into(),
        key,
        tag,
        by,
        from: date_string(from),
        to: date_string(to),
        time_zone: state.options.days.name().to_string(),
        include_other,
        days,
        total,
        entries,
    })
    .into_response())
}

/// Scans of one code, by day (in --stats-time-zone) and client class.
#[utoipa::path(get, path = "/admin/v1/codes/{code}/stats", tag = "stats",
    params(("code" = String, Path), ("from" = Option<String>, Query, description = "first day, 2026-11-01 (default: 29 days before `to`)"),
           ("to" = Option<String>, Query, description = "last day (default: today)")),
    responses((status = 200, body = StatsAnswer), (status = 400, body = ErrorBody)))]
pub async fn code(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let key = super::codes::key(code)?;
    super::access::require_cover_of(state.writer.store().as_ref(), &key).await?;
    answer(
        &state,
        CountSelection::Key(EntryKind::Code, key.as_str().to_string()),
        EntryKind::Code,
        query.as_deref().unwrap_or(""),
    )
    .await
}

/// Scans of one rule (`?prefix=`), by day and client class; with `by`, by
/// the values of the rule's `count_by` parameter (one entry a value).
#[utoipa::path(get, path = "/admin/v1/rules/stats", tag = "stats",
    params(("prefix" = String, Query), ("by" = Option<String>, Query, description = "the rule's `count_by` parameter: counts per value"),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query),
           ("include_other" = Option<bool>, Query, description = "count bots and link previews in the totals")),
    responses((status = 200, body = StatsAnswer), (status = 422, body = ErrorBody)))]
pub async fn rule(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let prefix = match percent::get(&query, "prefix") {
        Some(Ok(prefix)) => prefix
            .parse::<RulePrefix>()
            .map_err(|e: FieldError| ApiError::invalid(e.field, e.message))?,
        _ => return Err(ApiError::invalid("prefix", "`?prefix=URL` names the rule")),
    };
    let selection = match percent::get(&query, "by") {
        None => CountSelection::Key(EntryKind::Rule, prefix.key().to_string()),
        Some(Ok(param)) => {
            let param: CountBy = param
                .parse()
                .map_err(|e: FieldError| ApiError::invalid("by", e.message))?;
            CountSelection::Values(prefix.key().to_string(), param.to_string())
        }
        Some(Err(e)) => return Err(ApiError::invalid("by", format!("`by` {}", e.describe()))),
    };
    super::access::require_cover_of(
        state.writer.store().as_ref(),
        &crate::model::domain::EntryKey::Rule(prefix.key().to_string()),
    )
    .await?;
    answer(&state, selection, EntryKind::Rule, &query).await
}

/// 404s answered on one host, by day (in --stats-time-zone): lost posters show up here.
#[utoipa::path(get, path = "/admin/v1/hosts/{host}/stats", tag = "stats",
    params(("host" = String, Path, description = "a host, or `(other hosts)` for hosts without rules"),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = StatsAnswer), (status = 422, body = ErrorBody)))]
pub async fn host(
    State(state): State<AdminState>,
    host: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Path(host) = host.map_err(|e| ApiError::invalid("host", e.to_string()))?;
    let key = if host == crate::replication::stats::OTHER_HOSTS {
        host
    } else {
        host.parse::<HostName>()
            .map_err(|e: FieldError| ApiError::invalid(e.field, e.message))?
            .to_string()
    };
    super::access::require_host(&key)?;
    answer(
        &state,
        CountSelection::Key(EntryKind::Host, key),
        EntryKind::Host,
        query.as_deref().unwrap_or(""),
    )
    .await
}

/// Scans of every code (or rule) with a tag: a campaign, by day and class,
/// with each entry's total. Without `tag`: every code, rule or host (its
/// 404s) of this fleet, for keys without scopes.
#[utoipa::path(get, path = "/admin/v1/stats", tag = "stats",
    params(("tag" = Option<String>, Query, description = "the campaign; absent: everything of `kind` (keys without scopes only)"),
           ("kind" = Option<String>, Query, description = "`code` (default), `rule` or (without `tag`) `host`"),
           ("top" = Option<u32>, Query, description = "only the N most scanned entries, 1-10000"),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = StatsAnswer), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn tag(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let tag = super::entries::tag_param(&query)?;
    let kind = match percent::get(&query, "kind") {
        None => EntryKind::Code,
        Some(Ok(k)) if k == "code" => EntryKind::Code,
        Some(Ok(k)) if k == "rule" => EntryKind::Rule,
        Some(Ok(k)) if k == "host" && tag.is_none() => EntryKind::Host,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`kind` must be `code` or `rule` (or, without `tag`, `host`)",
            ))
        }
    };
    match tag {
        Some(tag) => {
            super::access::require_tag(&tag)?;
            answer(&state, CountSelection::Tag(kind, tag), kind, &query).await
        }
        None => {
            super::access::require_unscoped("the counts of every entry")?;
            answer(&state, CountSelection::Kind(kind), kind, &query).await
        }
    }
}
