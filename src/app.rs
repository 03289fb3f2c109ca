//! Start-up and shutdown: wires flags, table, metrics and server together.
//!
//! The listener is bound first, so `/healthz` answers at once and `/readyz`
//! says 503 while the table loads on a blocking thread; a table that fails
//! to load stops the process with the line and field at fault. SIGHUP
//! reloads the table file in the background and swaps it in.

use crate::config::ServeArgs;
use crate::http::{self, AppState, ConnectionOptions, ScanOptions};
use crate::metrics::Metrics;
use crate::scheme_url;
use crate::table::Table;
use crate::table_file::{self, TableFileError, EXAMPLE_TABLE};
use std::fs::File;
use std::future::Future;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("table {source_name}: {error}")]
    Table { source_name: String, error: TableFileError },
    #[error("the table loader stopped unexpectedly: {0}")]
    Loader(String),
}

/// Where the table comes from.
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

    pub fn load(&self) -> Result<Table, TableFileError> {
        match self {
            TableSource::File(path) => table_file::load(BufReader::with_capacity(1 << 20, File::open(path)?)),
            TableSource::Example => table_file::load(EXAMPLE_TABLE.as_bytes()),
        }
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
    let listener = TcpListener::bind(args.listen).await.map_err(|source| AppError::Bind {
        addr: args.listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: args.listen,
        source,
    })?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        metrics = !args.no_metrics,
        "listening on http://{addr}"
    );

    let upkeep_state = state.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep_state.metrics.upkeep();
        }
    });
    let connection_options = ConnectionOptions {
        header_read_timeout: args.header_read_timeout,
        shutdown_grace: args.shutdown_grace,
    };
    let server = tokio::spawn(http::serve(listener, state.clone(), connection_options, shutdown));

    let hangups = Hangups::register();
    let source = args.table.clone().map_or(TableSource::Example, TableSource::File);
    let started = Instant::now();
    let loader_source = source.clone();
    let loaded = tokio::task::spawn_blocking(move || loader_source.load()).await;
    let table = match loaded {
        Ok(Ok(table)) => table,
        Ok(Err(error)) => {
            server.abort();
            return Err(AppError::Table {
                source_name: source.name(),
                error,
            });
        }
        Err(join) => {
            server.abort();
            return Err(AppError::Loader(join.to_string()));
        }
    };
    tracing::info!(
        table = %source.name(),
        codes = table.code_count(),
        rules = table.rule_count(),
        profiles = table.profile_count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "table loaded; ready"
    );
    for hint in try_hints(&table, addr) {
        tracing::info!("try: {hint}");
    }
    state.publish(table);
    let reloader = tokio::spawn(reload_on_sighup(source, state.clone(), hangups));

    let drained = server.await.unwrap_or(false);
    upkeep.abort();
    reloader.abort();
    tracing::info!(clean = drained, "stopped");
    Ok(())
}

/// Reloads the table from its source on every SIGHUP. The new table is
/// built on a blocking thread while scans keep reading the old one, then
/// swapped in; a table that fails to load is logged and the old one stays.
async fn reload_on_sighup(source: TableSource, state: Arc<AppState>, mut hangups: Hangups) {
    while hangups.next().await {
        let started = Instant::now();
        let loader_source = source.clone();
        match tokio::task::spawn_blocking(move || loader_source.load()).await {
            Ok(Ok(table)) => {
                let (codes, rules) = (table.code_count(), table.rule_count());
                state.publish(table);
                state.metrics.reload(true);
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(table = %source.name(), codes, rules, elapsed_ms, "table reloaded");
            }
            Ok(Err(error)) => {
                state.metrics.reload(false);
                tracing::error!(table = %source.name(), "reload failed, still serving the previous table: {error}");
            }
            Err(error) => {
                state.metrics.reload(false);
                tracing::error!(%error, "reload task failed, still serving the previous table");
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
fn try_hints(table: &Table, addr: SocketAddr) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let host = match addr.ip() {
        ip if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        _ => addr,
    };
    let mut hints = Vec::new();
    let live = crate::domain::Availability::Live;
    if let Some((code, _)) = table.codes().find(|(_, hit)| hit.availability(now) == live) {
        let mut path = String::new();
        scheme_url::push_encoded(&mut path, code);
        hints.push(format!("curl -si http://{host}/{path}"));
    }
    if let Some(prefix) = table
        .rules()
        .find(|hit| hit.availability(now) == live)
        .and_then(|hit| hit.prefix)
    {
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
