//! Who is asking, and whether they may: the key behind a request, and the
//! checks every admin route makes with the core rules of
//! [`crate::model::access`].
//!
//! * [`KeyRing`]: this node's copy of the API keys (read again whenever
//!   the change log says a key changed), and the secrets they accept.
//!   A secret is `qrk_ID_RANDOM`; the store keeps only its SHA-256.
//! * [`Principal`]: the key a request authenticated with (the bootstrap
//!   admin token counts as an admin key), set for the request's task by
//!   the auth middleware ([`scope`]) and read by the handlers ([`current`]).
//! * [`need_of`]: what each route needs of the role; a route without a
//!   line needs `admin` (and a test fails until it has one).
//! * [`require_cover`], [`covers`]: whether the key's scopes reach an entry.

use super::error::ApiError;
use crate::model::access::{Need, Role, Scopes};
use crate::model::domain::Entry;
use crate::replication::store::StoredKey;
use arc_swap::ArcSwap;
use axum::http::Method;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// The key a request acts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (`bootstrap` for the admin token).
    pub id: String,
    pub name: String,
    pub role: Role,
    pub scopes: Scopes,
}

impl Principal {
    /// The bootstrap admin token (`QRLAUNCH_ADMIN_TOKEN`, the token file).
    pub fn bootstrap() -> Principal {
        Principal {
            id: "bootstrap".into(),
            name: "the admin token".into(),
            role: Role::Admin,
            scopes: Scopes::default(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this key may see and touch `entry`: admins everything,
    /// others codes and rules within their scopes.
    pub fn covers(&self, entry: &Entry) -> bool {
        !self.id.is_empty() && (self.role == Role::Admin || self.scopes.cover(entry))
    }

    fn describe(&self) -> String {
        let scopes = self.scopes.describe();
        if scopes.is_empty() {
            format!("key {:?} ({})", self.name, self.role.as_str())
        } else {
            format!("key {:?} ({}, scopes: {scopes})", self.name, self.role.as_str())
        }
    }
}

tokio::task_local! {
    static PRINCIPAL: Principal;
}

/// Runs `future` (the rest of a request) as `principal`.
pub async fn scope<F: std::future::Future>(principal: Principal, future: F) -> F::Output {
    PRINCIPAL.scope(principal, future).await
}

/// The key of the request being handled. Outside a request (no key set),
/// nobody: a key that reaches no entry, so checks fail closed.
pub fn current() -> Principal {
    PRINCIPAL.try_with(Clone::clone).unwrap_or_else(|_| Principal {
        id: String::new(),
        name: "nobody".into(),
        role: Role::Viewer,
        scopes: Scopes::default(),
    })
}

/// Whether the request's key may see and touch `entry`.
pub fn covers(entry: &Entry) -> bool {
    current().covers(entry)
}

/// `403` unless the request's key may see and touch `entry`.
pub fn require_cover(entry: &Entry) -> Result<(), ApiError> {
    let principal = current();
    if principal.covers(entry) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} does not reach {} {:?}",
        principal.describe(),
        super::entries::noun(entry.kind()),
        entry.key().as_str()
    )))
}

/// `403` unless the request's key reaches the entry stored at `key`; for
/// an entry that is gone (its counts remain), only a key without scopes.
pub async fn require_cover_of(
    store: &dyn crate::replication::store::Store,
    key: &crate::model::domain::EntryKey,
) -> Result<(), ApiError> {
    match store.get(key).await? {
        Some(stored) => require_cover(&stored.entry),
        None => require_unscoped("the counts of an entry that no longer exists"),
    }
}

/// `403` unless the request's key may read the 404 counts of `host`: no
/// scopes, or `host` among its host scopes.
pub fn require_host(host: &str) -> Result<(), ApiError> {
    let principal = current();
    let reaches = principal.role == Role::Admin
        || principal.scopes.is_empty()
        || principal.scopes.hosts.iter().any(|h| h.as_str() == host);
    if !principal.id.is_empty() && reaches {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} does not reach host {host:?}",
        principal.describe()
    )))
}

