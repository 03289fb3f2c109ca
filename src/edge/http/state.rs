use super::cache::{CachePolicy, Lifetimes};
use crate::model::client_class::ClientClass;
use crate::model::decide::CodeHosts;
use crate::replication::metrics::Metrics;
use crate::replication::sync::Replica;
use enum_map::EnumMap;
use hyper::header::{HeaderName, HeaderValue};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// What every scan handler shares, behind one `Arc`.
#[derive(Debug)]
pub struct ScanState {
    pub replica: Arc<Replica>,
    pub metrics: Arc<Metrics>,
    pub options: ScanOptions,
    /// Where 404s on hosts without rules are counted; `None`: counting is off.
    pub counts: Option<Arc<crate::replication::stats::ScanCounts>>,
}

/// How a client class is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerMode {
    /// `302` to the WeChat scheme.
    Redirect,
    /// `200` launch page.
    Page,
}

/// Settings of the scan path.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `Cache-Control` of `/v1/resolve` answers, e.g. `public, max-age=60`.
    pub cache_control: HeaderValue,
    /// The cache headers of scan answers.
    pub cache: CachePolicy,
    /// The lifetimes `cache` was made from (answers near a schedule
    /// boundary get shorter ones).
    pub lifetimes: Lifetimes,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// TLS always ends upstream: a request without a trusted header is `https`.
    pub assume_https: bool,
    /// `/readyz` says 503 while the table is behind the store by more.
    pub max_lag: Duration,
    /// Where codes answer (`--public-url`).
    pub code_hosts: CodeHosts,
    /// The answer for each client class.
    pub answers: EnumMap<ClientClass, AnswerMode>,
    /// A header in which a trusted proxy names the client class.
    pub client_header: Option<HeaderName>,
    /// The QR codes drawn on launch pages, by scanned URL.
    pub qr_codes: Arc<super::qr_cache::QrCache>,
    /// Whether scans asked by a trusted proxy are counted here (`false`
    /// with `--count-source cache-log`: the cache's log counts them).
    pub count_proxied: bool,
    /// Every `Vary` value an answer can carry, by [`Varies::index`].
    vary: [Option<HeaderValue>; Varies::COUNT],
}

/// What a cacheable answer depends on besides its URL and host: each is a
/// request header a cache must key on, named in `Vary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Varies {
    /// What chose the client class, when the answer depends on it.
    pub class: ClassSource,
    /// The page's language (`Accept-Language`).
    pub language: bool,
    /// The scheme, read from a trusted proxy's `X-Forwarded-Proto` or
    /// `Forwarded` (never under `--assume-https`).
    pub scheme: bool,
}

/// Where a client class came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassSource {
    /// The answer is the same for every class.
    None,
    UserAgent,
    /// `--client-header`, from a trusted proxy.
    Header,
}

impl Varies {
    const COUNT: usize = 12;

    fn index(self) -> usize {
        (self.class as usize) * 4 + usize::from(self.language) * 2 + usize::from(self.scheme)
    }

    /// The `Vary` value, or `None` when the answer depends on nothing else.
    fn render(self, client_header: Option<&HeaderName>) -> Option<HeaderValue> {
        let mut names: Vec<&str> = Vec::new();
        match self.class {
            ClassSource::None => {}
            ClassSource::UserAgent => names.push("User-Agent"),
            ClassSource::Header => names.push(client_header.map_or("User-Agent", HeaderName::as_str)),
        }
        if self.language {
            names.push("Accept-Language");
        }
        if self.scheme {
            names.extend(["X-Forwarded-Proto", "Forwarded"]);
        }
        (!names.is_empty()).then(|| super::respond::lasting(names.join(", ")))
    }

    fn all() -> impl Iterator<Item = Varies> {
        [ClassSource::None, ClassSource::UserAgent, ClassSource::Header]
            .into_iter()
            .flat_map(|class| {
                [(false, false), (false, true), (true, false), (true, true)]
                    .into_iter()
                    .map(move |(language, scheme)| Varies {
                        class,
                        language,
                        scheme,
                    })
            })
    }
}

