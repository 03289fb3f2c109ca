//! Command-line flags, each with an environment variable twin: the server's
//! in [`serve`], the operator commands' in [`client`].

pub mod client;
pub mod serve;

pub use client::{
    AdminArgs, AuditArgs, CodeAction, EntryFields, HostAction, ImportFormat, ImportMode, IngestArgs, KeyAction,
    KeyScopes, LogFormat, PageArgs, QrAllArgs, QrArgs, QrFormat, RuleAction, StatsArgs, WxacodeArgs,
};
pub use serve::{CountSource, LogLines, Secret, ServeArgs, StoreUrl, TrustedProxy};

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// qrlaunch: resolves launch codes and legacy QR URLs to WeChat mini program
/// entry points.
///
/// Without a subcommand, `qrlaunch` serves (the same as `qrlaunch serve`).
#[derive(Debug, Parser)]
#[command(
    name = "qrlaunch",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("QRLAUNCH_COMMIT"), ")"),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What `qrlaunch generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateWhat {
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Cli {
    /// Writes the manual page or a shell's completions of the command line
    /// as parsed ([`Cli::command_line`]).
    pub fn generate(what: GenerateWhat, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use clap_complete::Shell;
        let mut command = Cli::command_line();
        let shell = match what {
            GenerateWhat::Man => return clap_mangen::Man::new(command).render(out),
            GenerateWhat::Bash => Shell::Bash,
            GenerateWhat::Zsh => Shell::Zsh,
            GenerateWhat::Fish => Shell::Fish,
            GenerateWhat::Elvish => Shell::Elvish,
            GenerateWhat::Powershell => Shell::PowerShell,
        };
        // Into memory first: clap_complete panics when its writer fails
        // (a closed pipe), and a closed pipe is no reason to.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "qrlaunch", &mut script);
        out.write_all(&script)
    }

    /// The command line as parsed: clap's, with every on/off flag's
    /// environment twin taking `1`/`0`, `true`/`false`, `yes`/`no`,
    /// `on`/`off` (clap's own takes only `true`/`false`).
    pub fn command_line() -> clap::Command {
        fn boolish(command: clap::Command) -> clap::Command {
            command
                .mut_args(|arg| {
                    if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
                        arg.value_parser(clap::builder::BoolishValueParser::new())
                    } else {
                        arg
                    }
                })
                .mut_subcommands(boolish)
        }
        boolish(<Cli as clap::CommandFactory>::command())
    }

    /// Parses the process's arguments (and environment) with
    /// [`Cli::command_line`]; exits with clap's message on an error.
    pub fn from_env() -> Cli {
        let matches = Cli::command_line().get_matches();
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve scans, `/v1/resolve`, health checks and metrics.
    Serve(Box<ServeArgs>),
    /// Copy a running node's SQLite store to FILE through the admin API:
    /// one consistent moment (entries, hosts, files, counts, keys, audit
    /// log), writes not stopped. Prints what the copy holds as JSON.
    Backup {
        /// The file to write; it must not exist.
        file: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Put a backup made by `qrlaunch backup` into a data directory that
    /// holds no store and where no qrlaunch runs; then start qrlaunch on it.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The data directory to restore into (created if missing).
        #[arg(long, env = "QRLAUNCH_DATA")]
        data: PathBuf,
    },
    /// Exit 0 when the node on this host answers `/healthz` on its scan
    /// listener within --timeout, else 1 with the reason: a container's
    /// HEALTHCHECK without curl in the image.
    Healthcheck {
        /// The node's scan listener (an unspecified address such as
        /// 0.0.0.0:8080 is asked on loopback).
        #[arg(long, env = "QRLAUNCH_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// How long to wait for the answer.
        #[arg(long, env = "QRLAUNCH_HEALTHCHECK_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print the manual page (roff, `man -l -`) or a shell's completions,
    /// for packagers: `qrlaunch generate man > qrlaunch.1`.
    Generate {
        /// `man`, or a shell: `bash`, `zsh`, `fish`, `elvish`, `powershell`.
        what: GenerateWhat,
    },
    /// Validate a table file and print what it holds, without serving.
    Check {
        /// The NDJSON table file.
        file: PathBuf,
    },
    /// Import a table file through the admin API (all or nothing).
    Import {
        /// The table file (NDJSON, or CSV with a header row naming the
        /// fields); `-` reads standard input.
        file: PathBuf,
        /// `upsert` creates or replaces; `insert` makes existing keys errors.
        #[arg(long, value_enum, default_value_t = ImportMode::Upsert)]
        mode: ImportMode,
        /// `ndjson` or `csv` (a header row naming the fields: code, prefix,
        /// appid, path, query, env_version, fallback_url, valid_from,
        /// valid_until, disabled, tags, count_by, …; tags separated by
        /// spaces or commas). Default: `csv` for a `.csv` file, else `ndjson`.
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// Also write the codes generated for lines without `code`, as
        /// NDJSON (`{"line":N,"code":"…"}`), to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Export the whole table as NDJSON (to FILE, or standard output).
    Export {
        /// Where to write; standard output without it.
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
    /// Manage API keys (roles and scopes) through the admin API.
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Who changed what: the audit log, newest first, one JSON object a line.
    Audit {
        #[command(flatten)]
        args: AuditArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Manage taken-over hosts: unmatched URLs and verification files.
    Host {
        #[command(subcommand)]
        action: HostAction,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Write QR images of many codes into a directory.
    Qr {
        #[command(flatten)]
        args: QrAllArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Write mini program codes ("sun codes", from WeChat's
    /// getwxacodeunlimit through the admin API) that open the landing page
    /// with a launch code: one code to a file, or many into a directory.
    /// The node needs --wechat-appid, --wechat-secret-file and --landing-page.
    Wxacode {
        #[command(flatten)]
        args: WxacodeArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Send a cache's log (standard input, one request a line) to
    /// `POST /admin/v1/ingest` as scan counts: batched, retried, never
    /// blocking the writer (lines past the buffer are dropped and counted).
    Ingest {
        #[command(flatten)]
        args: IngestArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show scan counts by day and client class.
    Stats {
        #[command(flatten)]
        args: StatsArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::time::Duration;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_of_every_subcommand_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "qrlaunch", &mut missing);
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    #[test]
    fn every_server_flag_has_an_environment_twin() {
        let command = Cli::command_line();
        let serve = command.find_subcommand("serve").expect("serve");
        let missing: Vec<String> = command
            .get_arguments()
            .chain(serve.get_arguments())
            .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
            .filter(|arg| arg.get_env().is_none())
            .map(|arg| arg.get_id().to_string())
            .collect();
        assert!(
            missing.is_empty(),
            "server flags without a QRLAUNCH_* twin: {missing:?}"
        );
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                assert!(env.to_string_lossy().starts_with("QRLAUNCH_"), "{:?}", arg.get_id());
            }
        }
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
        // A store URL may hold a password: clap takes any text, and the
        // check at start names the flag without the value.
        let cli = Cli::try_parse_from(["qrlaunch", "--store", "mysql://u:pw@x"]).unwrap();
        let err = cli.serve.store_url().unwrap_err();
        assert!(err.contains("--store") && !err.contains("pw"), "{err}");
        let cli = Cli::try_parse_from(["qrlaunch", "--store", "Postgres://u:pw@x/db"]).unwrap();
        assert!(cli.serve.store_url().is_ok());
        assert!(!format!("{:?}", cli.serve).contains("pw"), "Debug hides secrets");
        let cli = Cli::try_parse_from(["qrlaunch", "--purge-header", "X-Token s3cret"]).unwrap();
        let err = cli.serve.purge_headers().unwrap_err();
        assert!(err.contains("--purge-header") && !err.contains("s3cret"), "{err}");
    }
}
