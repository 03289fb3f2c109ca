//! The PostgreSQL store (through sqlx), shared by a fleet of nodes.

use super::StoreError;

/// A PostgreSQL store.
pub struct PostgresStore;

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Err(StoreError::Unavailable(format!(
            "PostgreSQL is not supported yet ({})",
            redact(url)
        )))
    }
}

/// The URL without its password, for logs and messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "postgres://(unparsable URL)".into(),
    }
}
