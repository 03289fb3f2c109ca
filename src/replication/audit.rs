//! The audit log's vocabulary: who made a change ([`Actor`]), what a write
//! records ([`Record`], written by the store in the same transaction as
//! the change, so that neither exists without the other), and how the log
//! is read ([`Query`], [`Row`]).
//!
//! The actor travels with the request as a tokio task-local: the admin
//! API's auth middleware sets it ([`scope`]), the [`crate::replication::writer::Writer`]
//! carries it into the task it writes in, and each store's write reads it
//! ([`actor`]) before it hands the work to a thread of its own. A write
//! made outside a request (seeding a new store) is the service's own.

use crate::model::domain::{Entry, Line, Stored};
use crate::replication::store::{ImportSummary, StoredKey};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The API key's id (`bootstrap` for the admin token, empty for the
    /// service itself).
    pub key_id: String,
    pub key_name: String,
    /// The client's address.
    pub client: Option<String>,
}

impl Actor {
    /// The service itself (seeding a new store from `--table`).
    pub fn service() -> Actor {
        Actor {
            key_id: String::new(),
            key_name: "qrlaunch".into(),
            client: None,
        }
    }
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `future` with `actor` as the author of its writes.
pub async fn scope<F: std::future::Future>(actor: Actor, future: F) -> F::Output {
    ACTOR.scope(actor, future).await
}

/// The author of the writes of the running task.
pub fn actor() -> Actor {
    ACTOR.try_with(Clone::clone).unwrap_or_else(|_| Actor::service())
}

/// What one write records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `create`, `replace`, `patch`, `delete`, `import`, `key_create`,
    /// `key_change`, `key_rotate`, `key_delete`, `certificate_create`,
    /// `certificate_renew`, `certificate_delete`.
    pub action: &'static str,
    /// `code`, `rule`, `host`, `file`, `import`, `key`, `certificate`.
    pub kind: &'static str,
    /// The code, the rule's normalized prefix, the host, the file's key,
    /// the key's id; empty for an import.
    pub entry: String,
    /// JSON: the entry as a table-file line, a key without its secret, an
    /// import's counts.
    pub before: Option<String>,
    pub after: Option<String>,
}

fn line(entry: &Entry) -> String {
    serde_json::to_string(&Line::from(entry)).unwrap_or_default()
}

impl Record {
    /// A put: `create` or `replace`.
    pub fn put(existing: Option<&Stored<Entry>>, entry: &Entry) -> Record {
        Record {
            action: if existing.is_some() { "replace" } else { "create" },
            kind: entry.kind().as_str(),
            entry: entry.key().as_str().to_string(),
            before: existing.map(|s| line(&s.entry)),
            after: Some(line(entry)),
        }
    }

    pub fn patch(before: &Entry, after: &Entry) -> Record {
        Record {
            action: "patch",
            kind: after.kind().as_str(),
            entry: after.key().as_str().to_string(),
            before: Some(line(before)),
            after: Some(line(after)),
        }
    }

    pub fn delete(before: &Entry) -> Record {
        Record {
            action: "delete",
            kind: before.kind().as_str(),
            entry: before.key().as_str().to_string(),
            before: Some(line(before)),
            after: None,
        }
    }

    /// One line for a whole import: its counts, not its entries.
    pub fn import(summary: &ImportSummary, mode: &str) -> Record {
        Record {
            action: "import",
            kind: "import",
            entry: String::new(),
            before: None,
            after: Some(
                serde_json::json!({
                    "mode": mode, "lines": summary.lines, "codes": summary.codes, "rules": summary.rules,
                    "hosts": summary.hosts, "files": summary.files, "generated": summary.generated.len(),
                })
                .to_string(),
            ),
        }
    }

    /// A key's change; never its secret or the secret's hash.
    pub fn key(before: Option<&StoredKey>, after: Option<&StoredKey>) -> Record {
        let id = after.or(before).map(|k| k.id.clone()).unwrap_or_default();
        let action = match (before, after) {
            (None, _) => "key_create",
            (Some(_), None) => "key_delete",
            (Some(b), Some(a)) if b.secret_hash != a.secret_hash => "key_rotate",
            (Some(_), Some(_)) => "key_change",
        };
        Record {
            action,
            kind: "key",
            entry: id,
            before: before.map(key_json),
            after: after.map(key_json),
        }
    }
}

impl Record {
    /// A certificate stored for `name` (`certificate_create` or
    /// `certificate_renew`): its validity, never its key.
    pub fn certificate(before_not_after: Option<i64>, cert: &crate::replication::store::StoredCertificate) -> Record {
        Record {
            action: if before_not_after.is_some() {
                "certificate_renew"
            } else {
                "certificate_create"
            },
            kind: "certificate",
            entry: cert.name.clone(),
            before: before_not_after.map(|t| serde_json::json!({ "not_after": t }).to_string()),
            after: Some(
                serde_json::json!({"not_before": cert.not_before, "not_after": cert.not_after, "renew_after": cert.renew_after})
                    .to_string(),
            ),
        }
    }
}

impl Record {
    /// A certificate removed (`certificate_delete`): its host left the table.
    pub fn certificate_removed(name: &str, before_not_after: Option<i64>) -> Record {
        Record {
            action: "certificate_delete",
            kind: "certificate",
            entry: name.to_string(),
            before: before_not_after.map(|t| serde_json::json!({ "not_after": t }).to_string()),
            after: None,
        }
    }
}

fn key_json(key: &StoredKey) -> String {
    let [tags, hosts, appids] = key.scopes.lists();
    serde_json::json!({
        "id": key.id, "name": key.name, "role": key.role.as_str(), "tags": tags, "hosts": hosts,
        "appids": appids, "expires_at": key.expires_at,
    })
    .to_string()
}

/// One line of the audit log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Increases with every line, in commit order: the cursor.
    pub id: i64,
    /// UNIX ms.
    pub at: i64,
    pub actor: Actor,
    pub record: RowRecord,
    /// The change log position of the write.
    pub position: i64,
}

/// A [`Record`] as read back (owned strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRecord {
    pub action: String,
    pub kind: String,
    pub entry: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Which lines to read: newest first, before `before_id`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub before_id: Option<i64>,
    pub limit: u32,
    pub key_id: Option<String>,
    pub entry: Option<String>,
    /// UNIX ms, inclusive.
    pub from_ms: Option<i64>,
    /// UNIX ms, exclusive.
    pub to_ms: Option<i64>,
    /// Only lines about codes and rules (what a key with scopes may see).
    pub entries_only: bool,
}
