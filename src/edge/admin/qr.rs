//! `GET /admin/v1/codes/{code}/qr`: the QR image of a code's public URL,
//! for print.

use super::error::ApiError;
use super::AdminState;
use crate::edge::api::ErrorBody;
use crate::model::percent;
use crate::model::qr::{self, QrStyle};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// The response header naming the URL an image encodes.
pub const QR_URL_HEADER: &str = "qrlaunch-qr-url";

/// The response header that says an image encodes an address phones
/// cannot reach.
pub const QR_WARNING_HEADER: &str = "qrlaunch-qr-warning";

/// Why QR images made now would be wrong on a poster: without
/// `--public-url` they encode this node's own listener, and a loopback
/// address is reachable from this machine only.
pub fn loopback_warning(state: &AdminState) -> Option<String> {
    let base = state.options.public_urls.first().unwrap_or(&state.options.scan_base);
    let host = url::Url::parse(base).ok()?.host()?.to_owned();
    let loopback = match host {
        url::Host::Domain(name) => name == "localhost" || name.ends_with(".localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback() || ip.is_unspecified(),
        url::Host::Ipv6(ip) => ip.is_loopback() || ip.is_unspecified(),
    };
    loopback.then(|| {
        format!(
            "this image encodes {base}, an address only this machine can reach: start qrlaunch with --public-url https://YOUR-HOST before printing"
        )
    })
}

/// The URL printed for `code`: the first `--public-url` (else this node's
/// scan address) followed by the code.
pub fn public_url(state: &AdminState, code: &str) -> String {
    let base = state
        .options
        .public_urls
        .first()
        .cloned()
        .unwrap_or_else(|| state.options.scan_base.clone());
    let base = if base.ends_with('/') { base } else { format!("{base}/") };
    format!("{base}{}", percent::encoded(code))
}

/// The QR code of a code's public URL, as SVG or PNG.
#[utoipa::path(get, path = "/admin/v1/codes/{code}/qr", tag = "codes",
    params(("code" = String, Path),
           ("format" = Option<String>, Query, description = "`svg` (default) or `png`"),
           ("size" = Option<u32>, Query, description = "edge in pixels, 64-4096 (default 256)"),
           ("margin" = Option<u32>, Query, description = "quiet zone in modules, 0-16 (default 4)"),
           ("ec" = Option<String>, Query, description = "error correction: L, M (default), Q or H")),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 200, content_type = "image/png", body = Vec<u8>),
              (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn code(
    State(state): State<AdminState>,
    code: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let key = super::codes::key(code)?;
    let query = query.unwrap_or_default();
    let param = |name: &str| match percent::get(&query, name) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(ApiError::bad_request(format!("`{name}` {}", e.describe()))),
    };
    let number = |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| -> Result<u32, ApiError> {
        match param(name)? {
            None => Ok(default),
            Some(text) => text.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ))
            }),
        }
    };
    let png = match param("format")?.as_deref() {
        None | Some("svg") => false,
        Some("png") => true,
        Some(_) => return Err(ApiError::bad_request("`format` must be `svg` or `png`")),
    };
    let ec = match param("ec")? {
        None => qrcode::EcLevel::M,
        Some(letter) => qr::ec_level(&letter).ok_or_else(|| ApiError::bad_request("`ec` must be L, M, Q or H"))?,
    };
    let style = QrStyle {
        size: number("size", 256, 64..=4096)?,
        margin: number("margin", 4, 0..=16)?,
        ec,
    };
    match state.writer.store().get(&key).await? {
        None => return Err(ApiError::not_found("no such code")),
        Some(stored) => super::access::require_cover(&stored.entry)?,
    }
    let url = public_url(&state, key.as_str());
    let (body, content_type) = if png {
        (
            qr::png(&url, style).map_err(|e| ApiError::bad_request(e.to_string()))?,
            "image/png",
        )
    } else {
        (
            qr::svg_document(&url, style)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
                .into_bytes(),
            "image/svg+xml",
        )
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::try_from(url) {
        headers.insert(QR_URL_HEADER, value);
    }
    if let Some(value) = loopback_warning(&state).and_then(|w| HeaderValue::try_from(w).ok()) {
        headers.insert(QR_WARNING_HEADER, value);
    }
    Ok(response)
}
