//! Start-up and shutdown: wires flags, store, follower, metrics and the two
//! servers together. No request handling here.
//!
//! Order: lock the data directory (one process per directory), bind the
//! scan and admin listeners and print their addresses (so `/healthz`
//! answers at once and `/readyz` says 503), open the store, seed it if it
//! was never initialised, start the follower, which builds the table from
//! a store snapshot and then follows the change log (ready once built).
//! SIGHUP makes the follower rebuild from a fresh snapshot; SIGTERM/SIGINT
//! cancel the [`CancellationToken`] every part was given, and the servers
//! drain.
//!
//! * [`datadir`]: the data directory's lock;
//! * [`seed`]: the first start's table;
//! * [`signals`]: SIGTERM, SIGINT, SIGHUP.

pub mod datadir;
pub mod seed;
pub mod signals;

use crate::edge::admin::auth::{AdminToken, TokenError, TokenSource};
use crate::edge::admin::{AdminOptions, AdminState};
use crate::edge::config::{ServeArgs, StoreUrl};
use crate::edge::http::{self, ConnectionOptions, MetricsService, ScanOptions, ScanService, ScanState};
use crate::model::decide::CodeHosts;
use crate::model::percent;
use crate::model::table::Snapshot;
use crate::replication::metrics::{Listener, Metrics};
use crate::replication::stats::ScanCounts;
use crate::replication::store::sqlite::SqliteStore;
use crate::replication::store::{Store, StoreError};
use crate::replication::sync::{Follower, FollowerOptions, Replica};
use crate::replication::writer::Writer;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use seed::TableSource;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    DataDir(#[from] datadir::LockError),
    #[error("store {store}: {error}")]
    Store { store: String, error: StoreError },
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("admin API: {0}")]
    Token(#[from] TokenError),
    #[error(transparent)]
    PublicUrl(crate::model::decide::BadPublicUrl),
    #[error("--client-header {0:?} is not a valid header name")]
    ClientHeader(String),
    /// A flag's value is wrong; the message says which flag, never a secret.
    #[error("{0}")]
    Flag(String),
}

/// The addresses a started service listens on, printed as one JSON line on
/// standard output so scripts and tests need not read the logs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Listening {
    pub scan: String,
    pub admin: String,
    pub metrics: String,
    /// The TLS scan listener (`--tls-listen`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

