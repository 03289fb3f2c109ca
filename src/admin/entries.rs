//! `/admin/v1/codes…` and `/admin/v1/rules…`: create, read, replace,
//! patch, delete and list single entries.
//!
//! Bodies are the table file's JSON objects ([`TableLine`]). A code is
//! named by its path segment, a rule by `?prefix=URL`. PATCH is a JSON merge
//! patch (RFC 7396): fields present replace, `null` removes an optional field.

use super::reply::{self, Reply};
use super::AdminState;
use crate::catalog::CatalogError;
use crate::domain::{Code, FieldError, RulePrefix};
use crate::http::params;
use crate::store::{to_line, StoreError, Stored, WriteMode};
use crate::table::EntryKey;
use crate::table_file::{TableEntry, TableLine};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION};
use hyper::StatusCode;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Largest JSON body of a single write.
const MAX_BODY: usize = 64 * 1024;
/// Default and largest page of a listing.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Length of a generated code: 62^7 ≈ 3.5e12 possibilities.
pub const GENERATED_CODE_LEN: u32 = 7;

/// Codes or rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Code,
    Rule,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Code => "code",
            Kind::Rule => "rule",
        }
    }
}

/// An entry as the admin API shows it: the table line plus its times.
#[derive(Debug, Serialize)]
pub struct StoredLine {
    #[serde(flatten)]
    pub line: TableLine,
    pub created_at: String,
    pub updated_at: String,
}

impl StoredLine {
    pub fn new(stored: &Stored<TableEntry>) -> StoredLine {
        StoredLine {
            line: to_line(&stored.entry),
            created_at: rfc3339_ms(stored.created_at),
            updated_at: rfc3339_ms(stored.updated_at),
        }
    }
}

fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[derive(Serialize)]
struct Page {
    items: Vec<StoredLine>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The key named by a request: the code segment, or `?prefix=`.
pub fn key_from_request(kind: Kind, segment: Option<&str>, query: &str) -> Result<Option<EntryKey>, Reply> {
    match kind {
        Kind::Code => {
            let Some(segment) = segment else { return Ok(None) };
            let code = params::decode_strict(segment.as_bytes())
                .map_err(|e| reply::invalid("code", &format!("the code in the path {}", e.describe())))?;
            let code: Code = code
                .parse()
                .map_err(|e: FieldError| reply::invalid(e.field, &e.message))?;
            Ok(Some(EntryKey::Code(code.to_string())))
        }
        Kind::Rule => match params::get(query, "prefix") {
            None => Ok(None),
            Some(Err(e)) => Err(reply::invalid("prefix", &format!("`prefix` {}", e.describe()))),
            Some(Ok(prefix)) => {
                let prefix: RulePrefix = prefix
                    .parse()
                    .map_err(|e: FieldError| reply::invalid(e.field, &e.message))?;
                Ok(Some(EntryKey::Rule(prefix.key().to_string())))
            }
        },
    }
}

pub async fn get(state: &AdminState, key: &EntryKey) -> Reply {
    match state.catalog.get(key).await {
        Ok(Some(stored)) => reply::json(StatusCode::OK, &StoredLine::new(&stored)),
        Ok(None) => reply::not_found(&format!("no such {}", noun(key))),
        Err(e) => catalog_error(e),
    }
}

pub async fn list(state: &AdminState, kind: Kind, query: &str) -> Reply {
    let limit = match params::get(query, "limit") {
        None => DEFAULT_LIMIT,
        Some(Ok(text)) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return reply::bad_request(&format!("`limit` must be a whole number from 1 to {MAX_LIMIT}")),
        },
        Some(Err(e)) => return reply::bad_request(&format!("`limit` {}", e.describe())),
    };
    let after = match params::get(query, "after").transpose() {
        Ok(after) => after,
        Err(e) => return reply::bad_request(&format!("`after` {}", e.describe())),
    };
    let store = state.catalog.store();
    let page: Result<Vec<(String, Stored<TableEntry>)>, StoreError> = match kind {
        Kind::Code => store.list_codes(after.as_deref(), limit).await.map(|rows| {
            rows.into_iter()
                .map(|s| (s.entry.code.to_string(), s.map(TableEntry::Code)))
                .collect()
        }),
        Kind::Rule => store.list_rules(after.as_deref(), limit).await.map(|rows| {
            rows.into_iter()
                .map(|s| (s.entry.prefix.key().to_string(), s.map(TableEntry::Rule)))
                .collect()
        }),
    };
    match page {
        Ok(rows) => {
            let next = (rows.len() == limit as usize)
                .then(|| rows.last().map(|(k, _)| k.clone()))
                .flatten();
            let items = rows.iter().map(|(_, s)| StoredLine::new(s)).collect();
            reply::json(StatusCode::OK, &Page { items, next })
        }
        Err(e) => catalog_error(e.into()),
    }
}

