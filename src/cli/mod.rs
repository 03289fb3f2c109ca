//! The operator CLI: `qrlaunch import|export|code|rule …`, a thin client of
//! the admin API. Synchronous (reqwest's blocking client); entries print as
//! one JSON object a line, errors as `qrlaunch: field: message`.

mod client;
mod transfer;

pub use client::{AdminClient, CliError};

use crate::config::{AdminArgs, ChangeArgs, CodeAction, EntryArgs, PageArgs, RuleAction};
use crate::scheme_url::push_encoded;
use reqwest::Method;
use serde_json::{json, Map, Value};

pub use transfer::{export, import};

/// Connects with the token from the environment, the flag or the data dir.
pub fn connect(admin: &AdminArgs) -> Result<AdminClient, CliError> {
    let env_token = std::env::var("QRLAUNCH_ADMIN_TOKEN").ok();
    AdminClient::new(
        &admin.admin_url,
        env_token.as_deref(),
        admin.admin_token_file.as_deref(),
        &admin.data,
    )
}

pub fn code(client: &AdminClient, action: CodeAction) -> Result<(), CliError> {
    let path = |code: &str| {
        let mut path = String::from("/admin/v1/codes/");
        push_encoded(&mut path, code);
        path
    };
    match action {
        CodeAction::Add { code, entry } => {
            let mut body = entry_body(&entry);
            if let Some(code) = code {
                body.insert("code".into(), json!(code));
            }
            print_json(client.send(client.request(Method::POST, "/admin/v1/codes").json(&body))?)
        }
        CodeAction::Get { code } => print_json(client.send(client.request(Method::GET, &path(&code)))?),
        CodeAction::Set { code, change } => {
            print_json(client.send(client.request(Method::PATCH, &path(&code)).json(&change_body(&change)))?)
        }
        CodeAction::Rm { code } => client.send(client.request(Method::DELETE, &path(&code))).map(drop),
        CodeAction::Ls { page } => list(client, "/admin/v1/codes", &page),
    }
}

pub fn rule(client: &AdminClient, action: RuleAction) -> Result<(), CliError> {
    let path = |prefix: &str| {
        let mut path = String::from("/admin/v1/rules?prefix=");
        push_encoded(&mut path, prefix);
        path
    };
    match action {
        RuleAction::Add { prefix, entry } => {
            let mut body = entry_body(&entry);
            body.insert("prefix".into(), json!(prefix));
            print_json(client.send(client.request(Method::POST, "/admin/v1/rules").json(&body))?)
        }
        RuleAction::Get { prefix } => print_json(client.send(client.request(Method::GET, &path(&prefix)))?),
        RuleAction::Set { prefix, change } => print_json(
            client.send(
                client
                    .request(Method::PATCH, &path(&prefix))
                    .json(&change_body(&change)),
            )?,
        ),
        RuleAction::Rm { prefix } => client.send(client.request(Method::DELETE, &path(&prefix))).map(drop),
        RuleAction::Ls { page } => list(client, "/admin/v1/rules", &page),
    }
}

fn entry_body(entry: &EntryArgs) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("appid".into(), json!(entry.appid));
    body.insert("path".into(), json!(entry.path));
    let optional = [
        ("query", &entry.query),
        ("env_version", &entry.env_version),
        ("fallback_url", &entry.fallback_url),
        ("valid_from", &entry.valid_from),
        ("valid_until", &entry.valid_until),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    if entry.disabled {
        body.insert("disabled".into(), json!(true));
    }
    body
}

/// A JSON merge patch of the given changes (`null` clears a field).
fn change_body(change: &ChangeArgs) -> Map<String, Value> {
    let mut body = Map::new();
    let given = [
        ("appid", &change.appid),
        ("path", &change.path),
        ("query", &change.query),
        ("env_version", &change.env_version),
        ("fallback_url", &change.fallback_url),
        ("valid_from", &change.valid_from),
        ("valid_until", &change.valid_until),
    ];
    for (field, value) in given {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    for (field, clear) in [
        ("fallback_url", change.clear_fallback_url),
        ("valid_from", change.clear_valid_from),
        ("valid_until", change.clear_valid_until),
    ] {
        if clear {
            body.insert(field.into(), Value::Null);
        }
    }
    if change.disable || change.enable {
        body.insert("disabled".into(), json!(change.disable));
    }
    body
}

fn list(client: &AdminClient, route: &str, page: &PageArgs) -> Result<(), CliError> {
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("{route}?limit={}", page.limit);
        if let Some(after) = &after {
            path.push_str("&after=");
            push_encoded(&mut path, after);
        }
        let body: Value = client
            .send(client.request(Method::GET, &path))?
            .json()
            .unwrap_or_default();
        for item in body.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
            println!("{item}");
        }
        match body.get("next").and_then(|n| n.as_str()) {
            Some(next) if page.all => after = Some(next.to_string()),
            _ => return Ok(()),
        }
    }
}

fn print_json(response: reqwest::blocking::Response) -> Result<(), CliError> {
    let body: Value = response.json().unwrap_or_default();
    println!("{body}");
    Ok(())
}