/// Runs the service until `shutdown` is cancelled, step by step: check
/// the flags, lock the data directory, bind and announce the listeners,
/// serve metrics and scans at once (`/readyz` says 503 until the table is
/// built), open the store, serve the admin API, seed a new store, follow
/// the store, flush counts; at shutdown, drain in order.
pub async fn serve(
    args: ServeArgs,
    shutdown: CancellationToken,
    scans: tokio::runtime::Handle,
) -> Result<(), AppError> {
    let purge_targets = purge_targets(&args)?;
    let wechat = wechat_client(&args)?;
    let acme = acme_config(&args)?;
    args.store_url().map_err(AppError::Flag)?;
    // Checked here, not by clap: an environment twin set to `no` would
    // still count as given there.
    if args.no_seed && args.table.is_some() {
        return Err(AppError::Flag(
            "--no-seed and --table ask for opposite things: give one".into(),
        ));
    }
    let admin_tls = match (&args.admin_tls_cert, &args.admin_tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(
            http::tls::TlsFiles::load(cert, key).map_err(|e| AppError::Flag(e.to_string()))?,
        )),
        _ => None,
    };
    let metrics = Arc::new(if args.no_metrics {
        Metrics::disabled()
    } else {
        Metrics::prometheus()
    });
    if let Some(tls) = &admin_tls {
        metrics.tls_expiry(Listener::Admin, tls.expires());
    }
    let scan_tls = match args.tls_listen {
        Some(_) => {
            let counter = metrics.clone();
            let on_unknown: http::tls::OnUnknownHost = Arc::new(move || counter.tls_unknown_host());
            let dir = args.tls_cert_dir.as_deref();
            let tls = http::tls::TlsFiles::load_dir(dir, on_unknown).map_err(|e| AppError::Flag(e.to_string()))?;
            if let Some(dir) = dir {
                tracing::info!(names = ?tls.names(), "TLS scan listener: certificates read from {}", dir.display());
            }
            metrics.tls_expiry(Listener::ScanTls, tls.expires());
            Some(Arc::new(tls))
        }
        None => None,
    };
    let lock = datadir::lock(&args.data)?;
    remove_stale_backups(&args.data);
    let listeners = Listeners::bind(&args).await?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        metrics = !args.no_metrics,
        data = %lock.path.parent().unwrap_or(&args.data).display(),
        "listening on http://{}",
        listeners.scan_addr
    );
    let days = crate::replication::stats::Days::named(&args.stats_time_zone).map_err(AppError::Flag)?;
    let counts = (!args.no_stats).then(|| {
        Arc::new(ScanCounts::new(
            code_hosts_for_counting(&args.public_urls),
            days.clone(),
        ))
    });
    let replica = Arc::new(match &counts {
        Some(counts) => Replica::new(metrics.clone()).with_sink(counts.clone()),
        None => Replica::new(metrics.clone()),
    });
    let scan_state = scan_state(&args, replica.clone(), metrics.clone(), counts.clone())?;
    let limits = connection_options(&args);
    let upkeep = tokio::spawn(upkeep(metrics.clone(), shutdown.clone()));
    let metrics_server = serve_metrics(listeners.metrics, &limits, &metrics, &shutdown);
    // On the scan runtime: its listener (and so every scan connection) is
    // registered with that runtime's reactor.
    let stored_certs_for = scan_tls.clone();
    let tls_server = match (listeners.tls, scan_tls) {
        (Some(listener), Some(tls)) => Some(serve_scans_over_tls(
            &scans,
            listener,
            tls,
            scan_state.clone(),
            &limits,
            &metrics,
            &shutdown,
        )),
        _ => None,
    };
    let plain_scans = serve_scans(
        &scans,
        listeners.scan,
        scan_state.clone(),
        limits.clone(),
        &metrics,
        &shutdown,
    );
    // The plain and the TLS scan listeners stop and drain together.
    let scan_server = tokio::spawn(async move {
        let plain = plain_scans.await.unwrap_or(false);
        let tls = match tls_server {
            Some(server) => server.await.unwrap_or(false),
            None => true,
        };
        plain && tls
    });

    // A stop request ends the connection retries too: a node whose
    // database is down must still stop promptly.
    let opened = tokio::select! {
        opened = open_store(&args) => Some(opened),
        () = shutdown.cancelled() => None,
    };
    let store = match opened {
        Some(Ok(store)) => store,
        Some(Err(error)) => {
            shutdown.cancel();
            let _ = tokio::join!(scan_server, metrics_server);
            return Err(error);
        }
        None => {
            tracing::info!("stopped before the store was open");
            let _ = tokio::join!(scan_server, metrics_server);
            return Ok(());
        }
    };
    let admin = AdminParts {
        listener: listeners.admin,
        addr: listeners.admin_addr,
        scan_addr: listeners.scan_addr,
        tls: admin_tls,
        wechat,
    };
    let admin_server = serve_admin(
        &args,
        admin,
        &store,
        &replica,
        &metrics,
        counts.clone(),
        &limits,
        &shutdown,
    )?;

    let hangups = signals::Hangups::register();
    let seeded = match seed::if_new(&store, args.table.clone(), args.no_seed).await {
        Ok(seeded) => seeded,
        Err(error) => {
            shutdown.cancel();
            let _ = tokio::join!(scan_server, admin_server);
            return Err(error.into());
        }
    };
    let purger = purge_targets.map(|targets| {
        tracing::info!(?targets, "changes purge the caches in front");
        crate::replication::purge::Purger::start(targets, metrics.clone(), shutdown.clone())
    });
    let follower = start_follower(&args, &store, &replica, purger, hangups, seeded, &shutdown);
    if let Some(tls) = stored_certs_for {
        tokio::spawn(serve_stored_certificates(
            tls,
            store.clone(),
            replica.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(config) = acme {
        let codes = CodeHosts::parse(&args.public_urls).map_err(AppError::PublicUrl)?;
        let acme = crate::edge::acme::Acme::new(config, store.clone(), replica.clone(), codes, metrics.clone())
            .map_err(AppError::Flag)?;
        tokio::spawn(acme.run(shutdown.clone()));
    }
    tokio::spawn(prune_log(
        store.clone(),
        args.change_log_keep,
        args.audit_keep_days,
        shutdown.clone(),
    ));
    tokio::spawn(announce_ready(
        replica.clone(),
        listeners.scan_addr,
        args.public_urls.first().cloned(),
        store.describe(),
        shutdown.clone(),
    ));
    // Stopped only once the servers have drained, so that the scans still in
    // flight at SIGTERM are counted too.
    let flusher_stop = CancellationToken::new();
    let flusher = counts.map(|counts| {
        tokio::spawn(crate::replication::stats::run_flusher(
            counts,
            replica.clone(),
            store.clone(),
            args.stats_flush,
            args.stats_keep_days,
            flusher_stop.clone(),
        ))
    });

    let scan_drained = scan_server.await.unwrap_or(false);
    let admin_drained = admin_server.await.unwrap_or(false);
    let _ = metrics_server.await;
    let _ = follower.await;
    if let Some(flusher) = flusher {
        // Tables retired in the last moments drain their counts as they go.
        crate::replication::background::retired(Duration::from_secs(2)).await;
        flusher_stop.cancel();
        let _ = flusher.await;
    }
    let _ = upkeep.await;
    // Nothing writes any more: the next start then opens the store at once.
    if let Err(error) = store.settle().await {
        tracing::warn!(%error, "the store was not settled at stop; the next start takes longer");
    }
    tracing::info!(clean = scan_drained && admin_drained, "stopped");
    drop(lock);
    Ok(())
}

/// The runtime scans are answered on: `--threads` worker threads, or with
/// `--threads 1` one thread running a current-thread runtime.
pub struct ScanRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// The thread driving a current-thread runtime, and what ends it.
    driver: Option<(std::thread::JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
}

impl ScanRuntime {
    pub fn start(threads: Option<u16>) -> std::io::Result<ScanRuntime> {
        match threads {
            Some(1) => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let handle = runtime.handle().clone();
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let thread = std::thread::Builder::new()
                    .name("qrlaunch-scan".into())
                    .spawn(move || {
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                    })?;
                Ok(ScanRuntime {
                    runtime: None,
                    handle,
                    driver: Some((thread, stop)),
                })
            }
            threads => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.enable_all().thread_name("qrlaunch-scan");
                if let Some(n) = threads {
                    builder.worker_threads(n.into());
                }
                let runtime = builder.build()?;
                Ok(ScanRuntime {
                    handle: runtime.handle().clone(),
                    runtime: Some(runtime),
                    driver: None,
                })
            }
        }
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }

    /// Stops the runtime once the scan server has drained.
    pub fn stop(mut self) {
        if let Some((thread, stop)) = self.driver.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}

/// `--ca-file`'s certificates (none without it), for the purge, WeChat
/// and ACME clients.
fn ca_roots(args: &ServeArgs) -> Result<Vec<reqwest::Certificate>, AppError> {
    match &args.ca_file {
        Some(path) => crate::replication::roots::read(path).map_err(AppError::Flag),
        None => Ok(Vec::new()),
    }
}

/// The purge targets; the flags' values are secrets, so they are checked
/// here, where the message can leave the value out (clap's would show it).
fn purge_targets(args: &ServeArgs) -> Result<Option<crate::replication::purge::PurgeTargets>, AppError> {
    if args.purge_urls.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::replication::purge::PurgeTargets {
        urls: args.purge_urls.iter().map(|u| u.expose().to_string()).collect(),
        style: args.purge_style,
        headers: args.purge_headers().map_err(AppError::Flag)?,
        roots: ca_roots(args)?,
    }))
}