/// `POST`: create. A code without `code` in the body gets a generated one.
pub async fn create(state: &AdminState, kind: Kind, body: Incoming) -> Reply {
    let mut line = match read_line(body).await {
        Ok(line) => line,
        Err(reply) => return reply,
    };
    let generate = kind == Kind::Code && line.code.is_none();
    // A collision of two random 7-character codes is rare; a few tries make
    // a failure practically impossible.
    for _ in 0..8 {
        if generate {
            line.code = Some(generate_code());
        }
        let entry = match validate(kind, &line) {
            Ok(entry) => entry,
            Err(reply) => return reply,
        };
        match state.catalog.put(entry, WriteMode::Insert).await {
            Ok(stored) => return created(&stored),
            Err(CatalogError::Store(StoreError::Conflict)) if generate => continue,
            Err(CatalogError::Store(StoreError::Conflict)) => {
                return reply::error(
                    StatusCode::CONFLICT,
                    "conflict",
                    &format!("this {} exists already", kind.noun()),
                );
            }
            Err(e) => return catalog_error(e),
        }
    }
    reply::internal("could not find a free generated code; try again")
}

/// `PUT`: create or replace the entry named by the URL.
pub async fn put(state: &AdminState, key: &EntryKey, body: Incoming) -> Reply {
    let mut line = match read_line(body).await {
        Ok(line) => line,
        Err(reply) => return reply,
    };
    if let Err(reply) = name_from_url(&mut line, key) {
        return reply;
    }
    let kind = kind_of(key);
    let entry = match validate(kind, &line) {
        Ok(entry) => entry,
        Err(reply) => return reply,
    };
    let existed = match state.catalog.get(key).await {
        Ok(existing) => existing.is_some(),
        Err(e) => return catalog_error(e),
    };
    match state.catalog.put(entry, WriteMode::Upsert).await {
        Ok(stored) if existed => reply::json(StatusCode::OK, &StoredLine::new(&stored)),
        Ok(stored) => created(&stored),
        Err(e) => catalog_error(e),
    }
}

/// `PATCH`: a JSON merge patch of the stored entry.
pub async fn patch(state: &AdminState, key: &EntryKey, body: Incoming) -> Reply {
    let patch = match read_json(body).await {
        Ok(serde_json::Value::Object(patch)) => patch,
        Ok(_) => return reply::bad_request("the body must be a JSON object"),
        Err(reply) => return reply,
    };
    let kind = kind_of(key);
    let result = state
        .catalog
        .modify(key, |current| {
            let Some(current) = current else {
                return Err(reply::not_found(&format!("no such {}", kind.noun())));
            };
            let mut merged = match serde_json::to_value(to_line(&current.entry)) {
                Ok(serde_json::Value::Object(object)) => object,
                _ => return Err(reply::internal("the stored entry could not be shown as JSON")),
            };
            for (field, value) in patch {
                if value.is_null() {
                    merged.remove(&field);
                } else {
                    merged.insert(field, value);
                }
            }
            let mut line = parse_line_value(serde_json::Value::Object(merged))?;
            name_from_url(&mut line, key)?;
            validate(kind, &line)
        })
        .await;
    match result {
        Ok(Ok(stored)) => reply::json(StatusCode::OK, &StoredLine::new(&stored)),
        Ok(Err(reply)) => reply,
        Err(e) => catalog_error(e),
    }
}

