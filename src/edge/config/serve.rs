//! The server's flags.

use crate::edge::http::AnswerMode;
use crate::model::client_class::ClientClass;
use clap::Args;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for scans.
    #[arg(long, env = "QRLAUNCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of this node's files: the SQLite store (unless --store
    /// names another), the generated admin token, import spools. Created if
    /// missing; one running qrlaunch per directory.
    #[arg(long, env = "QRLAUNCH_DATA", default_value = "qrlaunch-data")]
    pub data: PathBuf,

    /// The store: `sqlite:PATH` (a directory; default: --data) or a
    /// `postgres://user:password@host/db` URL shared by a fleet.
    #[arg(long, env = "QRLAUNCH_STORE", hide_env_values = true)]
    pub store: Option<Secret>,

    /// NDJSON table file imported into a store that was never initialised
    /// (its first start). Without it, a new embedded SQLite store gets the
    /// example table built into the binary (examples/table.ndjson); a new
    /// PostgreSQL store starts empty. A store that has ever held data is
    /// never seeded again.
    #[arg(long, env = "QRLAUNCH_TABLE")]
    pub table: Option<PathBuf>,

    /// A new store starts empty: no example table, even for the embedded
    /// SQLite store (a store already initialised is never seeded anyway).
    #[arg(long, env = "QRLAUNCH_NO_SEED")]
    pub no_seed: bool,

    /// Address Prometheus scrapes `/metrics` on (never the scan listener).
    #[arg(long, env = "QRLAUNCH_METRICS_LISTEN", default_value = "127.0.0.1:9090")]
    pub metrics_listen: SocketAddr,

    /// Also serve scans over TLS on this address: TLS 1.2 and 1.3,
    /// HTTP/1.1; requests there are `https`. Certificates come from
    /// --tls-cert-dir and from the store (--acme-directory, on this node or
    /// another of the fleet).
    #[arg(long, env = "QRLAUNCH_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,

    /// The certificates of --tls-listen, in certbot's `live/` layout: every
    /// DIR/NAME/fullchain.pem with its privkey.pem, chosen by SNI among the
    /// names in each certificate (wildcards included); read again on
    /// SIGHUP and when a file changes.
    #[arg(long, env = "QRLAUNCH_TLS_CERT_DIR", requires = "tls_listen")]
    pub tls_cert_dir: Option<PathBuf>,

    /// Get and renew certificates with ACME (RFC 8555) from this directory
    /// URL (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory),
    /// by HTTP-01 on the scan listener, for every host the table serves:
    /// the --public-url hosts and every host with rules, settings or
    /// files. Giving it agrees to that CA's terms of service. Certificates,
    /// challenges and the account are kept in the store, so every node of
    /// a fleet answers the challenges and serves the certificates.
    #[arg(long, env = "QRLAUNCH_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,

    /// Contact address given to the ACME server (expiry notices).
    #[arg(long, env = "QRLAUNCH_ACME_EMAIL", requires = "acme_directory")]
    pub acme_email: Option<String>,

    /// How often the node looks for hosts without a certificate and for
    /// certificates due for renewal (two thirds into their lifetime); it
    /// also looks soon after the table changes.
    #[arg(long, env = "QRLAUNCH_ACME_CHECK_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration, requires = "acme_directory")]
    pub acme_check_interval: Duration,

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
    pub admin_token: Option<Secret>,

    /// After a SIGHUP re-reads the admin token (from --admin-token-file or
    /// DATA/admin-token) and finds a new one, how long the old one is still
    /// accepted, so that scripts can move over (`0s` to end it at once).
    #[arg(long, env = "QRLAUNCH_ADMIN_TOKEN_GRACE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub admin_token_grace: Duration,

    /// PEM certificate chain the admin listener serves TLS with (with
    /// --admin-tls-key); both files are re-read on SIGHUP.
    #[arg(long, env = "QRLAUNCH_ADMIN_TLS_CERT", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,

    /// PEM private key of --admin-tls-cert.
    #[arg(long, env = "QRLAUNCH_ADMIN_TLS_KEY", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,

    /// A PEM file of CA certificates trusted, beside the platform's, for
    /// the `https://` purge URLs and --acme-directory.
    #[arg(long, env = "QRLAUNCH_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// The web console (`/console/` on the admin listener): a session ends
    /// after this long without a request.
    #[arg(long, env = "QRLAUNCH_CONSOLE_IDLE_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub console_idle_timeout: Duration,

    /// The web console: a session ends this long after sign-in, however
    /// busy it is.
    #[arg(long, env = "QRLAUNCH_CONSOLE_SESSION_LIFETIME", default_value = "12h", value_parser = humantime::parse_duration)]
    pub console_session_lifetime: Duration,

    /// How long an admin client may take to send a body, and the longest
    /// pause inside an import's body (e.g. `30s`).
    #[arg(long, env = "QRLAUNCH_ADMIN_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub admin_body_timeout: Duration,

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

    /// Base URL that launch codes are printed under (repeat for several),
    /// e.g. https://go.example.com/ : codes answer only on these hosts, below
    /// the path; every other host answers rules only. Without it, codes
    /// answer on every host.
    #[arg(long = "public-url", env = "QRLAUNCH_PUBLIC_URLS", value_delimiter = ',')]
    pub public_urls: Vec<String>,

    /// Every request came over https (TLS ends upstream), whatever the
    /// forwarding headers say or do not say.
    #[arg(long, env = "QRLAUNCH_ASSUME_HTTPS")]
    pub assume_https: bool,

    /// A header in which a trusted proxy names the client class
    /// (ios, android, wechat, inapp, desktop, other), e.g. X-QR-Client;
    /// answers then vary on it instead of User-Agent.
    #[arg(long, env = "QRLAUNCH_CLIENT_HEADER")]
    pub client_header: Option<String>,

    /// How iPhones and iPads are answered.
    #[arg(long, env = "QRLAUNCH_ANSWER_IOS", value_enum, default_value = "redirect")]
    pub answer_ios: AnswerMode,
    /// How Android (and HarmonyOS) browsers are answered.
    #[arg(long, env = "QRLAUNCH_ANSWER_ANDROID", value_enum, default_value = "page")]
    pub answer_android: AnswerMode,
    /// How WeChat's own browser is answered.
    #[arg(long, env = "QRLAUNCH_ANSWER_WECHAT", value_enum, default_value = "page")]
    pub answer_wechat: AnswerMode,
    /// How other in-app browsers (WeCom, QQ, Weibo, Alipay, …) are answered.
    #[arg(long, env = "QRLAUNCH_ANSWER_INAPP", value_enum, default_value = "page")]
    pub answer_inapp: AnswerMode,
    /// How desktop browsers are answered.
    #[arg(long, env = "QRLAUNCH_ANSWER_DESKTOP", value_enum, default_value = "page")]
    pub answer_desktop: AnswerMode,
    /// How curl, bots, link previews and unknown clients are answered.
    #[arg(long, env = "QRLAUNCH_ANSWER_OTHER", value_enum, default_value = "redirect")]
    pub answer_other: AnswerMode,

    /// The share of one core, in percent, that drawing new launch-page QR
    /// codes may take for the whole node (a drawing takes 0.4-5 ms; drawn
    /// codes are kept); past it a page goes without its QR code, says so,
    /// and is not cached.
    #[arg(long, env = "QRLAUNCH_PAGE_QR_CPU", default_value_t = crate::edge::http::qr_cache::QrCache::CPU_PERCENT, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub page_qr_cpu: u32,

    /// Browser lifetime (max-age, seconds) of scan answers and resolve answers.
    #[arg(long, env = "QRLAUNCH_CACHE_MAX_AGE", default_value_t = 60)]
    pub cache_max_age: u32,

    /// Shared-cache lifetime (s-maxage, seconds) of scan answers; changes
    /// are purged, so this can be long.
    #[arg(long, env = "QRLAUNCH_CACHE_S_MAXAGE", default_value_t = 300)]
    pub cache_s_maxage: u32,

    /// stale-while-revalidate, seconds.
    #[arg(long, env = "QRLAUNCH_CACHE_STALE_WHILE_REVALIDATE", default_value_t = 30)]
    pub cache_stale_while_revalidate: u32,

    /// stale-if-error, seconds: how long caches may answer from a stale copy
    /// while the origin is down.
    #[arg(long, env = "QRLAUNCH_CACHE_STALE_IF_ERROR", default_value_t = 86400)]
    pub cache_stale_if_error: u32,

    /// Lifetime (seconds) of a cached 404.
    #[arg(long, env = "QRLAUNCH_CACHE_MISS_MAX_AGE", default_value_t = 10)]
    pub cache_miss_max_age: u32,

    /// A cache to purge after a change is applied (repeat for several),
    /// e.g. http://127.0.0.1:6081 for Varnish.
    #[arg(
        long = "purge-url",
        env = "QRLAUNCH_PURGE_URLS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub purge_urls: Vec<Secret>,

    /// How purges are sent.
    #[arg(long, env = "QRLAUNCH_PURGE_STYLE", value_enum, default_value = "xkey")]
    pub purge_style: crate::replication::purge::PurgeStyle,

    /// A header sent with every purge, `Name: value`: the shared secret of
    /// the shipped VCL (`Qrlaunch-Purge-Token: …`) or a CDN's API token;
    /// repeat for several. Prefer the environment variable (one header) or
    /// an EnvironmentFile: command lines are visible to other users.
    #[arg(long = "purge-header", env = "QRLAUNCH_PURGE_HEADER", hide_env_values = true)]
    pub purge_headers: Vec<Secret>,

    /// How long a client may take to send its request head (e.g. `10s`, `500ms`).
    #[arg(long, env = "QRLAUNCH_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Scan connections served at once (default: the open-files limit less
    /// a reserve, at most 4096). Beyond it, 32 more are served one health
    /// check each; beyond those, connections are closed and counted.
    #[arg(long, env = "QRLAUNCH_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Scan connections one client address may hold at once (an IPv6
    /// client counts by its /64); trusted proxies (--trusted-proxy) are not
    /// limited. 0: no limit. Past it, connections are closed and counted.
    #[arg(long, env = "QRLAUNCH_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: u32,

    /// Largest request head (request line and headers) in bytes; a larger
    /// one is refused with 431. At least 8192.
    #[arg(long, env = "QRLAUNCH_MAX_HEADER_BYTES", default_value_t = 16384, value_parser = clap::value_parser!(u32).range(8192..=1048576))]
    pub max_header_bytes: u32,

    /// How long in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "QRLAUNCH_SHUTDOWN_GRACE", default_value = "8s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// /readyz answers 503 while the table is behind the store for longer
    /// than this (scans are still answered from the last table).
    #[arg(long, env = "QRLAUNCH_MAX_LAG", default_value = "5s", value_parser = humantime::parse_duration)]
    pub max_lag: Duration,

    /// How often the table checks the store for changes even without a
    /// notification.
    #[arg(long, env = "QRLAUNCH_SYNC_POLL", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub sync_poll: Duration,

    /// Change-log entries kept in the store for nodes that fall behind; a
    /// node further behind rebuilds from a snapshot.
    #[arg(long, env = "QRLAUNCH_CHANGE_LOG_KEEP", default_value_t = 100_000)]
    pub change_log_keep: i64,

    /// How often scan counts are added to the store (a SIGKILL loses at
    /// most this much; a clean stop loses nothing).
    #[arg(long, env = "QRLAUNCH_STATS_FLUSH", default_value = "10s", value_parser = humantime::parse_duration)]
    pub stats_flush: Duration,

    /// The time zone whose days scans are counted in (an IANA name such as
    /// Asia/Shanghai): a day runs from local midnight to local midnight,
    /// for counting and for every stats answer and CSV.
    #[arg(long, env = "QRLAUNCH_STATS_TIME_ZONE", default_value = "UTC")]
    pub stats_time_zone: String,

    /// Who counts scans: `origin` (this node counts every scan it answers)
    /// or `cache-log` (a cache in front reports what it served through
    /// `POST /admin/v1/ingest`, hits and misses alike, and this node does
    /// not count what trusted proxies ask; anyone else is still counted
    /// here).
    #[arg(long, env = "QRLAUNCH_COUNT_SOURCE", value_enum, default_value = "origin")]
    pub count_source: CountSource,

    /// Days of audit log the store keeps (older lines are dropped hourly).
    #[arg(long, env = "QRLAUNCH_AUDIT_KEEP_DAYS", default_value_t = 400, value_parser = clap::value_parser!(i32).range(1..))]
    pub audit_keep_days: i32,

    /// Days of scan counts the store keeps.
    #[arg(long, env = "QRLAUNCH_STATS_KEEP_DAYS", default_value_t = 400, value_parser = clap::value_parser!(i32).range(1..))]
    pub stats_keep_days: i32,

    /// Do not count scans.
    #[arg(long, env = "QRLAUNCH_NO_STATS")]
    pub no_stats: bool,

    /// Threads answering scans (default: one per core); 1 runs them on one
    /// thread. The admin API, the follower, purges and counts run on one
    /// more thread, and heavy work (builds, imports, flushes) on idle-class
    /// threads that never hold a scan up.
    #[arg(long, env = "QRLAUNCH_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Do not record metrics; the metrics listener's `/metrics` then answers 404.
    #[arg(long, env = "QRLAUNCH_NO_METRICS")]
    pub no_metrics: bool,

    /// For tests: wait this long between applying changes read from the
    /// store and making them live, to play a lagging node.
    #[arg(long, env = "QRLAUNCH_TEST_APPLY_DELAY", default_value = "0s", value_parser = humantime::parse_duration, hide = true)]
    pub test_apply_delay: Duration,

    /// The mini program whose codes `GET /admin/v1/codes/{code}/wxacode`
    /// (and `qrlaunch wxacode`) makes with WeChat's getwxacodeunlimit
    /// (with --wechat-secret-file and --landing-page).
    #[arg(long, env = "QRLAUNCH_WECHAT_APPID", requires_all = ["wechat_secret_file", "landing_page"])]
    pub wechat_appid: Option<String>,

    /// A file holding that mini program's AppSecret (read again for every
    /// new access token, never logged).
    #[arg(long, env = "QRLAUNCH_WECHAT_SECRET_FILE", requires = "wechat_appid")]
    pub wechat_secret_file: Option<PathBuf>,

    /// The mini program page a mini program code opens, with `scene` set to
    /// the launch code (e.g. `pages/landing/index`; no leading `/`): the
    /// page that runs the landing helper (sdk/miniprogram).
    #[arg(long, env = "QRLAUNCH_LANDING_PAGE", requires = "wechat_appid")]
    pub landing_page: Option<String>,

    /// Whether WeChat checks that --landing-page exists in the published
    /// mini program (`false` while it is only in a trial or developer build).
    #[arg(long, env = "QRLAUNCH_WXACODE_CHECK_PATH", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub wxacode_check_path: bool,

    /// Which version of the mini program a mini program code opens:
    /// `release`, `trial` or `develop`.
    #[arg(long, env = "QRLAUNCH_WXACODE_ENV_VERSION", default_value = "release")]
    pub wxacode_env_version: String,

    /// WeChat's API base URL (`https` unless on loopback; a stand-in for tests).
    #[arg(long, env = "QRLAUNCH_WECHAT_API", default_value = crate::edge::wechat::DEFAULT_API)]
    pub wechat_api: String,

    /// Log filter, in tracing's `RUST_LOG` syntax (e.g. `info`, `qrlaunch=debug`).
    #[arg(long, env = "QRLAUNCH_LOG", default_value = "info")]
    pub log: String,

    /// How log lines look: `text` for people (colour only on a terminal,
    /// never with `NO_COLOR`), `json` for collectors (one object a line:
    /// `timestamp`, `level`, `target`, `fields` with the message).
    #[arg(long, env = "QRLAUNCH_LOG_FORMAT", value_enum, default_value_t = LogLines::Text)]
    pub log_format: LogLines,
}