/// The WeChat client, when `--wechat-appid` is given; every value checked
/// here with a message naming its flag (the secret file is read when a
/// token is needed, and must be readable now).
fn wechat_client(args: &ServeArgs) -> Result<Option<Arc<crate::edge::wechat::Wechat>>, AppError> {
    use crate::model::domain::{AppId, EnvVersion, PagePath};
    let (Some(appid), Some(secret_file), Some(page)) =
        (&args.wechat_appid, &args.wechat_secret_file, &args.landing_page)
    else {
        return Ok(None);
    };
    let flag = |name: &str, e: &dyn std::fmt::Display| AppError::Flag(format!("--{name}: {e}"));
    appid.parse::<AppId>().map_err(|e| flag("wechat-appid", &e.message))?;
    page.parse::<PagePath>().map_err(|e| flag("landing-page", &e.message))?;
    let env_version = args
        .wxacode_env_version
        .parse::<EnvVersion>()
        .map_err(|e| flag("wxacode-env-version", &e.message))?;
    let api = url::Url::parse(&args.wechat_api).map_err(|e| flag("wechat-api", &e))?;
    let loopback = crate::replication::roots::is_loopback(&api);
    if !(api.scheme() == "https" || (api.scheme() == "http" && loopback)) {
        return Err(flag(
            "wechat-api",
            &"must be an https URL (http only on loopback, for a stand-in)",
        ));
    }
    std::fs::File::open(secret_file)
        .map_err(|e| flag("wechat-secret-file", &format!("{}: {e}", secret_file.display())))?;
    let roots = ca_roots(args)?;
    let config = crate::edge::wechat::WechatConfig {
        api: args.wechat_api.trim_end_matches('/').to_string(),
        appid: appid.clone(),
        secret_file: secret_file.clone(),
        landing_page: page.clone(),
        check_path: args.wxacode_check_path,
        env_version,
        roots,
    };
    let client = crate::edge::wechat::Wechat::new(config).map_err(AppError::Flag)?;
    Ok(Some(Arc::new(client)))
}