/// `403` unless the request's key may read a campaign's counts: no scopes,
/// or `tag` among its tag scopes and no other kind of scope (a host or an
/// appid scope would not hold for every entry with the tag).
pub fn require_tag(tag: &crate::model::domain::Tag) -> Result<(), ApiError> {
    let principal = current();
    let scopes = &principal.scopes;
    let reaches = principal.role == Role::Admin
        || scopes.is_empty()
        || (scopes.tags.contains(tag) && scopes.hosts.is_empty() && scopes.appids.is_empty());
    if !principal.id.is_empty() && reaches {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} does not reach every entry with tag {:?}",
        principal.describe(),
        tag.as_str()
    )))
}

/// `403` unless the request's key is an admin key or has no scopes (what
/// an aggregate over entries needs).
pub fn require_unscoped(what: &str) -> Result<(), ApiError> {
    let principal = current();
    if !principal.id.is_empty() && (principal.role == Role::Admin || principal.scopes.is_empty()) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} has scopes; {what} needs a key without scopes",
        principal.describe()
    )))
}

/// What a route needs of the key's role; `None` for a route this table
/// does not know (treated as `admin`).
pub fn need_of(method: &Method, path: &str) -> Option<Need> {
    let read = method == Method::GET || method == Method::HEAD;
    let need = match path {
        "/admin/v1/openapi.json" => Need::Read,
        "/admin/v1/codes" | "/admin/v1/codes/{code}" | "/admin/v1/rules" | "/admin/v1/tags/{tag}" => {
            if read {
                Need::Read
            } else {
                Need::Write
            }
        }
        "/admin/v1/codes/{code}/qr"
        | "/admin/v1/codes/{code}/stats"
        | "/admin/v1/rules/stats"
        | "/admin/v1/hosts/{host}/stats"
        | "/admin/v1/stats"
        | "/admin/v1/tags" => Need::Read,
        // Spends the merchant's WeChat quota.
        "/admin/v1/import" | "/admin/v1/codes/{code}/wxacode" => Need::Write,
        "/admin/v1/export" | "/admin/v1/audit" => Need::Read,
        "/admin/v1/hosts"
        | "/admin/v1/hosts/{host}"
        | "/admin/v1/hosts/{host}/files"
        | "/admin/v1/ingest"
        | "/admin/v1/backup"
        | "/admin/v1/keys"
        | "/admin/v1/keys/{id}"
        | "/admin/v1/keys/{id}/rotate" => Need::Admin,
        _ => return None,
    };
    Some(need)
}

/// `403` unless `principal`'s role allows the route.
pub fn check_route(principal: &Principal, method: &Method, path: &str) -> Result<(), ApiError> {
    let need = need_of(method, path).unwrap_or(Need::Admin);
    if principal.role.may(need) {
        return Ok(());
    }
    let needs = match need {
        Need::Read => "a viewer, editor or admin key",
        Need::Write => "an editor or admin key",
        Need::Admin => "an admin key",
    };
    Err(ApiError::forbidden(format!(
        "{method} {path} needs {needs}; {} may not",
        principal.describe()
    )))
}

/// The prefix of every key secret.
pub const SECRET_PREFIX: &str = "qrk_";

/// A new key id (12 base62 characters) and secret (`qrk_ID_` and 40
/// more), from the OS's CSPRNG.
pub fn new_secret(id: Option<&str>) -> (String, String) {
    use rand::distr::{Alphanumeric, SampleString};
    let mut rng = rand::rng();
    let id = id.map_or_else(|| Alphanumeric.sample_string(&mut rng, 12), str::to_string);
    let secret = format!("{SECRET_PREFIX}{id}_{}", Alphanumeric.sample_string(&mut rng, 40));
    (id, secret)
}

/// The stored form of a secret: SHA-256, lower-case hex. (A secret has
/// 238 random bits; a slow hash would add nothing but CPU per request.)
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// This node's API keys, by id, swapped whole when they are read again;
/// and when each was last used, written to the store now and then.
#[derive(Default)]
pub struct KeyRing {
    keys: ArcSwap<HashMap<String, StoredKey>>,
    used: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.load().len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    pub fn replace(&self, keys: Vec<StoredKey>) {
        self.keys
            .store(Arc::new(keys.into_iter().map(|k| (k.id.clone(), k)).collect()));
    }

