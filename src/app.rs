//! Start-up and shutdown: wires flags, store, table, metrics and the two
//! servers together.
//!
//! Order: bind the scan and admin listeners (so `/healthz` answers at once
//! and `/readyz` says 503), open the store, import the table file if the
//! store is empty, build the table from the store on a blocking thread,
//! publish it (ready). A table file that fails to import stops the process
//! with the line and field at fault. SIGHUP rebuilds the table from the
//! store; SIGTERM/SIGINT stop both servers gracefully.

use crate::admin::auth::{AdminToken, TokenError, TokenSource};
use crate::admin::{AdminService, AdminState};
use crate::catalog::{Catalog, CatalogError};
use crate::config::ServeArgs;
use crate::http::{self, AppState, ConnectionOptions, ScanOptions, ScanService};
use crate::metrics::Metrics;
use crate::scheme_url;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError, WriteMode};
use crate::table::{Snapshot, Table};
use crate::table_file::{self, LineError, TableFileError, EXAMPLE_TABLE};
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("table {source_name}: {error}")]
    Table { source_name: String, error: TableFileError },
    #[error("store {path}: {error}")]
    Store { path: PathBuf, error: StoreError },
    #[error("loading the table from the store: {0}")]
    Catalog(#[from] CatalogError),
    #[error("admin API: {0}")]
    Token(#[from] TokenError),
}

/// Where a table file comes from.
#[derive(Debug, Clone)]
pub enum TableSource {
    File(PathBuf),
    Example,
}

impl TableSource {
    pub fn name(&self) -> String {
        match self {
            TableSource::File(path) => path.display().to_string(),
            TableSource::Example => "(embedded examples/table.ndjson)".into(),
        }
    }

    fn reader(&self) -> Result<Box<dyn BufRead + Send>, TableFileError> {
        Ok(match self {
            TableSource::File(path) => Box::new(BufReader::with_capacity(1 << 20, File::open(path)?)),
            TableSource::Example => Box::new(EXAMPLE_TABLE.as_bytes()),
        })
    }

    /// Reads the file into a table (no store involved): `qrlaunch check`.
    pub fn load(&self) -> Result<Table, TableFileError> {
        table_file::load(self.reader()?)
    }
}

/// Runs the service until `shutdown` completes.
pub async fn serve(args: ServeArgs, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), AppError> {
    let metrics = if args.no_metrics {
        Metrics::disabled()
    } else {
        Metrics::prometheus()
    };
    let options = ScanOptions::new(args.cache_max_age, args.trusted_nets());
    let state = Arc::new(AppState::starting(metrics, options));
    let listener = bind(args.listen).await?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: args.listen,
        source,
    })?;
    let admin_listener = bind(args.admin_listen).await?;
    let admin_addr = admin_listener.local_addr().map_err(|source| AppError::Bind {
        addr: args.admin_listen,
        source,
    })?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        metrics = !args.no_metrics,
        "listening on http://{addr}"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let upkeep = spawn_upkeep(state.clone());
    let connection_options = ConnectionOptions {
        header_read_timeout: args.header_read_timeout,
        shutdown_grace: args.shutdown_grace,
    };
    let scan_state = state.clone();
    let scan_server = tokio::spawn(http::serve(
        listener,
        move |peer| ScanService::new(scan_state.clone(), peer),
        connection_options.clone(),
        stopped(),
    ));

    let store = SqliteStore::open(&args.data).await.map_err(|error| AppError::Store {
        path: args.data.clone(),
        error,
    })?;
    let store: Arc<dyn Store> = Arc::new(store);
    let (token, token_source) = AdminToken::resolve(
        args.admin_token.as_deref(),
        args.admin_token_file.as_deref(),
        admin_addr,
        &args.data,
    )?;
    let catalog = Arc::new(Catalog::new(store.clone(), state.clone()));
    let admin_state = Arc::new(AdminState {
        catalog: catalog.clone(),
        token,
        app: state.clone(),
    });
    let admin_server = tokio::spawn(http::serve(
        admin_listener,
        move |_peer| AdminService::new(admin_state.clone()),
        connection_options,
        stopped(),
    ));
    match &token_source {
        TokenSource::Generated(path) => {
            tracing::info!("admin API on http://{admin_addr}; bearer token in {}", path.display())
        }
        TokenSource::Env => tracing::info!("admin API on http://{admin_addr}; token from QRLAUNCH_ADMIN_TOKEN"),
        TokenSource::File(path) => tracing::info!("admin API on http://{admin_addr}; token from {}", path.display()),
    }

    let hangups = Hangups::register();
    let started = Instant::now();
    if let Err(error) = seed_empty_store(store.clone(), &args).await {
        scan_server.abort();
        admin_server.abort();
        return Err(error);
    }
    let (codes, rules) = catalog.reload().await?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(store = %args.data.display(), codes, rules, elapsed_ms, "table loaded; ready");
    for hint in try_hints(&state.table.load(), addr) {
        tracing::info!("try: {hint}");
    }
    let reloader = tokio::spawn(reload_on_sighup(catalog, hangups));

    let scan_drained = scan_server.await.unwrap_or(false);
    let admin_drained = admin_server.await.unwrap_or(false);
    upkeep.abort();
    reloader.abort();
    tracing::info!(clean = scan_drained && admin_drained, "stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

/// Drains histogram samples into buckets. Often, so that each drain is
/// short: at 100,000 requests a second a 5 s interval meant draining half a
/// million samples at once, a pause of milliseconds on the scan thread.
fn spawn_upkeep(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            state.metrics.upkeep();
        }
    })
}