/// The ACME settings, when `--acme-directory` is given (checked again,
/// with the client, by [`crate::edge::acme::Acme::new`]).
fn acme_config(args: &ServeArgs) -> Result<Option<crate::edge::acme::AcmeConfig>, AppError> {
    let Some(directory) = &args.acme_directory else {
        return Ok(None);
    };
    let roots = ca_roots(args)?;
    let config = crate::edge::acme::AcmeConfig {
        directory: directory.clone(),
        email: args.acme_email.clone(),
        check_interval: args.acme_check_interval,
        roots,
    };
    config.check().map_err(AppError::Flag)?;
    Ok(Some(config))
}

/// Serves the store's certificates (ACME's, from any node of the fleet) on
/// the TLS scan listener: read at start and again whenever the change log
/// says one was stored.
async fn serve_stored_certificates(
    tls: Arc<http::tls::TlsFiles>,
    store: Arc<dyn Store>,
    replica: Arc<Replica>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut changes = replica.watch_certificates();
    let mut first = true;
    loop {
        match store.certificates().await {
            Ok(certs) => {
                for problem in tls.set_stored(&certs) {
                    tracing::warn!(problem, "TLS scan listener: a certificate is not served");
                }
                metrics.tls_expiry(Listener::ScanTls, tls.expires());
                let names = tls.names();
                if !certs.is_empty() {
                    tracing::info!(?names, "TLS scan listener: certificates from the store");
                } else if first && names.is_empty() {
                    tracing::warn!(
                        "TLS scan listener: no certificate yet; every handshake fails until one is stored \
                         (--acme-directory on this or another node of the fleet) or given (--tls-cert-dir)"
                    );
                }
                first = false;
            }
            Err(error) => {
                tracing::warn!(%error, "TLS scan listener: cannot read the stored certificates; trying again");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// Scans over TLS on the scan runtime, with the certificates re-read on
/// `SIGHUP` and when a file of the directory changes (looked at every
/// [`http::tls::POLL`]). Returns whether its connections drained in time.
fn serve_scans_over_tls(
    scans: &tokio::runtime::Handle,
    listener: std::net::TcpListener,
    tls: Arc<http::tls::TlsFiles>,
    state: Arc<http::ScanState>,
    limits: &ConnectionOptions,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<bool> {
    let reloads = tls.clone();
    let stop = shutdown.clone();
    let expiry = metrics.clone();
    tokio::spawn(async move {
        let mut hangups = signals::Hangups::register();
        // Without SIGHUP (not a unix, or it could not be registered) only
        // the files are watched: a finished stream must not be polled again.
        let mut hangups_alive = true;
        let mut tick = tokio::time::interval(http::tls::POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                () = stop.cancelled() => break,
                more = hangups.next(), if hangups_alive => {
                    if !more {
                        hangups_alive = false;
                        continue;
                    }
                    "SIGHUP"
                }
                _ = tick.tick() => {
                    if !reloads.changed() {
                        continue;
                    }
                    "a file changed"
                }
            };
            match reloads.reload() {
                Ok(()) => {
                    tracing::info!(names = ?reloads.names(), "{why}: TLS scan certificates read again");
                    expiry.tls_expiry(Listener::ScanTls, reloads.expires());
                }
                Err(error) => tracing::error!(%error, "{why}: keeping the TLS scan certificates in use"),
            }
        }
    });
    let options = ConnectionOptions {
        tls: Some(tls),
        ..limits.clone()
    };
    serve_scans(scans, listener, state, options, metrics, shutdown)
}

/// Scans on `listener`, on the scan runtime (its connections are then
/// registered with that runtime's reactor); over TLS when `options` say so.
/// Returns whether its connections drained in time.
fn serve_scans(
    scans: &tokio::runtime::Handle,
    listener: std::net::TcpListener,
    state: Arc<http::ScanState>,
    options: ConnectionOptions,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<bool> {
    let tls = options.tls.is_some();
    let label = if tls { Listener::ScanTls } else { Listener::Scan };
    let metrics = metrics.clone();
    let stop = shutdown.clone().cancelled_owned();
    scans.spawn(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, listener = label.as_str(), "cannot listen for scans");
                return false;
            }
        };
        http::serve(
            listener,
            move |peer, mode| ScanService::with_mode(state.clone(), peer, mode).over_tls(tls),
            options,
            metrics,
            label,
            stop,
        )
        .await
    })
}

/// The three listeners, bound and announced; the scan listener is handed
/// to the scan runtime as a plain socket.
struct Listeners {
    scan: std::net::TcpListener,
    /// `--tls-listen`, for the scan runtime too.
    tls: Option<std::net::TcpListener>,
    admin: TcpListener,
    metrics: TcpListener,
    scan_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Listeners {
    /// Binds every listener and prints their addresses as one JSON line on
    /// standard output (so `/healthz` answers at once).
    async fn bind(args: &ServeArgs) -> Result<Listeners, AppError> {
        let scan = bind(args.listen).await?.into_std().map_err(|source| AppError::Bind {
            addr: args.listen,
            source,
        })?;
        let (tls, tls_addr) = match args.tls_listen {
            Some(addr) => {
                let listener = bind(addr).await?;
                let local = local_addr(&listener, addr)?;
                let std = listener.into_std().map_err(|source| AppError::Bind { addr, source })?;
                (Some(std), Some(local))
            }
            None => (None, None),
        };
        let admin = bind(args.admin_listen).await?;
        let metrics = bind(args.metrics_listen).await?;
        let scan_addr = scan.local_addr().map_err(|source| AppError::Bind {
            addr: args.listen,
            source,
        })?;
        let admin_addr = local_addr(&admin, args.admin_listen)?;
        let metrics_addr = local_addr(&metrics, args.metrics_listen)?;
        let admin_scheme = if args.admin_tls_cert.is_some() { "https" } else { "http" };
        let listening = Listening {
            scan: format!("http://{scan_addr}"),
            admin: format!("{admin_scheme}://{admin_addr}"),
            metrics: format!("http://{metrics_addr}"),
            tls: tls_addr.map(|a| format!("https://{a}")),
        };
        println!("{}", serde_json::to_string(&listening).unwrap_or_default());
        tracing::info!("metrics on http://{metrics_addr}/metrics");
        if let Some(addr) = tls_addr {
            tracing::info!("scans over TLS on https://{addr}");
        }
        Ok(Listeners {
            scan,
            tls,
            admin,
            metrics,
            scan_addr,
            admin_addr,
        })
    }
}

/// What the scan path shares: the flags turned into [`ScanOptions`].
fn scan_state(
    args: &ServeArgs,
    replica: Arc<Replica>,
    metrics: Arc<Metrics>,
    counts: Option<Arc<ScanCounts>>,
) -> Result<Arc<ScanState>, AppError> {
    let mut options = ScanOptions::new(args.cache_max_age, args.trusted_nets());
    options.set_lifetimes(crate::edge::http::cache::Lifetimes {
        max_age: args.cache_max_age,
        s_maxage: args.cache_s_maxage,
        stale_while_revalidate: args.cache_stale_while_revalidate,
        stale_if_error: args.cache_stale_if_error,
        miss_max_age: args.cache_miss_max_age,
    });
    options.max_lag = args.max_lag;
    options.qr_codes = Arc::new(crate::edge::http::qr_cache::QrCache::new(
        crate::edge::http::qr_cache::CAPACITY_BYTES,
        args.page_qr_cpu,
    ));
    options.assume_https = args.assume_https;
    options.answers = args.answers();
    options.count_proxied = args.count_source == crate::edge::config::CountSource::Origin;
    options.code_hosts = CodeHosts::parse(&args.public_urls).map_err(AppError::PublicUrl)?;
    if let Some(name) = &args.client_header {
        let header =
            hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| AppError::ClientHeader(name.clone()))?;
        options.set_client_header(Some(header));
    }
    if options.code_hosts.is_anywhere() {
        tracing::info!("launch codes answer on every host (no --public-url)");
    } else {
        tracing::info!(public_urls = ?args.public_urls, "launch codes answer only under the public URLs; other hosts answer rules");
    }
    let mut state = ScanState::new(replica, metrics, options);
    if let Some(counts) = counts {
        state = state.with_counts(counts);
    }
    Ok(Arc::new(state))
}

/// The scan listener's limits, from the flags and the open-files limit.
fn connection_options(args: &ServeArgs) -> ConnectionOptions {
    let open_files = http::server::raise_open_files_limit();
    // Keep descriptors for the admin listener, the store and files.
    let derived = usize::try_from(open_files.saturating_sub(512))
        .unwrap_or(usize::MAX)
        .clamp(64, 4096);
    let limits = ConnectionOptions {
        header_read_timeout: args.header_read_timeout,
        shutdown_grace: args.shutdown_grace,
        max_connections: args.max_connections.map_or(derived, |n| n as usize),
        reserve: 32,
        max_header_bytes: args.max_header_bytes as usize,
        max_per_ip: (args.max_connections_per_ip > 0).then_some(args.max_connections_per_ip as usize),
        per_ip_exempt: args.trusted_nets(),
        tls: None,
    };
    tracing::info!(
        max_connections = limits.max_connections,
        max_connections_per_ip = ?limits.max_per_ip,
        max_header_bytes = limits.max_header_bytes,
        open_files,
        "connection limits"
    );
    limits
}

fn serve_metrics(
    listener: TcpListener,
    limits: &ConnectionOptions,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<bool> {
    let options = ConnectionOptions {
        max_connections: 64,
        reserve: 8,
        max_per_ip: None,
        ..limits.clone()
    };
    let service = MetricsService::new(metrics.clone());
    tokio::spawn(http::serve(
        listener,
        move |_peer, _mode| service.clone(),
        options,
        metrics.clone(),
        Listener::Metrics,
        shutdown.clone().cancelled_owned(),
    ))
}

/// The admin listener and the addresses its answers name.
struct AdminParts {
    listener: TcpListener,
    addr: SocketAddr,
    scan_addr: SocketAddr,
    /// `--admin-tls-cert`/`--admin-tls-key`, when given.
    tls: Option<Arc<http::tls::TlsFiles>>,
    /// WeChat's API, when `--wechat-appid` is given.
    wechat: Option<Arc<crate::edge::wechat::Wechat>>,
}

/// The admin API: its token, its state, and the server, each request
/// carrying its client's address (for the auth throttle).
#[allow(clippy::too_many_arguments)]
fn serve_admin(
    args: &ServeArgs,
    parts: AdminParts,
    store: &Arc<dyn Store>,
    replica: &Arc<Replica>,
    metrics: &Arc<Metrics>,
    counts: Option<Arc<ScanCounts>>,
    limits: &ConnectionOptions,
    shutdown: &CancellationToken,
) -> Result<tokio::task::JoinHandle<bool>, AppError> {
    let (token, token_source) = AdminToken::resolve(
        args.admin_token.as_ref().map(crate::edge::config::Secret::expose),
        args.admin_token_file.as_deref(),
        parts.addr,
        &args.data,
    )?;
    let writer = Writer::new(store.clone(), replica.clone(), metrics.clone());
    let admin_state = AdminState::new(
        writer,
        token,
        metrics.clone(),
        AdminOptions {
            body_timeout: args.admin_body_timeout,
            spool_dir: args.data.clone(),
            code_hosts: CodeHosts::parse(&args.public_urls).map_err(AppError::PublicUrl)?,
            public_urls: args.public_urls.clone(),
            scan_base: format!("http://{}", public_addr(parts.scan_addr)),
            days: crate::replication::stats::Days::named(&args.stats_time_zone).map_err(AppError::Flag)?,
            count_source: args.count_source,
            keep_days: args.stats_keep_days,
            wechat: parts.wechat.clone(),
        },
        counts,
    );
    tokio::spawn(crate::edge::admin::keys::follow(
        store.clone(),
        admin_state.keys.clone(),
        replica.watch_keys(),
        shutdown.clone(),
    ));
    tokio::spawn(reload_admin_on_sighup(
        signals::Hangups::register(),
        admin_state.clone(),
        TokenFrom {
            fixed: args.admin_token.is_some(),
            file: args.admin_token_file.clone(),
            addr: parts.addr,
            data: args.data.clone(),
            grace: args.admin_token_grace,
        },
        parts.tls.clone(),
    ));
    let api = crate::edge::admin::router(admin_state.clone());
    let console = crate::edge::console::router(
        api.clone(),
        admin_state,
        &crate::edge::console::ConsoleOptions {
            idle: args.console_idle_timeout,
            lifetime: args.console_session_lifetime,
            secure_cookie: parts.tls.is_some() || args.assume_https,
        },
    );
    let router = console.merge(api);
    let scheme = if parts.tls.is_some() { "https" } else { "http" };
    let options = ConnectionOptions {
        max_connections: 256,
        reserve: 16,
        max_per_ip: None,
        tls: parts.tls,
        ..limits.clone()
    };
    let server = tokio::spawn(http::serve(
        parts.listener,
        move |peer, _mode| {
            use tower::ServiceExt;
            let router = router
                .clone()
                .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(crate::edge::admin::auth::ClientAddr(peer));
                    request
                });
            hyper_util::service::TowerToHyperService::new(router)
        },
        options,
        metrics.clone(),
        Listener::Admin,
        shutdown.clone().cancelled_owned(),
    ));
    let addr = parts.addr;
    match &token_source {
        TokenSource::Generated(path) => {
            tracing::info!("admin API on {scheme}://{addr}; bearer token in {}", path.display())
        }
        TokenSource::Env => tracing::info!("admin API on {scheme}://{addr}; token from QRLAUNCH_ADMIN_TOKEN"),
        TokenSource::File(path) => tracing::info!("admin API on {scheme}://{addr}; token from {}", path.display()),
    }
    Ok(server)
}

