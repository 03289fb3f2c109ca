//! Command-line flags, each with an environment variable twin.

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// qrlaunch: resolves launch codes and legacy QR URLs to WeChat mini program
/// entry points.
///
/// Without a subcommand, `qrlaunch` serves (the same as `qrlaunch serve`).
#[derive(Debug, Parser)]
#[command(name = "qrlaunch", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve scans, `/v1/resolve`, health checks and metrics.
    Serve(Box<ServeArgs>),
    /// Validate a table file and print what it holds, without serving.
    Check {
        /// The NDJSON table file.
        file: PathBuf,
    },
    /// Import a table file through the admin API (all or nothing).
    Import {
        /// The NDJSON table file.
        file: PathBuf,
        /// `upsert` (create or replace) or `insert` (existing keys are errors).
        #[arg(long, default_value = "upsert", value_parser = ["upsert", "insert"])]
        mode: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Export the whole table as NDJSON (to FILE, or standard output).
    Export {
        file: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Manage launch codes through the admin API.
    Code {
        #[command(subcommand)]
        action: CodeAction,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Manage legacy URL rules through the admin API.
    Rule {
        #[command(subcommand)]
        action: RuleAction,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// How the CLI reaches the admin API.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Base URL of the admin API.
    #[arg(
        long,
        env = "QRLAUNCH_ADMIN_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub admin_url: String,
    /// File holding the admin token (else QRLAUNCH_ADMIN_TOKEN, else DATA/admin-token).
    #[arg(long, env = "QRLAUNCH_ADMIN_TOKEN_FILE", global = true)]
    pub admin_token_file: Option<PathBuf>,
    /// The server's data directory, where a generated token is found.
    #[arg(long, env = "QRLAUNCH_DATA", default_value = "qrlaunch-data", global = true)]
    pub data: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CodeAction {
    /// Create a code (a random 7-character one unless --code is given).
    Add {
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Show a code.
    Get { code: String },
    /// Change some fields of a code.
    Set {
        code: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Delete a code.
    Rm { code: String },
    /// List codes, one JSON object a line.
    Ls {
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RuleAction {
    /// Create a rule for a legacy URL prefix.
    Add {
        #[arg(long)]
        prefix: String,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Show the rule with this prefix.
    Get { prefix: String },
    /// Change some fields of a rule.
    Set {
        prefix: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Delete the rule with this prefix.
    Rm { prefix: String },
    /// List rules, one JSON object a line.
    Ls {
        #[command(flatten)]
        page: PageArgs,
    },
}

/// The fields of a new entry.
#[derive(Debug, Clone, Args)]
pub struct EntryArgs {
    #[arg(long)]
    pub appid: String,
    #[arg(long)]
    pub path: String,
    #[arg(long)]
    pub query: Option<String>,
    #[arg(long)]
    pub env_version: Option<String>,
    #[arg(long)]
    pub fallback_url: Option<String>,
    /// RFC 3339, e.g. 2026-01-01T00:00:00Z.
    #[arg(long)]
    pub valid_from: Option<String>,
    #[arg(long)]
    pub valid_until: Option<String>,
    #[arg(long)]
    pub disabled: bool,
}

/// Changes to an entry; only what is given changes.
#[derive(Debug, Clone, Args)]
pub struct ChangeArgs {
    #[arg(long)]
    pub appid: Option<String>,
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long)]
    pub query: Option<String>,
    #[arg(long)]
    pub env_version: Option<String>,
    #[arg(long)]
    pub fallback_url: Option<String>,
    #[arg(long)]
    pub valid_from: Option<String>,
    #[arg(long)]
    pub valid_until: Option<String>,
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    #[arg(long)]
    pub enable: bool,
    #[arg(long, conflicts_with = "fallback_url")]
    pub clear_fallback_url: bool,
    #[arg(long, conflicts_with = "valid_from")]
    pub clear_valid_from: bool,
    #[arg(long, conflicts_with = "valid_until")]
    pub clear_valid_until: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Entries per request (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Follow the pages to the end instead of printing one page.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for scans.
    #[arg(long, env = "QRLAUNCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of the durable store (SQLite), created if missing. The
    /// store is the source of truth; the table is rebuilt from it at start.
    #[arg(long, env = "QRLAUNCH_DATA", default_value = "qrlaunch-data")]
    pub data: PathBuf,

    /// NDJSON table file imported into the store when the store is empty.
    /// Without it, an empty store gets the example table embedded in the
    /// binary (examples/table.ndjson). Ignored when the store has entries.
    #[arg(long, env = "QRLAUNCH_TABLE")]
    pub table: Option<PathBuf>,

    /// Address of the admin API (never the scan listener).
    #[arg(long, env = "QRLAUNCH_ADMIN_LISTEN", default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,

    /// File holding the admin API's bearer token. The token can also come
    /// from QRLAUNCH_ADMIN_TOKEN; with neither, a loopback admin API gets a
    /// random token written to DATA/admin-token.
    #[arg(long, env = "QRLAUNCH_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The admin API's bearer token (prefer the environment variable or a
    /// file: command lines are visible to other users).
    #[arg(long, env = "QRLAUNCH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Peer address or CIDR whose X-Forwarded-Proto is believed; repeat the
    /// flag (or separate with commas) for several, `none` for no one.
    #[arg(
        long = "trusted-proxy",
        env = "QRLAUNCH_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128",
        value_parser = parse_trusted_proxy,
    )]
    pub trusted_proxies: Vec<TrustedProxy>,

    /// max-age, in seconds, of the Cache-Control header on redirects and
    /// resolve answers.
    #[arg(long, env = "QRLAUNCH_CACHE_MAX_AGE", default_value_t = 60)]
    pub cache_max_age: u32,

    /// How long a client may take to send its request head (e.g. `10s`, `500ms`).
    #[arg(long, env = "QRLAUNCH_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "QRLAUNCH_SHUTDOWN_GRACE", default_value = "8s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Worker threads of the runtime (default: one per core). 1 runs
    /// everything on a single thread.
    #[arg(long, env = "QRLAUNCH_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Do not record metrics; `/metrics` then answers 404.
    #[arg(long, env = "QRLAUNCH_NO_METRICS")]
    pub no_metrics: bool,

    /// Log filter, in tracing's `RUST_LOG` syntax (e.g. `info`, `qrlaunch=debug`).
    #[arg(long, env = "QRLAUNCH_LOG", default_value = "info")]
    pub log: String,
}

/// One `--trusted-proxy` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProxy {
    Net(IpNet),
    /// `none`: trust no one.
    Nobody,
}

impl ServeArgs {
    pub fn trusted_nets(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| match p {
                TrustedProxy::Net(net) => Some(*net),
                TrustedProxy::Nobody => None,
            })
            .collect()
    }
}

fn parse_trusted_proxy(s: &str) -> Result<TrustedProxy, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(TrustedProxy::Nobody);
    }
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(TrustedProxy::Net(net));
    }
    s.parse::<IpAddr>()
        .map(|ip| TrustedProxy::Net(IpNet::from(ip)))
        .map_err(|_| format!("`{s}` is not an IP address or CIDR (like 10.0.0.0/8), nor `none`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "qrlaunch",
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxy",
            "10.0.0.0/8,192.0.2.1",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.trusted_nets().len(), 2);
        let cli = Cli::try_parse_from([
            "qrlaunch",
            "serve",
            "--trusted-proxy",
            "none",
            "--header-read-timeout",
            "250ms",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve")
        };
        assert!(args.trusted_nets().is_empty());
        assert_eq!(args.header_read_timeout, Duration::from_millis(250));
        let err = Cli::try_parse_from(["qrlaunch", "--trusted-proxy", "lan"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--trusted-proxy") && err.contains("`lan`"), "{err}");
    }
}
