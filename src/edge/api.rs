//! The admin API's request and response bodies, shared by the server
//! ([`crate::edge::admin`]), the CLI ([`crate::edge::cli`]) and the tests, so the three
//! cannot drift apart. Entries travel as [`Line`], the table file's JSON.

use crate::model::client_class::{ClientClass, CountClass};
use crate::model::domain::{Line, Stored};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An entry as the admin API shows it: its line plus bookkeeping times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct StoredEntry {
    #[serde(flatten)]
    pub line: Line,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Things the operator should know about this write (a code that
    /// shadows a rule's URLs, and the like). Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl StoredEntry {
    pub fn new(stored: &Stored<crate::model::domain::Entry>) -> StoredEntry {
        StoredEntry {
            line: Line::from(&stored.entry),
            created_at: from_ms(stored.created_at),
            updated_at: from_ms(stored.updated_at),
            warnings: Vec::new(),
        }
    }
}

/// A UNIX-millisecond time as a date-time.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Something a write did that the operator may not have meant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Warning {
    /// What kind: `code_shadows_rule`.
    pub kind: String,
    pub message: String,
    /// The code involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The rule prefix involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One page of a listing, in key order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Page {
    pub items: Vec<StoredEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Every error answer of the admin API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ErrorBody {
    /// `invalid`, `not_found`, `conflict`, `unauthorized`, `bad_request`,
    /// `too_large`, `timeout`, `unavailable`, `internal`, …
    pub error: String,
    /// The field at fault, for `invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// A rejected import's first bad lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineErrorBody>,
}

/// One bad line of a rejected import.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct LineErrorBody {
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// A committed import.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ImportAnswer {
    /// `upsert` or `insert`.
    pub mode: String,
    /// Lines read, blank ones included.
    pub lines: usize,
    pub codes: u64,
    pub rules: u64,
    #[serde(default)]
    pub hosts: u64,
    #[serde(default)]
    pub files: u64,
    /// The codes generated for lines without `code`, by line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<GeneratedCode>,
    /// The change-log position of the import.
    #[serde(default)]
    pub position: i64,
    /// What the operator should know (a code shadowing a rule, …), for the
    /// first 10,000 codes and rules of the import, at most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// A code the server chose for one import line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct GeneratedCode {
    pub line: usize,
    pub code: String,
}

/// The answer of a change to every entry with one tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct BulkAnswer {
    /// Entries changed.
    pub changed: usize,
    pub position: i64,
}

/// Scans on one UTC day (or over a range), by client class.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct DayCounts {
    /// `2026-11-24`; absent on totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    pub ios: u64,
    pub android: u64,
    pub wechat: u64,
    pub inapp: u64,
    pub desktop: u64,
    pub other: u64,
    /// Scans read by WeChat's own scanner and resolved by the mini
    /// program's landing page (`/v1/resolve?…&scan=1`).
    #[serde(default)]
    pub wechat_scan: u64,
    /// 404s (host statistics only).
    pub not_found: u64,
    /// Every column but `other`, which counts only with `include_other`.
    pub total: u64,
}

impl DayCounts {
    /// The column of `class`.
    fn column(&mut self, class: CountClass) -> &mut u64 {
        match class {
            CountClass::Client(ClientClass::Ios) => &mut self.ios,
            CountClass::Client(ClientClass::Android) => &mut self.android,
            CountClass::Client(ClientClass::Wechat) => &mut self.wechat,
            CountClass::Client(ClientClass::Inapp) => &mut self.inapp,
            CountClass::Client(ClientClass::Desktop) => &mut self.desktop,
            CountClass::Client(ClientClass::Other) => &mut self.other,
            CountClass::WechatScan => &mut self.wechat_scan,
            CountClass::NotFound => &mut self.not_found,
        }
    }

    /// Adds `n` to the column of `class` and to the total.
    pub fn add(&mut self, class: CountClass, n: u64) {
        *self.column(class) += n;
        self.total += n;
    }

    /// The count of `class`.
    pub fn of(&self, class: CountClass) -> u64 {
        match class {
            CountClass::Client(ClientClass::Ios) => self.ios,
            CountClass::Client(ClientClass::Android) => self.android,
            CountClass::Client(ClientClass::Wechat) => self.wechat,
            CountClass::Client(ClientClass::Inapp) => self.inapp,
            CountClass::Client(ClientClass::Desktop) => self.desktop,
            CountClass::Client(ClientClass::Other) => self.other,
            CountClass::WechatScan => self.wechat_scan,
            CountClass::NotFound => self.not_found,
        }
    }
}