/// Where the admin token is read from again on `SIGHUP`.
struct TokenFrom {
    /// The token came from `QRLAUNCH_ADMIN_TOKEN` or `--admin-token`: it
    /// cannot change while the process runs.
    fixed: bool,
    file: Option<std::path::PathBuf>,
    addr: SocketAddr,
    data: std::path::PathBuf,
    grace: Duration,
}

/// Every SIGHUP re-reads the admin token (a new one is taken, the old one
/// accepted for `--admin-token-grace`) and the admin listener's
/// certificate. A reload that fails keeps what is in use and says why;
/// `QRLAUNCH_ADMIN_TOKEN` cannot change in a running process, so a token
/// from it stays.
async fn reload_admin_on_sighup(
    mut hangups: signals::Hangups,
    state: crate::edge::admin::AdminState,
    from: TokenFrom,
    tls: Option<Arc<http::tls::TlsFiles>>,
) {
    while hangups.next().await {
        if from.fixed {
            tracing::info!("SIGHUP: the admin token comes from QRLAUNCH_ADMIN_TOKEN or --admin-token and stays");
        } else {
            match AdminToken::resolve(None, from.file.as_deref(), from.addr, &from.data) {
                Ok((token, _)) => {
                    if state.tokens.replace(token, from.grace) {
                        tracing::info!(grace = ?from.grace, "SIGHUP: a new admin token; the one it replaced is accepted for the grace period");
                    }
                }
                Err(error) => tracing::error!(%error, "SIGHUP: keeping the admin token in use"),
            }
        }
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!("SIGHUP: the admin listener's certificate was read again");
                    state.metrics.tls_expiry(Listener::Admin, tls.expires());
                }
                Err(error) => tracing::error!(%error, "SIGHUP: keeping the admin listener's certificate in use"),
            }
        }
    }
}

