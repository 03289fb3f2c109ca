//! `GET /admin/v1/backup`: a consistent copy of this node's SQLite store,
//! streamed (admin keys only). `qrlaunch backup FILE` calls it.

use super::error::ApiError;
use super::AdminState;
use crate::edge::api::ErrorBody;
use axum::extract::State;
use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// The copy, as of one commit; its position in `qrlaunch-position`. One at
/// a time (`429` while another is made or downloaded).
#[utoipa::path(get, path = "/admin/v1/backup", tag = "transfer",
    responses((status = 200, content_type = "application/vnd.sqlite3", body = Vec<u8>),
              (status = 422, body = ErrorBody, description = "a PostgreSQL store: use pg_dump"),
              (status = 429, body = ErrorBody, description = "another backup is being made")))]
pub async fn backup(State(state): State<AdminState>) -> Result<Response, ApiError> {
    use rand::distr::{Alphanumeric, SampleString};
    let Ok(turn) = state.backups.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            super::error::ErrorCode::Busy,
            "another backup is being made or downloaded on this node; try again when it is done",
        ));
    };
    let path = state.options.spool_dir.join(format!(
        "backup-{}.db.partial",
        Alphanumeric.sample_string(&mut rand::rng(), 12)
    ));
    // The file is unlinked once open: nothing is left behind, however the
    // download ends.
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let removed = Remove(path.clone());
    state.writer.store().backup_into(path.clone()).await?;
    let checked = path.clone();
    let info = crate::replication::background::run("qrlaunch-backup", move || {
        crate::replication::store::backup::inspect(&checked)
    })
    .await
    .unwrap_or_else(|| Err("the check of the copy stopped".into()))
    .map_err(|e| ApiError::internal(format!("the copy does not check out: {e}")))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("reading the copy: {e}")))?;
    drop(removed);
    // The turn is held until the download ends, however it ends.
    let stream = futures_util::StreamExt::map(tokio_util::io::ReaderStream::new(file), move |chunk| {
        let _ = &turn;
        chunk
    });
    let body = axum::body::Body::from_stream(stream);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/vnd.sqlite3"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(info.bytes));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"qrlaunch-{}.db\"", info.position)) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    Ok(super::entries::with_position(response, info.position))
}
