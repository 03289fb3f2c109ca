//! Who may do what: the roles and scopes of API keys, and the one rule that
//! decides whether a key may see or change an entry. The admin API asks
//! these (`src/edge/admin/access.rs`); nothing else decides it.
//!
//! * A **role** says which kind of request a key may make: `admin`
//!   everything (keys, hosts, verification files, cache logs included),
//!   `editor` reads and writes of codes and rules, `viewer` reads only.
//! * **Scopes** narrow which codes and rules an editor or a viewer may see
//!   and touch. Each kind that is given must match (any of its values
//!   will do): `tags` (the entry carries one of them), `hosts` (a rule's
//!   prefix is on one of them; codes answer on every host, so a key with
//!   host scopes and no tag scope sees no code), `appids` (the entry opens
//!   one of these mini programs). A key without scopes sees every code
//!   and rule; an admin key never has scopes.

use super::domain::{AppId, Entry, FieldError, HostName, Tag};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Editor,
    Viewer,
}

/// What a request needs of its key's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read codes, rules, their counts and QR images.
    Read,
    /// Create, change, delete and import codes and rules.
    Write,
    /// Keys, hosts, verification files, cache logs, the whole export.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Result<Role, FieldError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| FieldError::new("role", format!("must be admin, editor or viewer, got {s:?}")))
    }

    /// Whether this role may make a request that needs `need`.
    pub fn may(self, need: Need) -> bool {
        match (self, need) {
            (Role::Admin, _) => true,
            (Role::Editor, Need::Read | Need::Write) => true,
            (Role::Viewer, Need::Read) => true,
            (Role::Editor | Role::Viewer, _) => false,
        }
    }
}

/// Which codes and rules a key may see and touch; empty: all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    pub tags: Vec<Tag>,
    pub hosts: Vec<HostName>,
    pub appids: Vec<AppId>,
}

