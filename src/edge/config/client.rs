//! The operator commands' flags: how to reach the admin API, and each
//! subcommand's fields.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    /// A PEM file of CA certificates trusted, beside the platform's, for an
    /// `https://` admin URL (a node serving --admin-tls-cert with a private
    /// CA).
    #[arg(long, env = "QRLAUNCH_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Send the token over `http://` to a host that is not loopback (it
    /// travels in clear text: only on a network you trust; prefer https).
    #[arg(long, env = "QRLAUNCH_ALLOW_PLAIN_HTTP", global = true)]
    pub allow_plain_http: bool,
    /// The server's data directory, where a generated token is found.
    #[arg(long, env = "QRLAUNCH_DATA", default_value = "qrlaunch-data", global = true)]
    pub data: PathBuf,
}

/// What an import file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// One JSON object a line, as exported.
    Ndjson,
    /// A header row naming the fields, then one entry a row.
    Csv,
}

/// How an import treats keys that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportMode {
    /// Create or replace.
    Upsert,
    /// Create only; an existing key makes the import fail.
    Insert,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Upsert => "upsert",
            ImportMode::Insert => "insert",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CodeAction {
    /// Create a code (a random 7-character one unless --code is given).
    Add {
        /// The code; generated when left out.
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        fields: EntryFields,
        /// Create it switched off (it answers 410 until enabled).
        #[arg(long)]
        disabled: bool,
    },
    /// Show a code.
    Get {
        /// The code.
        code: String,
    },
    /// Change some fields of a code, or of every code with --tag.
    Set {
        /// The code (leave out with --tag).
        #[arg(required_unless_present = "tag", conflicts_with = "tag")]
        code: Option<String>,
        /// Change every code with this tag, in one transaction.
        #[arg(long)]
        tag: Option<String>,
        #[command(flatten)]
        fields: EntryFields,
        #[command(flatten)]
        switches: ChangeSwitches,
    },
    /// Delete a code.
    Rm {
        /// The code.
        code: String,
    },
    /// List codes, one JSON object a line.
    Ls {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Write the QR image of a code's public URL to a file.
    Qr {
        /// The code.
        code: String,
        /// The image file; its extension (.svg, .png) picks the format.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        #[command(flatten)]
        style: QrArgs,
    },
}

/// How QR images are drawn.
#[derive(Debug, Clone, Args)]
pub struct QrArgs {
    /// svg or png (default: from the file's extension, else svg).
    #[arg(long, value_enum)]
    pub format: Option<QrFormat>,
    /// Edge of the image in pixels (64-4096).
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Quiet zone around the code, in modules (0-16).
    #[arg(long, default_value_t = 4)]
    pub margin: u32,
    /// Error correction: L, M, Q or H.
    #[arg(long, default_value = "M")]
    pub ec: String,
}

/// An image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QrFormat {
    Svg,
    Png,
}

impl QrFormat {
    pub fn extension(self) -> &'static str {
        match self {
            QrFormat::Svg => "svg",
            QrFormat::Png => "png",
        }
    }
}

/// `qrlaunch qr --all`: QR images of many codes.
#[derive(Debug, Clone, Args)]
pub struct QrAllArgs {
    /// Every code (or every code with --tag); required, to say so.
    #[arg(long, required = true)]
    pub all: bool,
    /// Only codes with this tag (a campaign).
    #[arg(long)]
    pub tag: Option<String>,
    /// The directory to write CODE.svg / CODE.png into (created if missing).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Write them even when they encode a loopback address (a node without
    /// --public-url): phones cannot open those.
    #[arg(long)]
    pub allow_loopback: bool,
    #[command(flatten)]
    pub style: QrArgs,
}

/// `qrlaunch wxacode`: mini program codes.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["code", "all"]))]
pub struct WxacodeArgs {
    /// The launch code (the image goes to --out, a file).
    pub code: Option<String>,
    /// Every code, or every code with --tag (the images go into --out, a
    /// directory, as CODE.jpg or CODE.png).
    #[arg(long)]
    pub all: bool,
    /// With --all: only codes with this tag (a campaign).
    #[arg(long, requires = "all")]
    pub tag: Option<String>,
    /// Where to write: a file for one code, a directory (created if
    /// missing) with --all.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Edge of the image in pixels, 280-1280 (WeChat's default 430).
    #[arg(long, default_value_t = 430, value_parser = clap::value_parser!(u32).range(280..=1280))]
    pub width: u32,
    /// With --all: keep a CODE.jpg or CODE.png that is there already, to
    /// go on after a run WeChat's quota stopped (only when the node's
    /// --landing-page, --wxacode-env-version and --width are the same as
    /// for those files).
    #[arg(long, requires = "all")]
    pub skip_existing: bool,
}

