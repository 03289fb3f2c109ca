//! What codes, rules and hosts have in common: read, create, replace,
//! patch (JSON merge patch, RFC 7396), delete and list one kind of entry.
//! The route modules ([`super::codes`], [`super::rules`], [`super::hosts`])
//! turn a request into a key and call these.

use super::access;
use super::body;
use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{BulkAnswer, Page, StoredEntry};
use crate::model::domain::{Entry, EntryKey, EntryKind, FieldError, Line, RulePrefix, Stored, Tag};
use crate::model::percent;
use crate::replication::store::{ListQuery, StoreError, WriteMode};
use crate::replication::writer::WriteError;
use axum::body::Body;
use axum::http::header::{HeaderValue, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

/// Default and largest page of a listing.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// The noun for messages.
pub fn noun(kind: EntryKind) -> &'static str {
    kind.as_str()
}

pub async fn get(state: &AdminState, key: EntryKey) -> Result<Response, ApiError> {
    match state.writer.store().get(&key).await? {
        Some(stored) => {
            access::require_cover(&stored.entry)?;
            Ok(Json(StoredEntry::new(&stored)).into_response())
        }
        None => Err(ApiError::not_found(format!("no such {}", noun(key.kind())))),
    }
}

/// `403` unless the request's key reaches the stored entry at `key` (when
/// there is one).
async fn require_cover_if_stored(state: &AdminState, key: &EntryKey) -> Result<(), ApiError> {
    match state.writer.store().get(key).await? {
        Some(stored) => access::require_cover(&stored.entry),
        None => Ok(()),
    }
}

/// Inside a write's transaction: the entry before and after must both be
/// within the key's scopes (checked before the write too; this closes the
/// gap in between).
fn within(principal: &access::Principal, before: &Entry, after: &Entry) -> Result<(), FieldError> {
    if principal.covers(before) && principal.covers(after) {
        Ok(())
    } else {
        Err(FieldError::new(
            "scope",
            format!(
                "{} {:?} is outside this key's scopes",
                noun(before.kind()),
                before.key().as_str()
            ),
        ))
    }
}

/// Query parameters of a listing, decoded strictly.
pub struct Listing {
    pub limit: u32,
    pub after: Option<String>,
    pub tag: Option<Tag>,
    /// Only keys that start with this text (a code, a rule's normalized
    /// prefix): a search box.
    pub starts: Option<String>,
    /// Only entries that open this mini program.
    pub appid: Option<String>,
}

impl Listing {
    pub fn from_query(query: &str) -> Result<Listing, ApiError> {
        let limit = match percent::get(query, "limit") {
            None => DEFAULT_LIMIT,
            Some(Ok(text)) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "`limit` must be a whole number from 1 to {MAX_LIMIT}"
                    )))
                }
            },
            Some(Err(e)) => return Err(ApiError::bad_request(format!("`limit` {}", e.describe()))),
        };
        let after = percent::get(query, "after")
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("`after` {}", e.describe())))?;
        let tag = tag_param(query)?;
        let text = |name: &str| {
            percent::get(query, name)
                .transpose()
                .map(|v| v.filter(|v| !v.is_empty()))
                .map_err(|e| ApiError::bad_request(format!("`{name}` {}", e.describe())))
        };
        Ok(Listing {
            limit,
            after,
            tag,
            starts: text("starts")?,
            appid: text("appid")?,
        })
    }
}

/// `?tag=`, validated.
pub fn tag_param(query: &str) -> Result<Option<Tag>, ApiError> {
    match percent::get(query, "tag") {
        None => Ok(None),
        Some(Err(e)) => Err(ApiError::bad_request(format!("`tag` {}", e.describe()))),
        Some(Ok(tag)) => tag
            .parse::<Tag>()
            .map(Some)
            .map_err(|e: FieldError| ApiError::invalid("tag", e.message)),
    }
}