impl Scopes {
    /// Parses the scope lists of a request, each value checked as the
    /// field it names.
    pub fn parse(tags: &[String], hosts: &[String], appids: &[String]) -> Result<Scopes, FieldError> {
        let field = |name: &'static str, e: FieldError| FieldError::new(name, e.message);
        let mut scopes = Scopes {
            tags: tags
                .iter()
                .map(|t| t.parse().map_err(|e| field("tags", e)))
                .collect::<Result<_, _>>()?,
            hosts: hosts
                .iter()
                .map(|h| h.to_ascii_lowercase().parse().map_err(|e| field("hosts", e)))
                .collect::<Result<_, _>>()?,
            appids: appids
                .iter()
                .map(|a| a.parse().map_err(|e| field("appids", e)))
                .collect::<Result<_, _>>()?,
        };
        scopes.tags.sort();
        scopes.tags.dedup();
        scopes.hosts.sort();
        scopes.hosts.dedup();
        scopes.appids.sort();
        scopes.appids.dedup();
        Ok(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.hosts.is_empty() && self.appids.is_empty()
    }

    /// Whether a key with these scopes may see and touch `entry`.
    pub fn cover(&self, entry: &Entry) -> bool {
        if self.is_empty() {
            return matches!(entry, Entry::Code(_) | Entry::Rule(_));
        }
        let (tags, appid, host) = match entry {
            Entry::Code(c) => (&c.tags, &c.entry.appid, None),
            Entry::Rule(r) => (
                &r.tags,
                &r.entry.appid,
                Some(super::url_key::host_of_key(r.prefix.key())),
            ),
            Entry::Host(_) | Entry::File(_) => return false,
        };
        let tag_ok = self.tags.is_empty() || tags.iter().any(|t| self.tags.contains(t));
        let appid_ok = self.appids.is_empty() || self.appids.contains(appid);
        let host_ok = match host {
            // Codes are host-free: host scopes alone do not reach them.
            None => self.hosts.is_empty() || !self.tags.is_empty(),
            Some(host) => self.hosts.is_empty() || self.hosts.iter().any(|h| h.as_str() == host),
        };
        tag_ok && appid_ok && host_ok
    }

    /// The three lists as strings (what the API shows and the store keeps).
    pub fn lists(&self) -> [Vec<String>; 3] {
        [
            self.tags.iter().map(|t| t.as_str().to_string()).collect(),
            self.hosts.iter().map(|h| h.as_str().to_string()).collect(),
            self.appids.iter().map(|a| a.as_str().to_string()).collect(),
        ]
    }

    /// What a refusal names: the scope kinds the key has.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.tags.is_empty() {
            parts.push(format!(
                "tags {}",
                self.tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.hosts.is_empty() {
            parts.push(format!(
                "hosts {}",
                self.hosts.iter().map(HostName::as_str).collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.appids.is_empty() {
            parts.push(format!(
                "appids {}",
                self.appids.iter().map(AppId::as_str).collect::<Vec<_>>().join(", ")
            ));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table_file::parse_line;

    fn entry(line: &str) -> Entry {
        match parse_line(line).expect("a valid line") {
            crate::model::table_file::Item::Entry(entry) => entry,
            crate::model::table_file::Item::Generate(_) => panic!("a line with its key"),
        }
    }

    #[test]
    fn roles_allow_what_they_say() {
        let cases = [
            (Role::Admin, [true, true, true]),
            (Role::Editor, [true, true, false]),
            (Role::Viewer, [true, false, false]),
        ];
        for (role, expected) in cases {
            for (need, allowed) in [Need::Read, Need::Write, Need::Admin].into_iter().zip(expected) {
                assert_eq!(role.may(need), allowed, "{role:?} {need:?}");
            }
        }
    }

    #[test]
    fn scopes_cover_entries_as_documented() {
        let spring = entry(r#"{"code":"s1","appid":"wx1111111111111111","path":"p","tags":["spring"]}"#);
        let other_app = entry(r#"{"code":"s2","appid":"wx2222222222222222","path":"p","tags":["spring"]}"#);
        let untagged = entry(r#"{"code":"u1","appid":"wx1111111111111111","path":"p"}"#);
        let rule = entry(
            r#"{"prefix":"https://shop.example.com/dl?c=","appid":"wx1111111111111111","path":"p","tags":["spring"]}"#,
        );
        let host = entry(r#"{"host":"shop.example.com","unmatched":"https://origin.example.com"}"#);
        let s = |tags: &[&str], hosts: &[&str], appids: &[&str]| {
            let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            Scopes::parse(&v(tags), &v(hosts), &v(appids)).unwrap()
        };
        // (scopes, [spring, other_app, untagged, rule, host])
        let cases = [
            (s(&[], &[], &[]), [true, true, true, true, false]),
            (s(&["spring"], &[], &[]), [true, true, false, true, false]),
            (s(&["autumn"], &[], &[]), [false, false, false, false, false]),
            (s(&[], &["shop.example.com"], &[]), [false, false, false, true, false]),
            (s(&[], &["SHOP.example.com"], &[]), [false, false, false, true, false]),
            (s(&[], &["other.example.com"], &[]), [false, false, false, false, false]),
            (
                s(&["spring"], &["shop.example.com"], &[]),
                [true, true, false, true, false],
            ),
            (s(&[], &[], &["wx1111111111111111"]), [true, false, true, true, false]),
            (
                s(&["spring"], &[], &["wx2222222222222222"]),
                [false, true, false, false, false],
            ),
        ];
        let entries = [&spring, &other_app, &untagged, &rule, &host];
        for (scopes, expected) in cases {
            for (entry, covered) in entries.iter().zip(expected) {
                assert_eq!(
                    scopes.cover(entry),
                    covered,
                    "{} covers {:?}",
                    scopes.describe(),
                    entry.key()
                );
            }
        }
    }

    #[test]
    fn bad_scopes_name_their_field() {
        let e = Scopes::parse(&["bad tag".into()], &[], &[]).unwrap_err();
        assert_eq!(e.field, "tags");
        let e = Scopes::parse(&[], &["https://x".into()], &[]).unwrap_err();
        assert_eq!(e.field, "hosts");
        let e = Scopes::parse(&[], &[], &["wx1".into()]).unwrap_err();
        assert_eq!(e.field, "appids");
        assert_eq!(Role::parse("root").unwrap_err().field, "role");
    }
}