impl ScanOptions {
    pub fn new(cache_max_age: u32, trusted_proxies: Vec<IpNet>) -> ScanOptions {
        let cache_control = super::respond::lasting(format!("public, max-age={cache_max_age}"));
        let lifetimes = Lifetimes {
            max_age: cache_max_age,
            ..Lifetimes::default()
        };
        let mut options = ScanOptions {
            cache_control,
            cache: CachePolicy::new(lifetimes),
            lifetimes,
            trusted_proxies,
            assume_https: false,
            max_lag: Duration::from_secs(5),
            code_hosts: CodeHosts::anywhere(),
            answers: default_answers(),
            client_header: None,
            qr_codes: Arc::default(),
            count_proxied: true,
            vary: Default::default(),
        };
        options.set_client_header(None);
        options
    }

    /// Sets the cache lifetimes of scan answers.
    pub fn set_lifetimes(&mut self, lifetimes: Lifetimes) {
        self.lifetimes = lifetimes;
        self.cache = CachePolicy::new(lifetimes);
        self.cache_control = super::respond::lasting(format!("public, max-age={}", lifetimes.max_age));
    }

    /// Names the header a trusted proxy classifies clients in; answers
    /// then vary on it rather than on the whole User-Agent.
    pub fn set_client_header(&mut self, header: Option<HeaderName>) {
        for varies in Varies::all() {
            self.vary[varies.index()] = varies.render(header.as_ref());
        }
        self.client_header = header;
    }

    /// The `Vary` of an answer that depends on `varies`.
    pub fn vary(&self, varies: Varies) -> Option<HeaderValue> {
        self.vary[varies.index()].clone()
    }

    /// Whether the scheme of a request from `peer` is read from its
    /// forwarding headers (see [`super::forwarded::reads_headers`]).
    pub fn scheme_from_headers(&self, peer: IpAddr) -> bool {
        super::forwarded::reads_headers(peer, &self.trusted_proxies, self.assume_https)
    }

    pub fn trusts(&self, peer: IpAddr) -> bool {
        super::forwarded::is_trusted(peer, &self.trusted_proxies)
    }
}

/// iOS and tools follow a `302`; everyone else gets a page.
pub fn default_answers() -> EnumMap<ClientClass, AnswerMode> {
    enum_map::enum_map! {
        ClientClass::Ios | ClientClass::Other => AnswerMode::Redirect,
        _ => AnswerMode::Page,
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions::new(60, crate::edge::http::forwarded::loopback())
    }
}

impl ScanState {
    pub fn new(replica: Arc<Replica>, metrics: Arc<Metrics>, options: ScanOptions) -> ScanState {
        ScanState {
            replica,
            metrics,
            options,
            counts: None,
        }
    }

    /// State serving `table` at once (benches, in-process tests).
    pub fn serving(table: crate::model::table::Table, metrics: Metrics, options: ScanOptions) -> ScanState {
        ScanState::serving_snapshot(crate::model::table::Snapshot::new(table), metrics, options)
    }

    /// State serving `snapshot` at once.
    pub fn serving_snapshot(
        snapshot: crate::model::table::Snapshot,
        metrics: Metrics,
        options: ScanOptions,
    ) -> ScanState {
        let metrics = Arc::new(metrics);
        let replica = Arc::new(Replica::serving(snapshot, metrics.clone()));
        ScanState::new(replica, metrics, options)
    }

    /// Counts scans (into `counts` and the tables' counters).
    pub fn with_counts(mut self, counts: Arc<crate::replication::stats::ScanCounts>) -> ScanState {
        self.counts = Some(counts);
        self
    }

    pub fn is_ready(&self) -> bool {
        self.replica.is_ready(self.options.max_lag)
    }
}