/// `qrlaunch stats`: scan counts.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["code", "rule", "tag", "host"]))]
pub struct StatsArgs {
    /// A code.
    pub code: Option<String>,
    /// A rule, by its prefix URL.
    #[arg(long)]
    pub rule: Option<String>,
    /// Every code (or rule, with --kind rule) with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// The 404s of a host (`(other hosts)` for hosts without rules).
    #[arg(long)]
    pub host: Option<String>,
    /// With --tag: code or rule.
    #[arg(long, default_value = "code", value_parser = ["code", "rule"])]
    pub kind: String,
    /// First day, e.g. 2026-11-01 (default: 29 days before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day (default: today, in the server's --stats-time-zone).
    #[arg(long)]
    pub to: Option<String>,
    /// With --rule: counts per value of the rule's `count_by` parameter
    /// (`--by channel`: one row a poster).
    #[arg(long, requires = "rule")]
    pub by: Option<String>,
    /// Count bots and link previews (the `other` class) in the totals.
    #[arg(long)]
    pub include_other: bool,
    /// Comma-separated values for a spreadsheet instead of a table (with
    /// --tag or --by: one row per entry, day and class).
    #[arg(long)]
    pub csv: bool,
}

/// `qrlaunch ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// What each line on standard input is: `ndjson` (the fields of
    /// `POST /admin/v1/ingest`) or `varnishncsa` (tab-separated, in the
    /// format the README gives: `varnishncsa -F "$(qrlaunch ingest --print-format)"`).
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: LogFormat,
    /// Print the `varnishncsa -F` format this command reads, and exit.
    #[arg(long)]
    pub print_format: bool,
    /// Lines per request.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub batch_lines: u32,
    /// Longest a line waits before its batch is sent.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub batch_wait: std::time::Duration,
    /// Lines held while the admin API is slow or down; past this, new
    /// lines are dropped (and counted) rather than blocking the writer.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub buffer_lines: u32,
    /// How long one batch is retried (the admin API down, 429, 5xx)
    /// before its lines are given up (and counted).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub retry_for: std::time::Duration,
}

/// The lines `qrlaunch ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Ndjson,
    Varnishncsa,
}

