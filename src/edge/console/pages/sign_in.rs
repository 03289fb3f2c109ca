//! Sign-in (a session acting with the key), sign-out, the language switch.

use super::*;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    f: Frame,
    error: Option<String>,
}

fn sign_in_form(t: &'static Text, status: StatusCode, error: Option<String>) -> Response {
    html(
        status,
        &SignInPage {
            f: Frame {
                t,
                heading: t.sign_in.into(),
                nav: None,
            },
            error,
        },
    )
}

pub async fn sign_in_page(headers: HeaderMap) -> Response {
    sign_in_form(Text::of(crate::edge::console::lang_of(&headers)), StatusCode::OK, None)
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    key: String,
}

/// Checks the key as the API would (throttled per address), then starts a
/// session acting with it.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    client: Option<axum::Extension<crate::edge::admin::auth::ClientAddr>>,
    headers: HeaderMap,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let t = Text::of(crate::edge::console::lang_of(&headers));
    let Ok(axum::Form(SignIn { key })) = form else {
        return sign_in_form(t, StatusCode::UNPROCESSABLE_ENTITY, Some(t.wrong_key.into()));
    };
    let key = key.trim();
    let bearer = format!("Bearer {key}");
    let client = client.map(|c| c.0 .0);
    use crate::edge::admin::auth::{check, Refusal};
    match check(&state.admin, client, Some(bearer.as_bytes())) {
        Ok(_) => {
            let id = state.sessions.start(key);
            let mut response = see_other("/console/");
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&state, Some(&id)));
            response
        }
        Err(Refusal::Throttled) => sign_in_form(t, StatusCode::TOO_MANY_REQUESTS, Some(t.throttled.into())),
        Err(Refusal::Unauthorized) => sign_in_form(t, StatusCode::UNAUTHORIZED, Some(t.wrong_key.into())),
    }
}

pub async fn sign_out(State(state): State<ConsoleState>, posted: Posted) -> Response {
    state.sessions.end(&posted.ctx.id);
    let mut response = see_other("/console/sign-in");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, None));
    response
}

/// `?to=zh|en&back=/console/…`: remembers the language in a cookie.
pub async fn switch_language(State(state): State<ConsoleState>, RawQuery(query): RawQuery) -> Response {
    let to = if q(&query, "to") == "zh" { "zh" } else { "en" };
    let back = q(&query, "back");
    // Only back into the console: never a redirect to elsewhere.
    let back = if back.starts_with("/console")
        && !back.contains("//")
        && !back.contains('\\')
        && back.bytes().all(|b| b.is_ascii_graphic())
    {
        back
    } else {
        "/console/".into()
    };
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let mut response = see_other(&back);
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{}={to}; Path=/console; Max-Age=31536000; SameSite=Strict; HttpOnly{secure}",
        crate::edge::console::LANG_COOKIE
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