/// The follower of the store, with its purger and SIGHUP rebuilds.
fn start_follower(
    args: &ServeArgs,
    store: &Arc<dyn Store>,
    replica: &Arc<Replica>,
    purger: Option<crate::replication::purge::Purger>,
    hangups: signals::Hangups,
    seeded: Option<crate::replication::sync::Seeded>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let resync = Arc::new(tokio::sync::Notify::new());
    // A SQLite store `qrlaunch restore` put there: the follower purges the
    // caches once it is served (PostgreSQL is restored with its own tools,
    // and running nodes purge when they see its new epoch).
    let restored = match args.store_url() {
        Ok(crate::edge::config::StoreUrl::Sqlite(dir)) => {
            Some(dir.join(crate::replication::store::backup::RESTORED_MARKER)).filter(|mark| mark.exists())
        }
        _ => None,
    };
    let follower = Follower::new(
        store.clone(),
        replica.clone(),
        FollowerOptions {
            poll: args.sync_poll,
            apply_delay: args.test_apply_delay,
            restored,
            ..FollowerOptions::default()
        },
    )
    .with_resync(resync.clone())
    .with_seeded(seeded)
    .with_purger(purger);
    tokio::spawn(resync_on_sighup(hangups, resync));
    tokio::spawn(follower.run(shutdown.clone()))
}