#[derive(Debug, Subcommand)]
pub enum RuleAction {
    /// Create a rule for a legacy URL prefix.
    Add {
        /// The URL prefix, e.g. https://www.example.com/app/download?channel=
        #[arg(long)]
        prefix: String,
        #[command(flatten)]
        fields: EntryFields,
        /// Count scans per value of this query parameter too (`channel`:
        /// one count per poster); see `qrlaunch stats --rule P --by channel`.
        #[arg(long)]
        count_by: Option<String>,
        /// Create it switched off (it answers 410 until enabled).
        #[arg(long)]
        disabled: bool,
    },
    /// Show the rule with this prefix.
    Get {
        /// The rule's prefix URL.
        prefix: String,
    },
    /// Change some fields of a rule, or of every rule with --tag.
    Set {
        /// The rule's prefix URL (leave out with --tag).
        #[arg(required_unless_present = "tag", conflicts_with = "tag")]
        prefix: Option<String>,
        /// Change every rule with this tag, in one transaction.
        #[arg(long)]
        tag: Option<String>,
        #[command(flatten)]
        fields: EntryFields,
        #[command(flatten)]
        switches: ChangeSwitches,
        /// Count scans per value of this query parameter too.
        #[arg(long)]
        count_by: Option<String>,
        /// Stop counting by a query parameter's values.
        #[arg(long, conflicts_with = "count_by")]
        clear_count_by: bool,
    },
    /// Delete the rule with this prefix.
    Rm {
        /// The rule's prefix URL.
        prefix: String,
    },
    /// List rules, one JSON object a line.
    Ls {
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostAction {
    /// Set where URLs on a host that no rule matches go.
    Set {
        /// The host, e.g. app.shop-example.com.
        host: String,
        /// An http/https origin that gets a 302 to the same path and query;
        /// `404` (the default) answers not found.
        #[arg(long)]
        unmatched: String,
    },
    /// Show a host's settings.
    Get {
        /// The host.
        host: String,
    },
    /// Remove a host's settings (its unmatched URLs answer 404 again).
    Rm {
        /// The host.
        host: String,
    },
    /// List hosts with settings, one JSON object a line.
    Ls {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Store a verification file that the scan listener serves on the host.
    AddFile {
        /// The host.
        host: String,
        /// The path to serve it at, e.g. /MP_verify_abcdef0123.txt.
        path: String,
        /// The local file to upload (at most 1 KiB of text).
        file: PathBuf,
    },
    /// Delete a verification file.
    RmFile {
        /// The host.
        host: String,
        /// The file's path on the host.
        path: String,
    },
    /// List a host's verification files.
    Files {
        /// The host.
        host: String,
    },
}

/// The fields of an entry; `add` sends those given, `set` changes those given.
#[derive(Debug, Clone, Default, Args)]
pub struct EntryFields {
    /// Mini program appid: wx + 16 hex digits.
    #[arg(long)]
    pub appid: Option<String>,
    /// Page path, without a leading /, e.g. pages/promo/index.
    #[arg(long)]
    pub path: Option<String>,
    /// The page's query, k=v&k2=v2 (not encoded).
    #[arg(long)]
    pub query: Option<String>,
    /// release (default), trial or develop.
    #[arg(long)]
    pub env_version: Option<String>,
    /// An http/https page for people who cannot open WeChat.
    #[arg(long)]
    pub fallback_url: Option<String>,
    /// RFC 3339, e.g. 2026-01-01T00:00:00Z: answers 410 before it.
    #[arg(long)]
    pub valid_from: Option<String>,
    /// RFC 3339: answers 410 from it on.
    #[arg(long)]
    pub valid_until: Option<String>,
    /// A tag (repeat for several); on `set`, replaces all tags.
    #[arg(long = "tags", value_name = "TAG")]
    pub tags: Vec<String>,
}

/// What `set` can switch or clear.
#[derive(Debug, Clone, Default, Args)]
pub struct ChangeSwitches {
    /// Switch off (answers 410).
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Switch on again.
    #[arg(long)]
    pub enable: bool,
    /// Remove the fallback URL.
    #[arg(long, conflicts_with = "fallback_url")]
    pub clear_fallback_url: bool,
    /// Remove the start of the validity window.
    #[arg(long, conflicts_with = "valid_from")]
    pub clear_valid_from: bool,
    /// Remove the end of the validity window.
    #[arg(long, conflicts_with = "valid_until")]
    pub clear_valid_until: bool,
    /// Remove every tag.
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Entries per request (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Start after this key (the `next` a page ended with).
    #[arg(long)]
    pub after: Option<String>,
    /// Only entries with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Follow the pages to the end instead of printing one page.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Create a key; its secret is printed once (keep it: only its hash is stored).
    Add {
        /// Who or what uses it.
        #[arg(long)]
        name: String,
        /// admin, editor or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        scopes: KeyScopes,
        /// When it stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys, one JSON object a line (no secrets).
    Ls,
    /// Show a key.
    Get {
        /// The key's id.
        id: String,
    },
    /// Change a key's name, role, scopes or expiry (scopes given replace
    /// that kind's list).
    Set {
        /// The key's id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new role: admin, editor or viewer.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        scopes: KeyScopes,
        /// Remove every tag, host and appid scope.
        #[arg(long)]
        clear_scopes: bool,
        /// A new expiry (RFC 3339).
        #[arg(long, conflicts_with = "no_expiry")]
        expires: Option<String>,
        /// Remove the expiry.
        #[arg(long)]
        no_expiry: bool,
    },
    /// Remove a key: its secrets stop working on every node.
    Rm {
        /// The key's id.
        id: String,
    },
    /// Give a key a new secret (printed once); the old one works for --grace.
    Rotate {
        /// The key's id.
        id: String,
        /// How long the old secret still works (`24h`, `0s`; at most 30 days).
        #[arg(long, default_value = "24h")]
        grace: String,
    },
}

/// The scopes of a key, each repeatable.
#[derive(Debug, Clone, Args)]
pub struct KeyScopes {
    /// Codes and rules with this tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Rules whose prefix is on this host (repeat for several).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Entries that open this mini program (repeat for several).
    #[arg(long = "appid")]
    pub appids: Vec<String>,
}

/// `qrlaunch audit`'s filters.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only changes of this code, rule prefix URL, host or key id.
    #[arg(long)]
    pub entry: Option<String>,
    /// Only changes made with this API key (its id; `bootstrap` for the admin token).
    #[arg(long)]
    pub key: Option<String>,
    /// Only changes since then: a duration back from now (`24h`, `7days`),
    /// a time (RFC 3339) or a UTC day (2026-12-05).
    #[arg(long)]
    pub since: Option<String>,
    /// Only changes before this time or UTC day.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many lines.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}