    /// The key a bearer secret belongs to, if it is valid at `now_ms`
    /// (not expired; the previous secret of a rotated key within its
    /// grace). Compares hashes in constant time.
    pub fn authenticate(&self, secret: &[u8], now_ms: i64) -> Option<Principal> {
        let secret = std::str::from_utf8(secret).ok()?;
        let id = secret.strip_prefix(SECRET_PREFIX)?.split_once('_')?.0;
        let keys = self.keys.load();
        let key = keys.get(id)?;
        let hash = hash_secret(secret);
        let current = bool::from(hash.as_bytes().ct_eq(key.secret_hash.as_bytes()));
        let previous = key.previous.as_ref().is_some_and(|(previous, until)| {
            bool::from(hash.as_bytes().ct_eq(previous.as_bytes())) & (now_ms < *until)
        });
        let live = key.expires_at.is_none_or(|expires| now_ms < expires);
        if !(current | previous) || !live {
            return None;
        }
        if let Ok(mut used) = self.used.lock() {
            used.insert(key.id.clone(), now_ms);
        }
        Some(Principal {
            id: key.id.clone(),
            name: key.name.clone(),
            role: key.role,
            scopes: key.scopes.clone(),
        })
    }

    /// The keys, in id order.
    pub fn list(&self) -> Vec<StoredKey> {
        let mut keys: Vec<StoredKey> = self.keys.load().values().cloned().collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        keys
    }

    pub fn get(&self, id: &str) -> Option<StoredKey> {
        self.keys.load().get(id).cloned()
    }

    /// The last uses recorded since the previous call.
    pub fn take_used(&self) -> Vec<(String, i64)> {
        self.used
            .lock()
            .map(|mut used| used.drain().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str, role: Role) -> StoredKey {
        StoredKey {
            id: id.into(),
            name: format!("key {id}"),
            role,
            scopes: Scopes::default(),
            secret_hash: hash_secret(secret),
            previous: None,
            created_at: 0,
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_secret_finds_its_key_and_nothing_else() {
        let (id, secret) = new_secret(None);
        assert!(secret.starts_with(&format!("qrk_{id}_")) && secret.len() == 4 + 12 + 1 + 40);
        let ring = KeyRing::default();
        let mut expiring = key("exp", "qrk_exp_s", Role::Viewer);
        expiring.expires_at = Some(1_000);
        let mut rotated = key("rot", "qrk_rot_new", Role::Editor);
        rotated.previous = Some((hash_secret("qrk_rot_old"), 5_000));
        ring.replace(vec![key(&id, &secret, Role::Admin), expiring, rotated]);
        assert_eq!(ring.authenticate(secret.as_bytes(), 0).unwrap().role, Role::Admin);
        assert!(ring.authenticate(format!("{secret}x").as_bytes(), 0).is_none());
        assert!(ring.authenticate(b"qrk_unknown_x", 0).is_none());
        assert!(ring.authenticate(b"plain-token", 0).is_none());
        assert!(ring.authenticate(b"qrk_exp_s", 999).is_some());
        assert!(ring.authenticate(b"qrk_exp_s", 1_000).is_none(), "expired");
        assert!(ring.authenticate(b"qrk_rot_new", 9_000).is_some());
        assert!(ring.authenticate(b"qrk_rot_old", 4_999).is_some(), "within the grace");
        assert!(ring.authenticate(b"qrk_rot_old", 5_000).is_none(), "after the grace");
        let used = ring.take_used();
        assert!(used.iter().any(|(i, _)| i == &id));
        assert!(ring.take_used().is_empty());
    }

    #[test]
    fn outside_a_request_nothing_is_covered() {
        let code =
            match crate::model::table_file::parse_line(r#"{"code":"c1","appid":"wx1111111111111111","path":"p"}"#) {
                Ok(crate::model::table_file::Item::Entry(entry)) => entry,
                _ => panic!("a code"),
            };
        assert!(!covers(&code));
        assert!(require_unscoped("this").is_err());
    }
}
