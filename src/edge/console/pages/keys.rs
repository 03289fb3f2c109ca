//! API keys (admin keys): create (secret shown once), rotate, revoke.

use super::*;

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    f: Frame,
    secret: Option<String>,
    error: Option<String>,
    csrf: String,
    rows: Vec<KeyRow>,
}

struct KeyRow {
    id: String,
    name: String,
    role: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
}

pub async fn keys(ctx: Ctx) -> Response {
    keys_page(ctx, StatusCode::OK, None, None).await
}

async fn keys_page(ctx: Ctx, status: StatusCode, secret: Option<String>, error: Option<String>) -> Response {
    let list: KeyList = match ctx.get("/admin/v1/keys").await {
        Ok(list) => list,
        Err(refusal) => return refused(&ctx, &refusal, "/console/"),
    };
    let t = ctx.t;
    let rows = list
        .items
        .into_iter()
        .map(|k: KeyInfo| {
            let mut scopes = Vec::new();
            for (label, values) in [(t.f_tags, &k.tags), (t.key_hosts, &k.hosts), (t.key_appids, &k.appids)] {
                if !values.is_empty() {
                    scopes.push(format!("{label}: {}", values.join(" ")));
                }
            }
            KeyRow {
                id: k.id,
                name: k.name,
                role: k.role,
                scopes: scopes.join("; "),
                created: rfc3339(k.created),
                expires: k.expires.map(rfc3339).unwrap_or_default(),
                last_used: k.last_used.map(rfc3339).unwrap_or_default(),
            }
        })
        .collect();
    let page = KeysPage {
        f: ctx.frame(ctx.t.keys),
        secret,
        error,
        csrf: ctx.session.csrf.to_string(),
        rows,
    };
    html(status, &page)
}

async fn after_key_change(ctx: Ctx, reply: crate::edge::console::ApiReply) -> Response {
    let status = reply.status;
    match reply.json::<serde_json::Value>() {
        Ok(answer) => {
            let secret = answer["secret"].as_str().map(str::to_string);
            keys_page(ctx, StatusCode::OK, secret, None).await
        }
        // A delete answers 204 without a body.
        Err(_) if status.is_success() => keys_page(ctx, StatusCode::OK, None, None).await,
        Err(refusal) => {
            let message = refusal.describe();
            keys_page(ctx, refusal.status, None, Some(message)).await
        }
    }
}

pub async fn create_key(Posted { ctx, fields }: Posted) -> Response {
    let list = |name: &str| form::split_tags(fields.get(name).unwrap_or(""));
    let mut key = json!({
        "name": fields.get("name").unwrap_or("").trim(),
        "role": fields.get("role").unwrap_or("viewer"),
        "tags": list("tags"),
        "hosts": list("hosts"),
        "appids": list("appids"),
    });
    if let Some(expires) = fields.text("expires") {
        key["expires"] = expires.into();
    }
    let reply = ctx.send(Method::POST, "/admin/v1/keys", &key).await;
    after_key_change(ctx, reply).await
}

pub async fn rotate_key(Path(id): Path<String>, Posted { ctx, .. }: Posted) -> Response {
    let reply = ctx
        .api(Method::POST, &format!("/admin/v1/keys/{}/rotate", encoded(&id)), None)
        .await;
    after_key_change(ctx, reply).await
}

pub async fn delete_key(Path(id): Path<String>, Posted { ctx, .. }: Posted) -> Response {
    let reply = ctx
        .api(Method::DELETE, &format!("/admin/v1/keys/{}", encoded(&id)), None)
        .await;
    after_key_change(ctx, reply).await
}
