//! `qrlaunch code|rule|host …`.

use super::client::{AdminClient, CliError};
use super::output;
use crate::edge::api::{BulkAnswer, Page, StoredEntry};
use crate::edge::config::client::ChangeSwitches;
use crate::edge::config::{CodeAction, EntryFields, HostAction, PageArgs, RuleAction};
use crate::model::domain::Line;
use crate::model::percent::encoded;
use reqwest::Method;
use serde_json::{json, Map, Value};

pub fn code(client: &AdminClient, action: CodeAction) -> Result<(), CliError> {
    let path = |code: &str| format!("/admin/v1/codes/{}", encoded(code));
    match action {
        CodeAction::Add { code, fields, disabled } => {
            let mut line = new_line(&fields, disabled);
            line.code = code;
            show(client.json(client.request(Method::POST, "/admin/v1/codes").json(&line))?)
        }
        CodeAction::Get { code } => show(client.json(client.request(Method::GET, &path(&code)))?),
        CodeAction::Set {
            code,
            tag,
            fields,
            switches,
        } => {
            let patch = change_body(&fields, &switches);
            match (code, tag) {
                (Some(code), _) => show(client.json(client.request(Method::PATCH, &path(&code)).json(&patch))?),
                (None, Some(tag)) => bulk(client, &format!("/admin/v1/codes?tag={}", encoded(&tag)), &patch),
                (None, None) => Err(usage("code", "name a code, or --tag for every code with a tag")),
            }
        }
        CodeAction::Rm { code } => client.send(client.request(Method::DELETE, &path(&code))).map(drop),
        CodeAction::Ls { page } => list(client, "/admin/v1/codes", "code ls", &page),
        CodeAction::Qr { code, out, style } => super::media::code_qr(client, &code, &out, &style),
    }
}

pub fn rule(client: &AdminClient, action: RuleAction) -> Result<(), CliError> {
    let path = |prefix: &str| format!("/admin/v1/rules?prefix={}", encoded(prefix));
    match action {
        RuleAction::Add {
            prefix,
            fields,
            count_by,
            disabled,
        } => {
            let mut line = new_line(&fields, disabled);
            line.prefix = Some(prefix);
            line.count_by = count_by;
            show(client.json(client.request(Method::POST, "/admin/v1/rules").json(&line))?)
        }
        RuleAction::Get { prefix } => show(client.json(client.request(Method::GET, &path(&prefix)))?),
        RuleAction::Set {
            prefix,
            tag,
            fields,
            switches,
            count_by,
            clear_count_by,
        } => {
            let mut patch = change_body(&fields, &switches);
            if let Some(param) = count_by {
                patch.insert("count_by".into(), json!(param));
            }
            if clear_count_by {
                patch.insert("count_by".into(), Value::Null);
            }
            match (prefix, tag) {
                (Some(prefix), _) => show(client.json(client.request(Method::PATCH, &path(&prefix)).json(&patch))?),
                (None, Some(tag)) => bulk(client, &format!("/admin/v1/rules?tag={}", encoded(&tag)), &patch),
                (None, None) => Err(usage("prefix", "name a rule, or --tag for every rule with a tag")),
            }
        }
        RuleAction::Rm { prefix } => client.send(client.request(Method::DELETE, &path(&prefix))).map(drop),
        RuleAction::Ls { page } => list(client, "/admin/v1/rules", "rule ls", &page),
    }
}