/// One entry's total in a campaign's statistics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct EntryTotal {
    /// The code, the rule's normalized prefix, or (counts by value) the
    /// parameter's value.
    pub key: String,
    pub total: u64,
    /// Its days with scans, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<DayCounts>,
}

/// Scan counts of an entry, a host or a tag over a range of days.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct StatsAnswer {
    /// `code`, `rule` or `host`.
    pub kind: String,
    /// The code, the rule's normalized prefix, or the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The tag, for a campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The query parameter counted by value (`?by=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub from: String,
    pub to: String,
    /// The time zone whose days these are (`--stats-time-zone`).
    #[serde(default)]
    pub time_zone: String,
    /// Whether `other` (bots, link previews) is in the totals.
    #[serde(default)]
    pub include_other: bool,
    /// Days with scans, in order.
    pub days: Vec<DayCounts>,
    pub total: DayCounts,
    /// For a tag: each entry (for `by`: each value) with its total and
    /// days, most scanned first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryTotal>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_entry_round_trips_with_its_times() {
        let json = r#"{"code":"a","appid":"wx1234567890abcdef","path":"p","query":"","env_version":"release","created_at":"2026-11-24T03:54:05.687Z","updated_at":"2026-11-24T03:54:05Z"}"#;
        let parsed: StoredEntry = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.line.code.as_deref(), Some("a"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
    }
}

/// What `POST /admin/v1/ingest` did with a batch of cache log lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct IngestAnswer {
    /// Lines read (blank lines are not lines).
    pub lines: u64,
    /// Lines counted as scans or 404s.
    pub counted: u64,
    /// Lines not counted: `lines - counted`.
    pub skipped: u64,
    /// Why lines were skipped: `malformed`, `counted_by_origin` (a miss
    /// or pass with `--count-source origin`), `too_old` (past the kept
    /// days), `in_the_future`, `not_a_scan`.
    #[serde(default)]
    pub skipped_by: std::collections::BTreeMap<String, u64>,
    /// The first malformed lines, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineErrorBody>,
}

/// `POST /admin/v1/keys`: a new API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Who or what uses it (`campaign tool`, `alice`): 1-100 characters.
    pub name: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// Codes and rules with one of these tags (editors: what they create
    /// must carry one).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Rules whose prefix is on one of these hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Entries that open one of these mini programs.
    #[serde(default)]
    pub appids: Vec<String>,
    /// When it stops working (RFC 3339); never when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<OffsetDateTime>,
}

/// An API key as the admin API shows it; `secret` only in the answer that
/// made it (creation, rotation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appids: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<OffsetDateTime>,
    /// Updated about once a minute, not per request.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used: Option<OffsetDateTime>,
    /// After a rotation: until when the previous secret still works.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_until: Option<OffsetDateTime>,
    /// The secret, shown once: keep it; only its hash is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `GET /admin/v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyInfo>,
}

/// Who made a change, in an audit line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct AuditKey {
    /// The API key's id; `bootstrap` for the admin token; empty for the
    /// service itself (seeding a new store).
    pub id: String,
    pub name: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct AuditItem {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub time: OffsetDateTime,
    pub key: AuditKey,
    /// The client's address.
    pub client: Option<String>,
    /// `create`, `replace`, `patch`, `delete`, `import`, `key_create`,
    /// `key_change`, `key_rotate`, `key_delete`, `certificate_create`,
    /// `certificate_renew`, `certificate_delete`.
    pub action: String,
    /// `code`, `rule`, `host`, `file`, `import`, `key`, `certificate`.
    pub kind: String,
    /// The code, the rule's prefix (normalized), the host, the key's id,
    /// a certificate's name; empty for an import.
    pub entry: String,
    /// The entry as a table-file line (a key without its secret; an
    /// import's counts); `null` where it did not exist.
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
    /// The change log position of the write.
    pub position: i64,
}

/// `GET /admin/v1/audit`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// Pass as `after` for older lines; absent at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A tag (a campaign) and how many codes and rules carry it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TagInfo {
    pub tag: String,
    pub codes: u64,
    pub rules: u64,
}

/// `GET /admin/v1/tags`: the tags the key may see, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TagList {
    pub items: Vec<TagInfo>,
}
