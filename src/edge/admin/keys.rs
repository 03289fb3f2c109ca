//! `/admin/v1/keys…`: API keys with a role and scopes (admin keys only).
//! The secret is made here, shown once, and stored only as its SHA-256; a
//! rotation keeps the old secret working for a grace period. Every change
//! goes through the store's change log, so every node of a fleet reads the
//! keys again ([`reload`]).

use super::access::{hash_secret, new_secret, KeyRing};
use super::body;
use super::error::ApiError;
use super::AdminState;
use crate::edge::api::{from_ms, ErrorBody, KeyInfo, KeyList, NewKey};
use crate::model::access::{Role, Scopes};
use crate::model::percent;
use crate::replication::store::{now_ms, Store, StoredKey};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

/// Reads the keys from the store into `ring`.
pub async fn reload(store: &dyn Store, ring: &KeyRing) -> Result<usize, crate::replication::store::StoreError> {
    let keys = store.keys().await?;
    let count = keys.len();
    ring.replace(keys);
    Ok(count)
}

/// Keeps `ring` current on this node: reads the keys at start (retrying
/// while the store is unreachable), again whenever the change log says a
/// key changed, and writes when keys were last used once a minute.
pub async fn follow(
    store: std::sync::Arc<dyn Store>,
    ring: std::sync::Arc<KeyRing>,
    mut changed: tokio::sync::watch::Receiver<i64>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut touch = tokio::time::interval(Duration::from_secs(60));
    touch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded = false;
    loop {
        if !loaded {
            match reload(store.as_ref(), &ring).await {
                Ok(count) => {
                    loaded = true;
                    tracing::debug!(count, "API keys read");
                }
                Err(error) => tracing::warn!(%error, "cannot read the API keys yet; retrying"),
            }
        }
        tokio::select! {
            result = changed.changed() => {
                if result.is_err() {
                    return;
                }
                loaded = false;
            }
            _ = touch.tick() => {
                let used = ring.take_used();
                if !used.is_empty() {
                    if let Err(error) = store.touch_keys(used).await {
                        tracing::warn!(%error, "cannot record when API keys were last used");
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_secs(1)), if !loaded => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// The key as the API shows it.
pub fn info(key: &StoredKey, secret: Option<String>) -> KeyInfo {
    let [tags, hosts, appids] = key.scopes.lists();
    KeyInfo {
        id: key.id.clone(),
        name: key.name.clone(),
        role: key.role.as_str().into(),
        tags,
        hosts,
        appids,
        created: from_ms(key.created_at),
        expires: key.expires_at.map(from_ms),
        last_used: key.last_used_at.map(from_ms),
        previous_secret_until: key
            .previous
            .as_ref()
            .filter(|(_, until)| *until > now_ms())
            .map(|(_, until)| from_ms(*until)),
        secret,
    }
}

/// Checks a key's fields: the name, the role, the scopes (an admin key has
/// none) and the expiry (in the future).
fn validate(new: &NewKey) -> Result<(String, Role, Scopes, Option<i64>), ApiError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "a key's name is 1-100 printable characters (who or what uses it)",
        ));
    }
    let role = Role::parse(&new.role).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let scopes =
        Scopes::parse(&new.tags, &new.hosts, &new.appids).map_err(|e| ApiError::invalid(e.field, e.message))?;
    if role == Role::Admin && !scopes.is_empty() {
        return Err(ApiError::invalid(
            "role",
            "an admin key reaches everything: give it no tags, hosts or appids, or make it an editor or viewer",
        ));
    }
    let expires = new.expires.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    if expires.is_some_and(|e| e <= now_ms()) {
        return Err(ApiError::invalid("expires", "the expiry is in the past"));
    }
    Ok((name.to_string(), role, scopes, expires))
}

fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::invalid("id", format!("the key id in the path is not valid: {e}")))?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("no such key"));
    }
    Ok(id)
}

/// Writes `key` (new, or changed from the one whose secret hash was
/// `expected`), reads the keys again here, and answers with it.
async fn store_key(
    state: &AdminState,
    key: StoredKey,
    expected: Option<String>,
    secret: Option<String>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let store = state.writer.store().clone();
    let committed = store.put_key(key.clone(), expected).await.map_err(|e| match e {
        crate::replication::store::StoreError::Conflict => ApiError::conflict(
            "the key was rotated or removed meanwhile (on this node or another); read it again and retry",
        ),
        e => e.into(),
    })?;
    reload(store.as_ref(), &state.keys).await?;
    let shown = state.keys.get(&key.id).unwrap_or(key);
    Ok(super::entries::with_position(
        (status, Json(info(&shown, secret))).into_response(),
        committed.position,
    ))
}