pub async fn list(state: &AdminState, kind: EntryKind, listing: Listing) -> Result<Response, ApiError> {
    let limit = listing.limit as usize;
    // Only what the key reaches (and, for a search, what matches). The
    // store is read page after page until `limit` such entries are found
    // (or the end), so that neither the items nor `next` name an entry
    // outside the key's scopes.
    let principal = access::current();
    let starts = listing.starts.as_deref();
    let wanted = |entry: &Entry| {
        starts.is_none_or(|s| entry.key().as_str().starts_with(s))
            && listing.appid.as_deref().is_none_or(|a| appid_of(entry) == Some(a))
            && principal.covers(entry)
    };
    // Keys are in order: a search ends at the first key past its text.
    let past_the_search = |key: &str| starts.is_some_and(|s| key > s && !key.starts_with(s));
    // A search starts just before the first key it can match: its text
    // without the last character sorts before every key that starts with it.
    let mut after = match (listing.after, starts) {
        (Some(after), Some(s)) if after.as_str() >= s => Some(after),
        (_, Some(s)) => Some(s[..s.len() - s.chars().next_back().map_or(0, char::len_utf8)].to_string()),
        (after, None) => after,
    };
    let mut items = Vec::new();
    let next = 'pages: loop {
        let rows = state
            .writer
            .store()
            .list(ListQuery {
                kind,
                after: after.clone(),
                limit: listing.limit,
                tag: listing.tag.clone(),
            })
            .await?;
        let mut more = rows.len() == limit;
        after = rows.last().map(|s| s.entry.key().as_str().to_string());
        let mut full: Option<String> = None;
        for stored in &rows {
            let entry_key = stored.entry.key();
            let key = entry_key.as_str();
            if past_the_search(key) {
                more = false;
                break;
            }
            if !wanted(&stored.entry) {
                continue;
            }
            if let Some(last) = full {
                // One more wanted entry after a full page: there is a next.
                break 'pages Some(last);
            }
            items.push(StoredEntry::new(stored));
            if items.len() == limit {
                full = Some(key.to_string());
            }
        }
        // A full page whose rows ran out: a next page only if the store
        // may have more.
        if let Some(last) = full {
            break if more { Some(last) } else { None };
        }
        if !more {
            break None;
        }
    };
    Ok(Json(Page { items, next }).into_response())
}

/// The mini program an entry opens (codes and rules).
fn appid_of(entry: &Entry) -> Option<&str> {
    match entry {
        Entry::Code(c) => Some(c.entry.appid.as_str()),
        Entry::Rule(r) => Some(r.entry.appid.as_str()),
        Entry::Host(_) | Entry::File(_) => None,
    }
}

