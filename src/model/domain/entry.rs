//! What the store keeps and the table file holds: launch codes, rules, host
//! settings and verification files, with their one JSON form ([`Line`]).

use super::{
    EntryPoint, FieldError, FilePath, HostName, HostSettings, LaunchCode, Rule, Schedule, Tags, Unmatched,
    VerificationFile,
};
use serde::{Deserialize, Serialize};

/// One stored thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Code(LaunchCode),
    Rule(Rule),
    Host(HostSettings),
    File(VerificationFile),
}

/// Which kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    Code,
    Rule,
    Host,
    File,
}

impl EntryKind {
    /// Every kind, in the order exports list them.
    pub const ALL: [EntryKind; 4] = [EntryKind::Code, EntryKind::Rule, EntryKind::Host, EntryKind::File];

    /// The name used in the store and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Code => "code",
            EntryKind::Rule => "rule",
            EntryKind::Host => "host",
            EntryKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        Some(match s {
            "code" => EntryKind::Code,
            "rule" => EntryKind::Rule,
            "host" => EntryKind::Host,
            "file" => EntryKind::File,
            _ => return None,
        })
    }
}

/// Identity of an entry: a code, a rule's normalized prefix, a host, or a
/// host plus a file path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKey {
    Code(String),
    Rule(String),
    Host(String),
    File(FileKey),
}

/// The key of a verification file: its host and its path, stored as one
/// string (`host` + `path`; the path starts with `/`, which no host holds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileKey {
    stored: String,
    host_len: usize,
}

impl FileKey {
    pub fn new(host: &HostName, path: &FilePath) -> FileKey {
        let host = host.as_str();
        FileKey {
            stored: format!("{host}{path}"),
            host_len: host.len(),
        }
    }

    /// The key as the store holds it; the host ends at the first `/`.
    pub fn from_stored(stored: String) -> FileKey {
        let host_len = stored.find('/').unwrap_or(stored.len());
        FileKey { stored, host_len }
    }

    pub fn host(&self) -> &str {
        &self.stored[..self.host_len]
    }

    pub fn path(&self) -> &str {
        &self.stored[self.host_len..]
    }

    pub fn as_str(&self) -> &str {
        &self.stored
    }
}

impl EntryKey {
    pub fn of(entry: &Entry) -> EntryKey {
        match entry {
            Entry::Code(c) => EntryKey::Code(c.code.to_string()),
            Entry::Rule(r) => EntryKey::Rule(r.prefix.key().to_string()),
            Entry::Host(h) => EntryKey::Host(h.host.to_string()),
            Entry::File(f) => EntryKey::File(FileKey::new(&f.host, &f.path)),
        }
    }

    pub fn from_parts(kind: EntryKind, key: String) -> EntryKey {
        match kind {
            EntryKind::Code => EntryKey::Code(key),
            EntryKind::Rule => EntryKey::Rule(key),
            EntryKind::Host => EntryKey::Host(key),
            EntryKind::File => EntryKey::File(FileKey::from_stored(key)),
        }
    }

    pub fn kind(&self) -> EntryKind {
        match self {
            EntryKey::Code(_) => EntryKind::Code,
            EntryKey::Rule(_) => EntryKind::Rule,
            EntryKey::Host(_) => EntryKind::Host,
            EntryKey::File(_) => EntryKind::File,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            EntryKey::Code(k) | EntryKey::Rule(k) | EntryKey::Host(k) => k,
            EntryKey::File(k) => k.as_str(),
        }
    }
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        match self {
            Entry::Code(_) => EntryKind::Code,
            Entry::Rule(_) => EntryKind::Rule,
            Entry::Host(_) => EntryKind::Host,
            Entry::File(_) => EntryKind::File,
        }
    }

    pub fn key(&self) -> EntryKey {
        EntryKey::of(self)
    }

    /// The tags of a code or rule; none for hosts and files.
    pub fn tags(&self) -> Option<&Tags> {
        match self {
            Entry::Code(c) => Some(&c.tags),
            Entry::Rule(r) => Some(&r.tags),
            Entry::Host(_) | Entry::File(_) => None,
        }
    }
}