/// Imports `--table` (or the embedded example) into an empty store, all or
/// nothing, on a low-priority thread; a store that has entries is left alone.
async fn seed_empty_store(store: Arc<dyn Store>, args: &ServeArgs) -> Result<(), AppError> {
    let source = args.table.clone().map_or(TableSource::Example, TableSource::File);
    let data = args.data.clone();
    let store_error = move |error| AppError::Store {
        path: data.clone(),
        error,
    };
    if !store.is_empty().await.map_err(store_error.clone())? {
        if args.table.is_some() {
            tracing::warn!(table = %source.name(), "the store has entries; --table is only imported into an empty store");
        }
        return Ok(());
    }
    let started = Instant::now();
    let name = source.name();
    let seeded = crate::background::run("qrlaunch-seed", move || {
        let table_error = |error| AppError::Table {
            source_name: source.name(),
            error,
        };
        let mut import = store.begin_import(WriteMode::Insert).map_err(&store_error)?;
        for item in table_file::entries(source.reader().map_err(table_error)?) {
            let (line, entry) = item.map_err(table_error)?;
            import.add(line, &entry).map_err(&store_error)?;
            if let Some(&line) = import.conflicts().first() {
                let error =
                    crate::domain::FieldError::new("code", "the same code or rule prefix appears earlier in the file");
                return Err(table_error(TableFileError::Line {
                    line,
                    error: LineError::Field(error),
                }));
            }
        }
        import.commit().map_err(&store_error)
    })
    .await;
    let counts =
        seeded.ok_or_else(|| AppError::Catalog(CatalogError::Join("the seeding thread panicked".into())))??;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(table = %name, codes = counts.codes, rules = counts.rules, elapsed_ms, "imported into the empty store");
    Ok(())
}

/// Rebuilds the table from the store on every SIGHUP; a failed rebuild is
/// logged and counted, and the previous table keeps serving.
async fn reload_on_sighup(catalog: Arc<Catalog>, mut hangups: Hangups) {
    while hangups.next().await {
        let started = Instant::now();
        match catalog.reload().await {
            Ok((codes, rules)) => {
                catalog.metrics().reload(true);
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(codes, rules, elapsed_ms, "table rebuilt from the store");
            }
            Err(error) => {
                catalog.metrics().reload(false);
                tracing::error!("rebuild failed, still serving the previous table: {error}");
            }
        }
    }
}

/// SIGHUP deliveries. Registered before the first load, so a SIGHUP that
/// arrives while the table loads is not fatal (its default action would
/// end the process) but queued for a reload.
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn register() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signal = signal(SignalKind::hangup())
                .map_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP; table reload is off"))
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups {}
    }

    /// Waits for the next SIGHUP; `false` when there will be none.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            return signal.recv().await.is_some();
        }
        false
    }
}

/// Two commands a person can paste to see the service answer: a launch
/// code and a legacy URL, both live right now.
fn try_hints(table: &Snapshot, addr: SocketAddr) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let host = match addr.ip() {
        ip if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        _ => addr,
    };
    let mut hints = Vec::new();
    let live = crate::domain::Availability::Live;
    if let Some((code, _)) = table.base().codes().find(|(_, hit)| hit.availability(now) == live) {
        let mut path = String::new();
        scheme_url::push_encoded(&mut path, code);
        hints.push(format!("curl -si http://{host}/{path}"));
    }
    let rule = table.base().rules().find(|hit| hit.availability(now) == live);
    if let Some(prefix) = rule.and_then(|hit| hit.prefix) {
        let mut url = String::new();
        scheme_url::push_encoded(&mut url, prefix);
        hints.push(format!("curl -s 'http://{host}/v1/resolve?url={url}'"));
    }
    hints
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        tracing::info!("Ctrl-C received");
    }
}