/// `POST`: creates. A code line without `code` gets a generated one.
pub async fn create(state: &AdminState, kind: EntryKind, body: Body) -> Result<Response, ApiError> {
    let mut line = body::line_from_value(body::json(body, state.options.body_timeout).await?)?;
    let generate = kind == EntryKind::Code && line.wants_generated_code();
    // A collision of two random 7-character codes is rare; a few tries make
    // a failure practically impossible.
    for _ in 0..8 {
        if generate {
            line.code = Some(crate::model::domain::generate_code().to_string());
        }
        let entry = validate(kind, &line)?;
        access::require_cover(&entry)?;
        match state.writer.put(entry, WriteMode::Insert).await {
            Ok(committed) => {
                let mut answer = StoredEntry::new(&committed.value.stored);
                answer.warnings = super::warnings::for_entry(state, &committed.value.stored.entry);
                return Ok(created(answer, &committed.value.stored.entry, committed.position));
            }
            Err(WriteError::Store(StoreError::Conflict)) if generate => continue,
            Err(WriteError::Store(StoreError::Conflict)) => {
                return Err(ApiError::conflict(format!("this {} exists already", noun(kind))));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("could not find a free generated code; try again"))
}

/// `PUT`: creates (`201`) or replaces (`200`) the entry named by the URL;
/// which one is decided inside the store's transaction.
pub async fn put(state: &AdminState, key: EntryKey, body: Body) -> Result<Response, ApiError> {
    let mut line = body::line_from_value(body::json(body, state.options.body_timeout).await?)?;
    name_from_url(&mut line, &key)?;
    let entry = validate(key.kind(), &line)?;
    access::require_cover(&entry)?;
    require_cover_if_stored(state, &key).await?;
    let committed = state.writer.put(entry, WriteMode::Upsert).await?;
    let put = committed.value;
    let mut answer = StoredEntry::new(&put.stored);
    answer.warnings = super::warnings::for_entry(state, &put.stored.entry);
    if put.created {
        Ok(created(answer, &put.stored.entry, committed.position))
    } else {
        Ok(with_position(
            (StatusCode::OK, Json(answer)).into_response(),
            committed.position,
        ))
    }
}

/// `PATCH`: a JSON merge patch of the stored entry, in one transaction.
pub async fn patch(state: &AdminState, key: EntryKey, body: Body) -> Result<Response, ApiError> {
    let patch = patch_object(body::json(body, state.options.body_timeout).await?)?;
    let kind = key.kind();
    let name_key = key.clone();
    require_cover_if_stored(state, &key).await?;
    let principal = access::current();
    let committed = state
        .writer
        .modify(
            key,
            Box::new(move |current: Stored<Entry>| {
                let mut line = merge(&current.entry, patch)?;
                name_from_url(&mut line, &name_key).map_err(|e| FieldError::new(static_field(&e), e.body.message))?;
                let changed = validate(kind, &line).map_err(|e| FieldError::new(static_field(&e), e.body.message))?;
                within(&principal, &current.entry, &changed)?;
                Ok(changed)
            }),
        )
        .await
        .map_err(|e| match e {
            WriteError::Store(StoreError::NotFound) => ApiError::not_found(format!("no such {}", noun(kind))),
            other => other.into(),
        })?;
    let mut answer = StoredEntry::new(&committed.value);
    answer.warnings = super::warnings::for_entry(state, &committed.value.entry);
    Ok(with_position(Json(answer).into_response(), committed.position))
}

/// `PATCH ?tag=`: the same merge patch on every entry of `kind` with the
/// tag, in one transaction.
pub async fn patch_tagged(
    state: &AdminState,
    kinds: Vec<EntryKind>,
    tag: Tag,
    body: Body,
) -> Result<Response, ApiError> {
    let patch = patch_object(body::json(body, state.options.body_timeout).await?)?;
    for field in ["code", "prefix", "host"] {
        if patch.contains_key(field) {
            return Err(ApiError::invalid(field, "a change of many entries cannot rename them"));
        }
    }
    let principal = access::current();
    let committed = state
        .writer
        .modify_tagged(
            kinds.clone(),
            tag.clone(),
            Box::new(move |current: Stored<Entry>| {
                let line = merge(&current.entry, patch.clone())?;
                let changed = validate(current.entry.kind(), &line)
                    .map_err(|e| FieldError::new(static_field(&e), e.body.message))?;
                within(&principal, &current.entry, &changed)?;
                Ok(changed)
            }),
        )
        .await
        .map_err(|e| match e {
            WriteError::Store(StoreError::NotFound) => {
                let nouns: Vec<&str> = kinds.iter().map(|k| noun(*k)).collect();
                ApiError::not_found(format!("no {} has the tag `{tag}`", nouns.join(" or ")))
            }
            other => other.into(),
        })?;
    let answer = BulkAnswer {
        changed: committed.value,
        position: committed.position,
    };
    Ok(with_position(Json(answer).into_response(), committed.position))
}

pub async fn delete(state: &AdminState, key: EntryKey) -> Result<Response, ApiError> {
    let kind = key.kind();
    require_cover_if_stored(state, &key).await?;
    match state.writer.delete(key).await {
        Ok(committed) => Ok(with_position(
            StatusCode::NO_CONTENT.into_response(),
            committed.position,
        )),
        Err(WriteError::Store(StoreError::NotFound)) => Err(ApiError::not_found(format!("no such {}", noun(kind)))),
        Err(e) => Err(e.into()),
    }
}

fn patch_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(patch) => Ok(patch),
        _ => Err(ApiError::bad_request("the body must be a JSON object")),
    }
}

/// The stored entry's line with `patch` merged in (`null` removes a field).
fn merge(current: &Entry, patch: Map<String, Value>) -> Result<Line, FieldError> {
    let mut merged = match serde_json::to_value(Line::from(current)) {
        Ok(Value::Object(object)) => object,
        _ => return Err(FieldError::new("body", "the stored entry could not be shown as JSON")),
    };
    for (field, value) in patch {
        if value.is_null() {
            merged.remove(&field);
        } else {
            merged.insert(field, value);
        }
    }
    body::line_from_value(Value::Object(merged)).map_err(|e| FieldError::new(static_field(&e), e.body.message))
}

