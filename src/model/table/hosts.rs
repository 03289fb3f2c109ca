//! Per-host settings the scan path needs: where unmatched URLs go, and the
//! verification files served on a host. A few entries: rebuilt whole on
//! every change.

use crate::model::domain::{HostSettings, Origin, Unmatched, VerificationFile, ACME_CHALLENGE_DIR};
use std::collections::HashMap;

/// What qrlaunch knows about one host.
#[derive(Debug, Default, Clone)]
pub struct HostEntry {
    /// Where URLs no rule matches go; `None`: `404`.
    pub unmatched: Option<Origin>,
    files: HashMap<Box<str>, Box<str>>,
    /// Whether an operator gave this host settings (not only files).
    settings: bool,
}

impl HostEntry {
    /// The verification file at exactly `path`.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(|body| &**body)
    }
}

/// Every host with settings or files, by lower-case host name.
#[derive(Debug, Default, Clone)]
pub struct HostTable {
    hosts: HashMap<Box<str>, HostEntry, ahash::RandomState>,
}

impl HostTable {
    pub fn build<'a>(
        settings: impl IntoIterator<Item = &'a HostSettings>,
        files: impl IntoIterator<Item = &'a VerificationFile>,
    ) -> HostTable {
        let mut hosts: HashMap<Box<str>, HostEntry, ahash::RandomState> = HashMap::default();
        for s in settings {
            let entry = hosts.entry(s.host.as_str().into()).or_default();
            entry.settings = true;
            entry.unmatched = match &s.unmatched {
                Unmatched::NotFound => None,
                Unmatched::PassThrough(origin) => Some(origin.clone()),
            };
        }
        for f in files {
            hosts
                .entry(f.host.as_str().into())
                .or_default()
                .files
                .insert(f.path.as_str().into(), f.body.as_str().into());
        }
        HostTable { hosts }
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The entry of a normalized host (lower-case, no default port).
    pub fn get(&self, host: &str) -> Option<&HostEntry> {
        if self.hosts.is_empty() {
            return None;
        }
        self.hosts.get(host)
    }

    /// The file at exactly `path` on `host` (normalized); a file stored for
    /// a host without a port answers on every port of it, as a domain is
    /// verified (WeChat, ACME) whatever port the checker was sent to.
    pub fn file(&self, host: &str, path: &str) -> Option<&str> {
        if let Some(body) = self.get(host).and_then(|h| h.file(path)) {
            return Some(body);
        }
        let (bare, port) = host.rsplit_once(':')?;
        if bare.ends_with(']') || (!bare.contains(':') && port.bytes().all(|b| b.is_ascii_digit())) {
            return self.get(bare).and_then(|h| h.file(path));
        }
        None
    }

    /// The hosts an operator put here: with settings, or with a file that
    /// is not an ACME challenge (a challenge alone makes no host).
    pub fn served_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.hosts
            .iter()
            .filter(|(_, h)| h.settings || h.files.keys().any(|p| !p.starts_with(ACME_CHALLENGE_DIR)))
            .map(|(name, _)| &**name)
    }

    /// Every ACME challenge file, as `(host, path)`.
    pub fn challenge_files(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.hosts.iter().flat_map(|(name, h)| {
            h.files
                .keys()
                .filter(|p| p.starts_with(ACME_CHALLENGE_DIR))
                .map(move |p| (&**name, &**p))
        })
    }
}