/// Creates a key; the answer holds its secret, shown this once.
#[utoipa::path(post, path = "/admin/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = KeyInfo), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(State(state): State<AdminState>, body: Body) -> Result<Response, ApiError> {
    let value = body::json(body, state.options.body_timeout).await?;
    let new: NewKey = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid(&field, e.into_inner().to_string())
    })?;
    let (name, role, scopes, expires_at) = validate(&new)?;
    let (id, secret) = new_secret(None);
    let key = StoredKey {
        id,
        name,
        role,
        scopes,
        secret_hash: hash_secret(&secret),
        previous: None,
        created_at: now_ms(),
        expires_at,
        last_used_at: None,
    };
    store_key(&state, key, None, Some(secret), StatusCode::CREATED).await
}

/// Every key, without secrets.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Response, ApiError> {
    reload(state.writer.store().as_ref(), &state.keys).await?;
    let items = state.keys.list().iter().map(|k| info(k, None)).collect();
    Ok(Json(KeyList { items }).into_response())
}

#[utoipa::path(get, path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(id)?;
    reload(state.writer.store().as_ref(), &state.keys).await?;
    let key = state.keys.get(&id).ok_or_else(|| ApiError::not_found("no such key"))?;
    Ok(Json(info(&key, None)).into_response())
}

/// A JSON merge patch of `name`, `role`, `tags`, `hosts`, `appids`,
/// `expires` (`null` removes the expiry).
#[utoipa::path(patch, path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    request_body(content = Object, description = "a JSON merge patch, e.g. {\"role\":\"viewer\"}"),
    responses((status = 200, body = KeyInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let id = id_of(id)?;
    let patch = body::json(body, state.options.body_timeout).await?;
    let serde_json::Value::Object(patch) = patch else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    reload(state.writer.store().as_ref(), &state.keys).await?;
    let current = state.keys.get(&id).ok_or_else(|| ApiError::not_found("no such key"))?;
    let shown = info(&current, None);
    let mut merged = serde_json::json!({
        "name": shown.name, "role": shown.role, "tags": shown.tags, "hosts": shown.hosts,
        "appids": shown.appids,
        "expires": shown.expires.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    });
    for (field, value) in patch {
        if !["name", "role", "tags", "hosts", "appids", "expires"].contains(&field.as_str()) {
            return Err(ApiError::invalid(&field, format!("unknown field `{field}`")));
        }
        let value = match (field.as_str(), value) {
            ("tags" | "hosts" | "appids", serde_json::Value::Null) => serde_json::json!([]),
            (_, value) => value,
        };
        merged[field.as_str()] = value;
    }
    let new: NewKey = serde_path_to_error::deserialize(merged).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid(&field, e.into_inner().to_string())
    })?;
    // An expiry already set may have passed; only a new one must be ahead.
    let (name, role, scopes, expires_at) = validate(&NewKey {
        expires: new.expires.filter(|e| Some(*e) != shown.expires),
        ..new.clone()
    })?;
    let expected = Some(current.secret_hash.clone());
    let key = StoredKey {
        name,
        role,
        scopes,
        expires_at: if new.expires == shown.expires {
            current.expires_at
        } else {
            expires_at
        },
        ..current
    };
    store_key(&state, key, expected, None, StatusCode::OK).await
}

/// Removes a key: its secrets stop working on every node.
#[utoipa::path(delete, path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(id)?;
    let store = state.writer.store().clone();
    let committed = store.delete_key(id).await.map_err(|e| match e {
        crate::replication::store::StoreError::NotFound => ApiError::not_found("no such key"),
        e => e.into(),
    })?;
    reload(store.as_ref(), &state.keys).await?;
    Ok(super::entries::with_position(
        StatusCode::NO_CONTENT.into_response(),
        committed.position,
    ))
}

/// A new secret for the key; the old one keeps working for `?grace=`
/// (default `24h`, `0s` ends it at once, at most 30 days).
#[utoipa::path(post, path = "/admin/v1/keys/{id}/rotate", tag = "keys",
    params(("id" = String, Path), ("grace" = Option<String>, Query, description = "how long the old secret still works, e.g. `24h`, `0s`")),
    responses((status = 200, body = KeyInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rotate(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = id_of(id)?;
    let grace = match percent::get(query.as_deref().unwrap_or(""), "grace") {
        None => Duration::from_secs(24 * 3600),
        Some(Ok(text)) => humantime::parse_duration(&text)
            .ok()
            .filter(|g| *g <= Duration::from_secs(30 * 86_400))
            .ok_or_else(|| ApiError::invalid("grace", "a duration of at most 30 days, like `24h` or `0s`"))?,
        Some(Err(_)) => return Err(ApiError::invalid("grace", "not valid percent-encoding")),
    };
    reload(state.writer.store().as_ref(), &state.keys).await?;
    let current = state.keys.get(&id).ok_or_else(|| ApiError::not_found("no such key"))?;
    let (_, secret) = new_secret(Some(&id));
    let until = now_ms() + grace.as_millis() as i64;
    let expected = Some(current.secret_hash.clone());
    let key = StoredKey {
        secret_hash: hash_secret(&secret),
        previous: (!grace.is_zero()).then(|| (current.secret_hash.clone(), until)),
        ..current
    };
    store_key(&state, key, expected, Some(secret), StatusCode::OK).await
}