/// The `'static` field name of an error, for a [`FieldError`].
fn static_field(error: &ApiError) -> &'static str {
    error
        .body
        .field
        .as_deref()
        .and_then(crate::model::table_file::known_field)
        .unwrap_or("body")
}

/// `201 Created` with the entry and its `Location`.
fn created(answer: StoredEntry, entry: &Entry, position: i64) -> Response {
    let location = match entry {
        Entry::Code(c) => format!("/admin/v1/codes/{}", percent::encoded(c.code.as_str())),
        Entry::Rule(r) => format!("/admin/v1/rules?prefix={}", percent::encoded(r.prefix.as_str())),
        Entry::Host(h) => format!("/admin/v1/hosts/{}", percent::encoded(h.host.as_str())),
        Entry::File(f) => format!(
            "/admin/v1/hosts/{}/files?path={}",
            percent::encoded(f.host.as_str()),
            percent::encoded(f.path.as_str())
        ),
    };
    let mut response = (StatusCode::CREATED, Json(answer)).into_response();
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    with_position(response, position)
}

/// Names the change-log position of a write, so a client can compare it
/// with another node's `/readyz`.
pub fn with_position(mut response: Response, position: i64) -> Response {
    if let Ok(value) = HeaderValue::try_from(position.to_string()) {
        response
            .headers_mut()
            .insert(crate::replication::sync::POSITION_HEADER, value);
    }
    response
}

/// Fills the entry's name from the URL, or checks that the body agrees.
fn name_from_url(line: &mut Line, key: &EntryKey) -> Result<(), ApiError> {
    match key {
        EntryKey::Code(code) => match &line.code {
            Some(given) if given != code => Err(ApiError::invalid(
                "code",
                "must match the code in the URL, or be left out",
            )),
            _ => {
                line.code = Some(code.clone());
                Ok(())
            }
        },
        EntryKey::Rule(prefix_key) => match &line.prefix {
            Some(given)
                if given
                    .parse::<RulePrefix>()
                    .map(|p| p.key() != prefix_key)
                    .unwrap_or(true) =>
            {
                Err(ApiError::invalid(
                    "prefix",
                    "must match `?prefix=` in the URL, or be left out",
                ))
            }
            Some(_) => Ok(()),
            // Without a spelling in the body, the normalized one is stored.
            None => {
                line.prefix = Some(prefix_key.clone());
                Ok(())
            }
        },
        EntryKey::Host(host) => match &line.host {
            Some(given) if !given.eq_ignore_ascii_case(host) => Err(ApiError::invalid(
                "host",
                "must match the host in the URL, or be left out",
            )),
            _ => {
                line.host = Some(host.clone());
                Ok(())
            }
        },
        EntryKey::File(_) => Ok(()),
    }
}

/// Validates a body as an entry of `kind`; the wrong kind's key field is
/// named.
pub fn validate(kind: EntryKind, line: &Line) -> Result<Entry, ApiError> {
    let wrong = |field: &str, message: &str| Err(ApiError::invalid(field, message));
    match kind {
        EntryKind::Code if line.prefix.is_some() => {
            return wrong("prefix", "a code has no `prefix`; rules live under /admin/v1/rules")
        }
        EntryKind::Code | EntryKind::Rule if line.host.is_some() => {
            return wrong("host", "host settings live under /admin/v1/hosts")
        }
        EntryKind::Rule if line.code.is_some() => {
            return wrong("code", "a rule has no `code`; codes live under /admin/v1/codes")
        }
        EntryKind::Host | EntryKind::File if line.code.is_some() || line.prefix.is_some() => {
            return wrong("host", "a host entry has no `code` or `prefix`")
        }
        _ => {}
    }
    let entry = line.validate().map_err(|e| ApiError::invalid(e.field, e.message))?;
    if entry.kind() != kind {
        return Err(ApiError::invalid("body", format!("this route takes a {}", noun(kind))));
    }
    Ok(entry)
}
