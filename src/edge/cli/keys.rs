//! `qrlaunch key …`: API keys through `/admin/v1/keys` (an admin key or
//! the admin token is needed). A secret is printed once, on standard
//! output with the key; a note on standard error says to keep it. And
//! `qrlaunch audit`: who changed what.

use super::client::{AdminClient, CliError};
use super::output;
use crate::edge::api::{KeyInfo, KeyList};
use crate::edge::config::{KeyAction, KeyScopes};
use crate::model::percent::encoded;
use reqwest::Method;
use serde_json::{json, Map, Value};

pub fn key(client: &AdminClient, action: KeyAction) -> Result<(), CliError> {
    let path = |id: &str| format!("/admin/v1/keys/{}", encoded(id));
    match action {
        KeyAction::Add {
            name,
            role,
            scopes,
            expires,
        } => {
            let body = json!({
                "name": name, "role": role, "tags": scopes.tags, "hosts": scopes.hosts,
                "appids": scopes.appids, "expires": expires,
            });
            show(client.json(client.request(Method::POST, "/admin/v1/keys").json(&body))?)
        }
        KeyAction::Ls => {
            let list: KeyList = client.json(client.request(Method::GET, "/admin/v1/keys"))?;
            output::finish(list.items.iter().try_for_each(output::json))
        }
        KeyAction::Get { id } => show(client.json(client.request(Method::GET, &path(&id)))?),
        KeyAction::Set {
            id,
            name,
            role,
            scopes,
            clear_scopes,
            expires,
            no_expiry,
        } => {
            let patch = set_patch(name, role, scopes, clear_scopes, expires, no_expiry);
            if patch.is_empty() {
                return Err(CliError::Usage {
                    field: "key set".into(),
                    message: "say what to change: --name, --role, --tag, --host, --appid, --clear-scopes, \
                              --expires or --no-expiry"
                        .into(),
                });
            }
            show(client.json(client.request(Method::PATCH, &path(&id)).json(&patch))?)
        }
        KeyAction::Rm { id } => client.send(client.request(Method::DELETE, &path(&id))).map(drop),
        KeyAction::Rotate { id, grace } => show(
            client.json(client.request(Method::POST, &format!("{}/rotate?grace={}", path(&id), encoded(&grace))))?,
        ),
    }
}

fn set_patch(
    name: Option<String>,
    role: Option<String>,
    scopes: KeyScopes,
    clear_scopes: bool,
    expires: Option<String>,
    no_expiry: bool,
) -> Map<String, Value> {
    let mut patch = Map::new();
    if let Some(name) = name {
        patch.insert("name".into(), json!(name));
    }
    if let Some(role) = role {
        patch.insert("role".into(), json!(role));
    }
    if clear_scopes {
        for kind in ["tags", "hosts", "appids"] {
            patch.insert(kind.into(), json!([]));
        }
    }
    for (kind, values) in [
        ("tags", scopes.tags),
        ("hosts", scopes.hosts),
        ("appids", scopes.appids),
    ] {
        if !values.is_empty() {
            patch.insert(kind.into(), json!(values));
        }
    }
    if let Some(expires) = expires {
        patch.insert("expires".into(), json!(expires));
    }
    if no_expiry {
        patch.insert("expires".into(), Value::Null);
    }
    patch
}

fn show(key: KeyInfo) -> Result<(), CliError> {
    if key.secret.is_some() {
        eprintln!("qrlaunch: the key's secret is shown this once: keep it (only its hash is stored)");
    }
    output::finish(output::json(&key))
}

/// Prints audit lines newest first, page after page, up to `--limit`.
pub fn audit(client: &AdminClient, args: &crate::edge::config::AuditArgs) -> Result<(), CliError> {
    use crate::edge::api::AuditPage;
    let since = match &args.since {
        Some(text) => Some(match humantime::parse_duration(text) {
            Ok(back) => {
                let at = time::OffsetDateTime::now_utc() - back;
                at.format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| CliError::Usage {
                        field: "--since".into(),
                        message: e.to_string(),
                    })?
            }
            Err(_) => text.clone(),
        }),
        None => None,
    };
    let mut printed = 0u32;
    let mut after: Option<String> = None;
    while printed < args.limit {
        let mut query = vec![format!("limit={}", (args.limit - printed).min(1000))];
        for (name, value) in [
            ("entry", &args.entry),
            ("key", &args.key),
            ("from", &since),
            ("to", &args.until),
            ("after", &after),
        ] {
            if let Some(value) = value {
                query.push(format!("{name}={}", encoded(value)));
            }
        }
        let page: AuditPage =
            client.json(client.request(Method::GET, &format!("/admin/v1/audit?{}", query.join("&"))))?;
        printed += page.items.len() as u32;
        output::finish(page.items.iter().try_for_each(output::json))?;
        match page.next {
            Some(next) if !page.items.is_empty() => after = Some(next),
            _ => break,
        }
    }
    Ok(())
}