pub fn host(client: &AdminClient, action: HostAction) -> Result<(), CliError> {
    let path = |host: &str| format!("/admin/v1/hosts/{}", encoded(host));
    let file_path = |host: &str, file: &str| format!("/admin/v1/hosts/{}/files?path={}", encoded(host), encoded(file));
    match action {
        HostAction::Set { host, unmatched } => {
            let mut line = Line::default();
            if unmatched != "404" {
                line.unmatched = Some(unmatched);
            }
            show(client.json(client.request(Method::PUT, &path(&host)).json(&line))?)
        }
        HostAction::Get { host } => show(client.json(client.request(Method::GET, &path(&host)))?),
        HostAction::Rm { host } => client.send(client.request(Method::DELETE, &path(&host))).map(drop),
        HostAction::Ls { page } => list(client, "/admin/v1/hosts", "host ls", &page),
        HostAction::AddFile { host, path, file } => {
            let body = std::fs::read(&file).map_err(|e| CliError::File {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            let request = client
                .request(Method::PUT, &file_path(&host, &path))
                .header("content-type", "text/plain; charset=utf-8")
                .body(body);
            show(client.json(request)?)
        }
        HostAction::RmFile { host, path } => client
            .send(client.request(Method::DELETE, &file_path(&host, &path)))
            .map(drop),
        HostAction::Files { host } => {
            let page: Page = client.json(client.request(Method::GET, &format!("{}/files", path(&host))))?;
            output::finish(page.items.iter().try_for_each(output::json))
        }
    }
}

fn usage(field: &str, message: &str) -> CliError {
    CliError::Usage {
        field: field.into(),
        message: message.into(),
    }
}

/// Prints an entry, and its warnings on standard error.
fn show(entry: StoredEntry) -> Result<(), CliError> {
    for warning in &entry.warnings {
        eprintln!("qrlaunch: warning: {}", warning.message);
    }
    output::finish(output::json(&entry))
}

fn bulk(client: &AdminClient, path: &str, patch: &Map<String, Value>) -> Result<(), CliError> {
    let answer: BulkAnswer = client.json(client.request(Method::PATCH, path).json(patch))?;
    eprintln!("changed {} entries (position {})", answer.changed, answer.position);
    output::finish(output::json(&answer))
}

/// The line of a new entry from the given fields.
fn new_line(fields: &EntryFields, disabled: bool) -> Line {
    Line {
        appid: fields.appid.clone(),
        path: fields.path.clone(),
        query: fields.query.clone(),
        env_version: fields.env_version.clone(),
        fallback_url: fields.fallback_url.clone(),
        valid_from: fields.valid_from.clone(),
        valid_until: fields.valid_until.clone(),
        disabled,
        tags: fields.tags.clone(),
        ..Line::default()
    }
}

/// A JSON merge patch of the given changes (`null` clears a field).
fn change_body(fields: &EntryFields, switches: &ChangeSwitches) -> Map<String, Value> {
    let mut body = Map::new();
    let given = [
        ("appid", &fields.appid),
        ("path", &fields.path),
        ("query", &fields.query),
        ("env_version", &fields.env_version),
        ("fallback_url", &fields.fallback_url),
        ("valid_from", &fields.valid_from),
        ("valid_until", &fields.valid_until),
    ];
    for (field, value) in given {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    if !fields.tags.is_empty() {
        body.insert("tags".into(), json!(fields.tags));
    }
    for (field, clear) in [
        ("fallback_url", switches.clear_fallback_url),
        ("valid_from", switches.clear_valid_from),
        ("valid_until", switches.clear_valid_until),
        ("tags", switches.clear_tags),
    ] {
        if clear {
            body.insert(field.into(), Value::Null);
        }
    }
    if switches.disable || switches.enable {
        body.insert("disabled".into(), json!(switches.disable));
    }
    body
}

/// Prints pages of a listing; without `--all`, says how to get the next one.
fn list(client: &AdminClient, route: &str, command: &str, page: &PageArgs) -> Result<(), CliError> {
    let mut after = page.after.clone();
    loop {
        let mut path = format!("{route}?limit={}", page.limit);
        if let Some(after) = &after {
            path.push_str("&after=");
            path.push_str(&encoded(after));
        }
        if let Some(tag) = &page.tag {
            path.push_str("&tag=");
            path.push_str(&encoded(tag));
        }
        let body: Page = client.json(client.request(Method::GET, &path))?;
        if let Err(closed) = body.items.iter().try_for_each(output::json) {
            return output::finish(Err(closed));
        }
        match body.next {
            Some(next) if page.all => after = Some(next),
            Some(next) => {
                eprintln!(
                    "qrlaunch: more entries follow: qrlaunch {command} --after '{}' (or --all)",
                    next.replace('\'', "'\\''")
                );
                return Ok(());
            }
            None => return Ok(()),
        }
    }
}
