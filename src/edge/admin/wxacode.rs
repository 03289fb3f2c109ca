//! `GET /admin/v1/codes/{code}/wxacode`: the mini program code ("sun
//! code") of a launch code, made by WeChat's `getwxacodeunlimit` with
//! `scene` = the code and `page` = `--landing-page` (see
//! [`crate::edge::wechat`]). The landing page resolves the scene through
//! `/v1/resolve`, so the code's target can change after printing.

use super::error::{ApiError, ErrorCode};
use super::AdminState;
use crate::edge::api::ErrorBody;
use crate::edge::wechat::WechatError;
use crate::model::percent;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// The header naming the page and scene an image opens.
pub const WXACODE_HEADER: &str = "qrlaunch-wxacode";

/// WeChat's default edge, and its range, in pixels.
const WIDTH: (u32, std::ops::RangeInclusive<u32>) = (430, 280..=1280);

/// The mini program code of a launch code, as WeChat draws it.
#[utoipa::path(get, path = "/admin/v1/codes/{code}/wxacode", tag = "codes",
    params(("code" = String, Path),
           ("width" = Option<u32>, Query, description = "edge in pixels, 280-1280 (default 430)")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>),
              (status = 404, body = ErrorBody), (status = 409, description = "no --wechat-appid", body = ErrorBody),
              (status = 429, description = "WeChat's rate limit", body = ErrorBody),
              (status = 502, description = "WeChat refused or failed", body = ErrorBody)))]
pub async fn code(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let key = super::codes::key(code)?;
    let query = query.unwrap_or_default();
    let width = match percent::get(&query, "width") {
        None => WIDTH.0,
        Some(Ok(text)) => text
            .parse::<u32>()
            .ok()
            .filter(|w| WIDTH.1.contains(w))
            .ok_or_else(|| ApiError::bad_request("`width` must be a whole number from 280 to 1280"))?,
        Some(Err(e)) => return Err(ApiError::bad_request(format!("`width` {}", e.describe()))),
    };
    let Some(wechat) = state.options.wechat.clone() else {
        return Err(ApiError::new(
            ErrorCode::NotConfigured,
            "this node makes no mini program codes: start it with --wechat-appid, --wechat-secret-file and --landing-page",
        ));
    };
    match state.writer.store().get(&key).await? {
        None => return Err(ApiError::not_found("no such code")),
        Some(stored) => super::access::require_cover(&stored.entry)?,
    }
    let (image, content_type) = wechat.unlimited_code(key.as_str(), width).await.map_err(|e| {
        let code = match e {
            WechatError::RateLimited => ErrorCode::RateLimited,
            _ => ErrorCode::Upstream,
        };
        state.metrics.wechat_call(outcome(&e));
        tracing::warn!(code = key.as_str(), error = %e, "no mini program code");
        ApiError::new(code, e.to_string())
    })?;
    state.metrics.wechat_call("ok");
    let mut response = image.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::try_from(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let config = wechat.config();
    let opens = format!(
        "page={}; scene={}; env_version={}",
        config.landing_page,
        key.as_str(),
        config.env_version.as_str()
    );
    if let Ok(value) = HeaderValue::try_from(opens) {
        headers.insert(WXACODE_HEADER, value);
    }
    Ok(response)
}

/// The `outcome` label of `qrlaunch_wechat_calls_total`.
fn outcome(error: &WechatError) -> &'static str {
    match error {
        WechatError::RateLimited => "rate_limited",
        WechatError::InvalidPage(_) => "invalid_page",
        WechatError::Credentials { .. } | WechatError::Secret { .. } => "credentials",
        WechatError::Api { .. } => "error",
        WechatError::Unreachable(_) => "unreachable",
    }
}
