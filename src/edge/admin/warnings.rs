//! Warnings on writes that do something the operator may not have meant:
//! on a code host, a launch code takes its single-segment path on every
//! scheme, so a code named `download` wins over a rule for
//! `https://app.shop-example.com/download`. The write goes through; its
//! answer names both, and the CLI and imports print it.

use super::AdminState;
use crate::edge::api::Warning;
use crate::model::domain::{Entry, LaunchCode, Rule};
use crate::model::percent;
use crate::model::table::Snapshot;
use crate::model::url_key;

/// At most this many warnings are listed for one write.
pub const MAX_WARNINGS: usize = 100;

/// The warnings a write of `entry` earns, judged against this node's table.
pub fn for_entry(state: &AdminState, entry: &Entry) -> Vec<Warning> {
    for_entries(state, std::slice::from_ref(entry))
}

/// The warnings of many entries (an import), at most [`MAX_WARNINGS`]. The
/// hosts that have rules are listed once, not once per entry.
pub fn for_entries(state: &AdminState, entries: &[Entry]) -> Vec<Warning> {
    let snapshot = state.writer.replica().load();
    let hosts = &state.options.code_hosts;
    let rule_hosts: Vec<&str> = snapshot
        .rule_hosts()
        .into_iter()
        .filter(|host| hosts.is_code_host(host))
        .collect();
    let mut warnings = Vec::new();
    for entry in entries {
        if warnings.len() >= MAX_WARNINGS {
            break;
        }
        match entry {
            Entry::Code(code) => warnings.extend(code_shadows(&snapshot, hosts, &rule_hosts, code)),
            Entry::Rule(rule) => warnings.extend(rule_shadowed(&snapshot, hosts, rule)),
            Entry::Host(_) | Entry::File(_) => {}
        }
    }
    warnings.truncate(MAX_WARNINGS);
    warnings
}

/// Rules whose URLs `code` takes: on each of `rule_hosts` (the code hosts
/// that have rules), the code's own URL, over http and https. The cost
/// grows with the number of such hosts, not of rules.
fn code_shadows(
    snapshot: &Snapshot,
    hosts: &crate::model::decide::CodeHosts,
    rule_hosts: &[&str],
    code: &LaunchCode,
) -> Vec<Warning> {
    let base = hosts.first().map_or("/", |(_, path)| path);
    let target = format!("{base}{}", percent::encoded(code.code.as_str()));
    let mut warnings = Vec::new();
    let mut key = String::new();
    for host in rule_hosts {
        for scheme in ["http", "https"] {
            if url_key::write_request_key(&mut key, scheme, host, &target).is_err() {
                continue;
            }
            if let Some(hit) = snapshot.rule(&key) {
                let prefix = hit.prefix.unwrap_or_default().to_string();
                warnings.push(Warning {
                    kind: "code_shadows_rule".into(),
                    message: format!(
                        "code `{}` takes {scheme}://{host}{target}, which rule `{prefix}` also matches: scans of that URL open the code",
                        code.code
                    ),
                    code: Some(code.code.to_string()),
                    prefix: Some(prefix),
                });
                if warnings.len() >= MAX_WARNINGS {
                    return warnings;
                }
            }
        }
    }
    warnings
}

/// Codes that take some of `rule`'s URLs, when its host answers codes.
fn rule_shadowed(snapshot: &Snapshot, hosts: &crate::model::decide::CodeHosts, rule: &Rule) -> Vec<Warning> {
    let key = rule.prefix.key();
    let host = url_key::host_of_key(key);
    if !hosts.is_code_host(host) {
        return Vec::new();
    }
    let base = hosts.first().filter(|(h, _)| *h == host).map_or("/", |(_, path)| path);
    let path_and_query = &key[key.find("://").map_or(0, |i| i + 3) + host.len()..];
    let Some(below) = path_and_query.strip_prefix(base) else {
        return Vec::new();
    };
    let (segment, _query) = below.split_once('?').unwrap_or((below, ""));
    let prefix = rule.prefix.to_string();
    if segment.is_empty() {
        // `https://host/` (or the base itself): every code shadows part of it.
        if !snapshot.has_codes() {
            return Vec::new();
        }
        return vec![Warning {
            kind: "code_shadows_rule".into(),
            message: format!(
                "launch codes answer on {host}: a scan of {host}{base}CODE opens the code, not rule `{prefix}`"
            ),
            code: None,
            prefix: Some(prefix),
        }];
    }
    if segment.contains('/') {
        return Vec::new();
    }
    let Ok(code) = percent::decode_strict(segment.as_bytes()) else {
        return Vec::new();
    };
    match snapshot.code(&code) {
        Some(_) => vec![Warning {
            kind: "code_shadows_rule".into(),
            message: format!(
                "code `{code}` takes {host}{base}{segment}, which this rule `{prefix}` matches: scans of that URL open the code"
            ),
            code: Some(code.into_owned()),
            prefix: Some(prefix),
        }],
        None => Vec::new(),
    }
}