/// An entry as stored, with its bookkeeping times (UNIX milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    pub entry: T,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<T> Stored<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Stored<U> {
        Stored {
            entry: f(self.entry),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// One line of the table file, one admin API body: the JSON form of an
/// [`Entry`] before validation. Which key field is present says what it is:
/// `code` (a launch code), `prefix` (a legacy URL rule), `host` (host
/// settings) or `host` with `file` (a verification file). Unknown fields
/// are errors, so a typo such as `"app_id"` is caught, not ignored.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// A launch code: 1-32 characters of `0-9 A-Z a-z ! $ & ' ( ) * + , : ; = @ - . _ ~`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A legacy URL rule's prefix: an absolute http/https URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Host settings or a verification file: the host, like `app.shop-example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A verification file's path on `host`, like `/MP_verify_abc.txt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `wx` + 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The page path, no leading `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `k=v&k2=v2` as the page should receive it (not encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `release` (default), `trial` or `develop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_version: Option<String>,
    /// An http/https page for people who cannot open WeChat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_url: Option<String>,
    /// RFC 3339; before it the entry answers 410.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// RFC 3339; from it on the entry answers 410.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// `true`: the entry answers 410.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// A few short labels (`spring24`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Rules only: a query parameter whose values are counted apart
    /// (`channel`), at most 1,000 values a rule and day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_by: Option<String>,
    /// Host settings: where URLs that no rule matches go, an http/https
    /// origin (`302` to the same path and query there); absent: `404`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<String>,
    /// A verification file's text, at most 1 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl Line {
    /// A code line without `code`: the server generates one (admin `POST`
    /// and imports).
    pub fn wants_generated_code(&self) -> bool {
        self.code.is_none() && self.prefix.is_none() && self.host.is_none()
    }

    /// Validates every field into an [`Entry`].
    pub fn validate(&self) -> Result<Entry, FieldError> {
        match (&self.code, &self.prefix, &self.host) {
            (Some(_), Some(_), _) => Err(FieldError::new(
                "prefix",
                "a line has either `code` or `prefix`, not both",
            )),
            (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => Err(FieldError::new(
                "host",
                "`host` belongs to host settings and files, not to codes and rules",
            )),
            (None, None, None) => Err(FieldError::new(
                "code",
                "a line needs `code` (a launch code), `prefix` (a legacy URL rule) or `host` (host settings)",
            )),
            (Some(code), None, None) => {
                self.only_entry_fields()?;
                if self.count_by.is_some() {
                    return Err(FieldError::new(
                        "count_by",
                        "`count_by` belongs to rules (a code has no poster URLs to tell apart)",
                    ));
                }
                let (entry, schedule, tags) = self.entry_parts()?;
                Ok(Entry::Code(LaunchCode {
                    code: code.parse()?,
                    entry,
                    schedule,
                    tags,
                }))
            }
            (None, Some(prefix), None) => {
                self.only_entry_fields()?;
                let (entry, schedule, tags) = self.entry_parts()?;
                Ok(Entry::Rule(Rule {
                    prefix: prefix.parse()?,
                    entry,
                    schedule,
                    tags,
                    count_by: self.count_by.as_deref().map(str::parse).transpose()?,
                }))
            }
            (None, None, Some(host)) => {
                self.only_host_fields()?;
                let host: HostName = host.parse()?;
                match &self.file {
                    Some(path) => {
                        if self.unmatched.is_some() {
                            return Err(FieldError::new("unmatched", "a file line has no `unmatched`"));
                        }
                        let Some(body) = &self.body else {
                            return Err(FieldError::new("body", "missing field `body`: the file's text"));
                        };
                        Ok(Entry::File(VerificationFile {
                            host,
                            path: path.parse()?,
                            body: body.parse()?,
                        }))
                    }
                    None => {
                        if self.body.is_some() {
                            return Err(FieldError::new("body", "`body` belongs to a file line (with `file`)"));
                        }
                        let unmatched = match &self.unmatched {
                            None => Unmatched::NotFound,
                            Some(origin) => Unmatched::PassThrough(origin.parse()?),
                        };
                        Ok(Entry::Host(HostSettings { host, unmatched }))
                    }
                }
            }
        }
    }

    fn entry_parts(&self) -> Result<(EntryPoint, Schedule, Tags), FieldError> {
        // Parsed from the line's text, not from a copy of it: a table is
        // built from a million of these at a node's start.
        fn required<'a>(field: &'static str, value: &'a Option<String>) -> Result<&'a str, FieldError> {
            value
                .as_deref()
                .ok_or_else(|| FieldError::new(field, format!("missing field `{field}`")))
        }
        let entry = EntryPoint {
            appid: required("appid", &self.appid)?.parse()?,
            path: required("path", &self.path)?.parse()?,
            query: self.query.as_deref().unwrap_or("").parse()?,
            env_version: self.env_version.as_deref().unwrap_or("release").parse()?,
            fallback_url: self.fallback_url.as_deref().map(str::parse).transpose()?,
        };
        let schedule = Schedule::parse(self.valid_from.as_deref(), self.valid_until.as_deref(), self.disabled)?;
        Ok((entry, schedule, Tags::parse(&self.tags)?))
    }

    fn only_entry_fields(&self) -> Result<(), FieldError> {
        for (field, present) in [
            ("file", self.file.is_some()),
            ("unmatched", self.unmatched.is_some()),
            ("body", self.body.is_some()),
        ] {
            if present {
                return Err(FieldError::new(
                    field,
                    format!("`{field}` belongs to host settings and files, not to codes and rules"),
                ));
            }
        }
        Ok(())
    }

    fn only_host_fields(&self) -> Result<(), FieldError> {
        for (field, present) in [
            ("appid", self.appid.is_some()),
            ("path", self.path.is_some()),
            ("query", self.query.is_some()),
            ("env_version", self.env_version.is_some()),
            ("fallback_url", self.fallback_url.is_some()),
            ("valid_from", self.valid_from.is_some()),
            ("valid_until", self.valid_until.is_some()),
            ("disabled", self.disabled),
            ("tags", !self.tags.is_empty()),
            ("count_by", self.count_by.is_some()),
        ] {
            if present {
                return Err(FieldError::new(
                    field,
                    format!("`{field}` belongs to codes and rules, not to host settings"),
                ));
            }
        }
        Ok(())
    }
}

impl From<&Entry> for Line {
    fn from(entry: &Entry) -> Line {
        let point = |key: Line, point: &EntryPoint, schedule: &Schedule, tags: &Tags| Line {
            appid: Some(point.appid.to_string()),
            path: Some(point.path.to_string()),
            query: Some(point.query.to_string()),
            env_version: Some(point.env_version.to_string()),
            fallback_url: point.fallback_url.as_ref().map(ToString::to_string),
            valid_from: schedule.valid_from_rfc3339(),
            valid_until: schedule.valid_until_rfc3339(),
            disabled: schedule.disabled,
            tags: tags.to_strings(),
            ..key
        };
        match entry {
            Entry::Code(c) => point(
                Line {
                    code: Some(c.code.to_string()),
                    ..Line::default()
                },
                &c.entry,
                &c.schedule,
                &c.tags,
            ),
            Entry::Rule(r) => point(
                Line {
                    prefix: Some(r.prefix.to_string()),
                    count_by: r.count_by.as_ref().map(ToString::to_string),
                    ..Line::default()
                },
                &r.entry,
                &r.schedule,
                &r.tags,
            ),
            Entry::Host(h) => Line {
                host: Some(h.host.to_string()),
                unmatched: match &h.unmatched {
                    Unmatched::NotFound => None,
                    Unmatched::PassThrough(origin) => Some(origin.to_string()),
                },
                ..Line::default()
            },
            Entry::File(f) => Line {
                host: Some(f.host.to_string()),
                file: Some(f.path.to_string()),
                body: Some(f.body.as_str().to_string()),
                ..Line::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Entry, FieldError> {
        serde_json::from_str::<Line>(json).unwrap().validate()
    }

    #[test]
    fn every_kind_round_trips_through_its_line() {
        for json in [
            r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42&from=poster","env_version":"trial","fallback_url":"https://example.com/promo","valid_until":"2027-01-01T00:00:00Z","disabled":true,"tags":["a","spring24"]}"#,
            r#"{"prefix":"https://www.example.com/app/download?channel=","appid":"wx1234567890abcdef","path":"pages/dl","query":"","env_version":"release"}"#,
            r#"{"host":"app.shop-example.com","unmatched":"https://origin.shop-example.com"}"#,
            r#"{"host":"app.shop-example.com"}"#,
            r#"{"host":"app.shop-example.com","file":"/MP_verify_abc.txt","body":"abc"}"#,
        ] {
            let entry = parse(json).unwrap();
            assert_eq!(serde_json::to_string(&Line::from(&entry)).unwrap(), json);
        }
    }

    #[test]
    fn misplaced_fields_are_named() {
        for (json, field) in [
            (
                r#"{"code":"a","appid":"wx1234567890abcdef","path":"p","body":"x"}"#,
                "body",
            ),
            (r#"{"host":"a.com","appid":"wx1234567890abcdef"}"#, "appid"),
            (r#"{"host":"a.com","file":"/a.txt"}"#, "body"),
            (r#"{"code":"a","path":"p"}"#, "appid"),
            (r#"{"code":"a","host":"a.com"}"#, "host"),
            (r#"{"host":"a.com","unmatched":"ftp://x"}"#, "unmatched"),
        ] {
            assert_eq!(parse(json).unwrap_err().field, field, "{json}");
        }
    }
}
