//! The operator CLI: `qrlaunch import|export|code|rule|host|qr|stats|ingest …`, a thin
//! client of the admin API on the same request and answer types as the
//! server ([`crate::edge::api`]). Synchronous (reqwest's blocking client);
//! entries print as one JSON object a line, errors as `qrlaunch: field: message`.

mod client;
mod entries;
mod health;
mod ingest;
mod keys;
mod media;
mod output;
mod transfer;
mod wxacode;

pub use client::{AdminClient, CliError, Token, Transport};
pub use entries::{code, host, rule};
pub use health::healthcheck;
pub use ingest::ingest;
pub use keys::{audit, key};
pub use media::{all_qr, stats};
pub use transfer::{backup, export, import};
pub use wxacode::wxacode;

use crate::edge::config::AdminArgs;

/// Connects with the token from the environment, the flag or the data dir.
pub fn connect(admin: &AdminArgs) -> Result<AdminClient, CliError> {
    let env_token = std::env::var("QRLAUNCH_ADMIN_TOKEN").ok();
    AdminClient::new(
        &admin.admin_url,
        Token {
            env: env_token.as_deref(),
            file: admin.admin_token_file.as_deref(),
            data_dir: &admin.data,
        },
        Transport {
            ca_file: admin.ca_file.as_deref(),
            allow_plain_http: admin.allow_plain_http,
        },
    )
}