/// The hosts of the public URLs, normalized, for counting their 404s.
fn code_hosts_for_counting(public_urls: &[String]) -> Vec<String> {
    public_urls
        .iter()
        .filter_map(|u| crate::model::url_key::normalize_absolute(u).ok())
        .map(|key| crate::model::url_key::host_of_key(&key).to_string())
        .collect()
}

async fn open_store(args: &ServeArgs) -> Result<Arc<dyn Store>, AppError> {
    let url = args.store_url().map_err(AppError::Flag)?;
    let described = match &url {
        StoreUrl::Sqlite(dir) => format!("sqlite:{}", dir.display()),
        StoreUrl::Postgres(url) => crate::replication::redact::url(url),
    };
    let store_error = |error| AppError::Store {
        store: described.clone(),
        error,
    };
    Ok(match url {
        StoreUrl::Sqlite(dir) => Arc::new(SqliteStore::open(&dir).await.map_err(store_error)?),
        StoreUrl::Postgres(url) => Arc::new(
            crate::replication::store::postgres::PostgresStore::connect(&url)
                .await
                .map_err(store_error)?,
        ),
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, AppError> {
    listener
        .local_addr()
        .map_err(|source| AppError::Bind { addr: asked, source })
}

/// Drains histogram samples into buckets. Often, so that each drain is
/// short: at 100,000 requests a second a 5 s interval meant draining half a
/// million samples at once, a pause of milliseconds on the scan thread.
///
/// Also gives memory back after a crowd of connections has gone: each holds
/// tens of KiB of buffers, which the allocator keeps after they close
/// (measured: RSS stayed at 114 MiB after 4,096 connections with partial
/// headers closed, from 20 MiB before). Once the count has fallen by
/// [`TRIM_AFTER`] from its peak, free memory is returned to the kernel, and
/// once more when the count has stopped falling: a crowd leaves over several
/// ticks, and the connections that closed after the first trim would
/// otherwise keep their buffers (seen: 5 MB left after 1,300 partial heads).
async fn upkeep(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut peak = 0i64;
    let mut last = 0i64;
    let mut settling = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                metrics.upkeep();
                let open = metrics.open_connections();
                peak = peak.max(open);
                let trim = if peak - open >= TRIM_AFTER {
                    peak = open;
                    settling = true;
                    true
                } else if settling && open >= last {
                    settling = false;
                    true
                } else {
                    false
                };
                last = open;
                if trim {
                    crate::replication::background::run("qrlaunch-trim", crate::replication::background::release_free_memory).await;
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Connections that must have closed before free memory is trimmed.
const TRIM_AFTER: i64 = 256;

/// Every SIGHUP asks the follower for a rebuild from a new snapshot.
async fn resync_on_sighup(mut hangups: signals::Hangups, resync: Arc<tokio::sync::Notify>) {
    while hangups.next().await {
        tracing::info!("SIGHUP received: rebuilding the table from the store");
        resync.notify_one();
    }
}

/// Trims the change log once a minute.
async fn prune_log(store: Arc<dyn Store>, keep: i64, audit_keep_days: i32, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut minutes = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(error) = store.prune_log(keep.max(1)).await {
                    tracing::warn!(%error, "trimming the change log failed");
                }
                // The audit log hourly (any node of a fleet may: it is idempotent).
                if minutes.is_multiple_of(60) {
                    let before = crate::replication::store::now_ms() - i64::from(audit_keep_days) * 86_400_000;
                    if let Err(error) = store.prune_audit(before).await {
                        tracing::warn!(%error, "trimming the audit log failed");
                    }
                }
                minutes = minutes.wrapping_add(1);
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Logs "ready" and two commands to try once the first table is served.
async fn announce_ready(
    replica: Arc<Replica>,
    addr: SocketAddr,
    public_url: Option<String>,
    store: String,
    shutdown: CancellationToken,
) {
    while !replica.is_bootstrapped() {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = shutdown.cancelled() => return,
        }
    }
    let table = replica.load();
    tracing::info!(
        store,
        codes = table.code_count(),
        rules = table.rule_count(),
        position = table.position(),
        "table loaded; ready"
    );
    for hint in try_hints(&table, addr, public_url.as_deref()) {
        tracing::info!("try: {hint}");
    }
}

/// Removes the copies of backups that a crash left in the data directory
/// (`GET /admin/v1/backup` unlinks its copy once open, but a crash before
/// that leaves it).
fn remove_stale_backups(data: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(data) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("backup-") && name.ends_with(".db.partial") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %entry.path().display(), "removed a backup copy a crash left behind"),
                Err(error) => {
                    tracing::warn!(file = %entry.path().display(), %error, "cannot remove a stale backup copy")
                }
            }
        }
    }
}

/// `addr`, with an unspecified IP replaced by loopback (for printed URLs).
fn public_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        _ => addr,
    }
}