pub async fn delete(state: &AdminState, key: EntryKey) -> Reply {
    let noun = noun(&key);
    match state.catalog.delete(key).await {
        Ok(true) => reply::empty(StatusCode::NO_CONTENT),
        Ok(false) => reply::not_found(&format!("no such {noun}")),
        Err(e) => catalog_error(e),
    }
}

fn kind_of(key: &EntryKey) -> Kind {
    match key {
        EntryKey::Code(_) => Kind::Code,
        EntryKey::Rule(_) => Kind::Rule,
    }
}

fn noun(key: &EntryKey) -> &'static str {
    kind_of(key).noun()
}

/// A random base62 code of [`GENERATED_CODE_LEN`] characters from the
/// thread's CSPRNG: codes are neither sequential nor guessable from others.
pub fn generate_code() -> String {
    use rand::Rng;
    let low = 62u128.pow(GENERATED_CODE_LEN - 1);
    let high = 62u128.pow(GENERATED_CODE_LEN);
    base62::encode(rand::rng().random_range(low..high))
}

fn created(stored: &Stored<TableEntry>) -> Reply {
    let mut response = reply::json(StatusCode::CREATED, &StoredLine::new(stored));
    let location = match &stored.entry {
        TableEntry::Code(c) => {
            let mut path = String::from("/admin/v1/codes/");
            crate::scheme_url::push_encoded(&mut path, c.code.as_str());
            path
        }
        TableEntry::Rule(r) => {
            let mut path = String::from("/admin/v1/rules?prefix=");
            crate::scheme_url::push_encoded(&mut path, r.prefix.as_str());
            path
        }
    };
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Fills the entry's name from the URL, or checks that the body agrees.
fn name_from_url(line: &mut TableLine, key: &EntryKey) -> Result<(), Reply> {
    match key {
        EntryKey::Code(code) => match &line.code {
            Some(given) if given != code => {
                Err(reply::invalid("code", "must match the code in the URL, or be left out"))
            }
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
                Err(reply::invalid(
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
    }
}

fn validate(kind: Kind, line: &TableLine) -> Result<TableEntry, Reply> {
    match (kind, &line.code, &line.prefix) {
        (Kind::Code, _, Some(_)) => {
            return Err(reply::invalid(
                "prefix",
                "a code has no `prefix`; rules live under /admin/v1/rules",
            ))
        }
        (Kind::Rule, Some(_), _) => {
            return Err(reply::invalid(
                "code",
                "a rule has no `code`; codes live under /admin/v1/codes",
            ))
        }
        _ => {}
    }
    line.validate().map_err(|e| reply::invalid(e.field, &e.message))
}

async fn read_json(body: Incoming) -> Result<serde_json::Value, Reply> {
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is over 64 KiB",
            ))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| reply::bad_request(&format!("the body is not valid JSON: {e}")))
}

async fn read_line(body: Incoming) -> Result<TableLine, Reply> {
    parse_line_value(read_json(body).await?)
}

/// A JSON object as a [`TableLine`]; serde's own messages name the field.
fn parse_line_value(value: serde_json::Value) -> Result<TableLine, Reply> {
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field"))
            .unwrap_or("body")
            .to_string();
        reply::invalid(&field, &message)
    })
}

pub fn catalog_error(error: CatalogError) -> Reply {
    tracing::error!(%error, "admin request failed");
    match error {
        CatalogError::Store(StoreError::Conflict) => {
            reply::error(StatusCode::CONFLICT, "conflict", "the key exists already")
        }
        other => reply::internal(&other.to_string()),
    }
}