/// The shape of log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLines {
    Text,
    Json,
}

/// A flag's value that must never be shown: parsing accepts any text (so
/// clap's errors never echo it; it is checked where it is used, with
/// messages that do not repeat it), and `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Who counts the scans a cache in front answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CountSource {
    /// The origin counts what it answers; a cache log adds only its hits.
    Origin,
    /// The cache log counts everything it served; the origin does not
    /// count requests from trusted proxies.
    CacheLog,
}

/// Where the store is.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A directory holding `qrlaunch.db`.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Sqlite(dir) => write!(f, "Sqlite({})", dir.display()),
            StoreUrl::Postgres(url) => write!(f, "Postgres({})", crate::replication::redact::url(url)),
        }
    }
}

impl StoreUrl {
    /// Parses `--store`; the message never repeats the value (it may hold
    /// a password).
    pub fn parse(s: &str) -> Result<StoreUrl, String> {
        let scheme_is = |prefix: &str| s.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix));
        if scheme_is("sqlite:") {
            let path = &s["sqlite:".len()..];
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("--store: `sqlite:` needs a directory, like `sqlite:/var/lib/qrlaunch`".into());
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if scheme_is("postgres://") || scheme_is("postgresql://") {
            return Ok(StoreUrl::Postgres(s.to_string()));
        }
        Err("--store must be `sqlite:DIRECTORY` or a `postgres://…` URL".into())
    }
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

    /// The answer for each client class.
    pub fn answers(&self) -> enum_map::EnumMap<ClientClass, AnswerMode> {
        enum_map::EnumMap::from_fn(|class| match class {
            ClientClass::Ios => self.answer_ios,
            ClientClass::Android => self.answer_android,
            ClientClass::Wechat => self.answer_wechat,
            ClientClass::Inapp => self.answer_inapp,
            ClientClass::Desktop => self.answer_desktop,
            ClientClass::Other => self.answer_other,
        })
    }

    /// The store to open: `--store`, else SQLite in `--data`.
    pub fn store_url(&self) -> Result<StoreUrl, String> {
        match &self.store {
            Some(url) => StoreUrl::parse(url.expose()),
            None => Ok(StoreUrl::Sqlite(self.data.clone())),
        }
    }

    /// `--purge-header`s as `(name, value)`; the message names the flag,
    /// never the value.
    pub fn purge_headers(&self) -> Result<Vec<(String, String)>, String> {
        self.purge_headers
            .iter()
            .map(|h| crate::replication::purge::parse_header(h.expose()))
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