/// Two commands a person can paste to see the service answer: a launch
/// code and a legacy URL, both live right now in this node's table. With a
/// `--public-url`, codes answer only on its host and below its path: the
/// command asks for that host, through this node's address.
fn try_hints(table: &Snapshot, addr: SocketAddr, public_url: Option<&str>) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let node = public_addr(addr);
    let mut hints = Vec::new();
    let live = crate::model::domain::Availability::Live;
    // A code of the base table that the overlay did not change or remove,
    // among the first stored: this runs on the control thread, which never
    // walks a million codes (the hint is left out rather).
    let code = table
        .base()
        .codes()
        .take(1_000)
        .map(|(code, _)| code)
        .find(|code| table.code(code).is_some_and(|hit| hit.availability(now) == live));
    if let Some(code) = code {
        let code = percent::encoded(code);
        match public_url.and_then(|u| url::Url::parse(u).ok()) {
            Some(url) if url.host_str().is_some() => {
                let host = match url.port() {
                    Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                    None => url.host_str().unwrap_or_default().to_string(),
                };
                let path = url.path().trim_end_matches('/');
                hints.push(format!("curl -si -H 'Host: {host}' http://{node}{path}/{code}"));
            }
            _ => hints.push(format!("curl -si http://{node}/{code}")),
        }
    }
    let rule = table.rule_hits().find(|hit| hit.availability(now) == live);
    if let Some(prefix) = rule.and_then(|hit| hit.prefix) {
        hints.push(format!(
            "curl -s 'http://{node}/v1/resolve?url={}'",
            percent::encoded(prefix)
        ));
    }
    hints
}
