//! The `qrlaunch` binary: flags, logging, runtime. Everything else is in the library.

use qrlaunch::edge::app::{self, TableSource};
use qrlaunch::edge::config::{AdminArgs, Cli, Command, ServeArgs};
use std::process::ExitCode;

// The allocator: see the `jemalloc` and `mimalloc` features in Cargo.toml
// and loadtest/allocators.sh.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::from_env();
    match cli.command {
        Some(Command::Check { file }) => check(file),
        Some(Command::Healthcheck { listen, timeout }) => match qrlaunch::edge::cli::healthcheck(listen, timeout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("qrlaunch: unhealthy: {reason}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Generate { what }) => match Cli::generate(what, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("qrlaunch: {error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Backup { file, admin }) => operate(&admin, |c| qrlaunch::edge::cli::backup(c, &file)),
        // The file is checked before the directory is made and locked: a
        // bad file leaves nothing behind.
        Some(Command::Restore { file, data }) => report(
            qrlaunch::replication::store::backup::inspect(&file)
                .and_then(|_| app::datadir::lock(&data).map_err(|e| e.to_string()))
                .and_then(|_lock| qrlaunch::replication::store::backup::restore(&file, &data))
                .map(|info| (data, info)),
        ),
        Some(Command::Import {
            file,
            mode,
            format,
            out,
            admin,
        }) => operate(&admin, |c| {
            qrlaunch::edge::cli::import(c, &file, mode, format, out.as_deref())
        }),
        Some(Command::Export { file, admin }) => operate(&admin, |c| qrlaunch::edge::cli::export(c, file.as_deref())),
        Some(Command::Code { action, admin }) => operate(&admin, |c| qrlaunch::edge::cli::code(c, action)),
        Some(Command::Rule { action, admin }) => operate(&admin, |c| qrlaunch::edge::cli::rule(c, action)),
        Some(Command::Host { action, admin }) => operate(&admin, |c| qrlaunch::edge::cli::host(c, action)),
        Some(Command::Key { action, admin }) => operate(&admin, |c| qrlaunch::edge::cli::key(c, action)),
        Some(Command::Audit { args, admin }) => operate(&admin, |c| qrlaunch::edge::cli::audit(c, &args)),
        Some(Command::Qr { args, admin }) => operate(&admin, |c| qrlaunch::edge::cli::all_qr(c, &args)),
        Some(Command::Wxacode { args, admin }) => operate(&admin, |c| qrlaunch::edge::cli::wxacode(c, &args)),
        Some(Command::Ingest { args, .. }) if args.print_format => {
            println!("{}", qrlaunch::edge::ingest::VARNISHNCSA_FORMAT);
            ExitCode::SUCCESS
        }
        Some(Command::Ingest { args, admin }) => operate(&admin, |c| qrlaunch::edge::cli::ingest(c, &args)),
        Some(Command::Stats { args, admin }) => operate(&admin, |c| qrlaunch::edge::cli::stats(c, &args)),
        Some(Command::Serve(args)) => serve(*args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" before any thread
    // starts. A write past a file-size limit then fails with EFBIG (and is
    // answered 5xx) instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let json = args.log_format == qrlaunch::edge::config::LogLines::Json;
    let (filter, bad_filter) = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(filter) => (filter, None),
        Err(error) => (tracing_subscriber::EnvFilter::new("info"), Some(error)),
    };
    // Colour only for a person at a terminal who has not asked for none
    // (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        qrlaunch::edge::config::LogLines::Text => logs.with_ansi(colour).init(),
        qrlaunch::edge::config::LogLines::Json => logs.json().with_ansi(false).init(),
    }
    if let Some(error) = bad_filter {
        tracing::warn!(log = %args.log, %error, "--log is not a valid filter; using `info`");
    }

    // Two runtimes (ARCHITECTURE.md, "Background work and the scan path"):
    // the scan runtime answers scans and nothing else; this thread's runtime
    // runs everything else (admin API, follower, purges, counts, metrics),
    // and heavy work goes further, to idle-class threads.
    let control = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Its blocking pool's threads (SQLite's reads and small writes), by
        // name in a scheduler record.
        .thread_name("qrlaunch-control")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("qrlaunch: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let scans = match app::ScanRuntime::start(args.threads) {
        Ok(scans) => scans,
        Err(error) => {
            eprintln!("qrlaunch: cannot start the scan runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = control.block_on(async {
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            app::signals::shutdown_signal().await;
            on_signal.cancel();
        });
        app::serve(args, shutdown, scans.handle()).await
    });
    scans.stop();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            // Said again in words for a person, unless every line of
            // standard error must be JSON.
            if !json {
                eprintln!("qrlaunch: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs a CLI command against the admin API.
fn operate(
    admin: &AdminArgs,
    command: impl FnOnce(&qrlaunch::edge::cli::AdminClient) -> Result<(), qrlaunch::edge::cli::CliError>,
) -> ExitCode {
    match qrlaunch::edge::cli::connect(admin).and_then(|client| command(&client)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qrlaunch: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a backup's or restore's summary as one JSON line, or the error.
fn report(done: Result<(std::path::PathBuf, qrlaunch::replication::store::backup::BackupInfo), String>) -> ExitCode {
    match done {
        Ok((path, info)) => {
            let mut line = serde_json::to_value(&info).unwrap_or_default();
            line["path"] = path.display().to_string().into();
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("qrlaunch: {error}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: std::path::PathBuf) -> ExitCode {
    let source = TableSource::File(file);
    match app::seed::check_file(&source) {
        Ok(loaded) => {
            let table = &loaded.table;
            println!(
                "{}: {} codes, {} rules, {} distinct entry points, {} hosts, {} files, {} lines asking for generated codes",
                source.name(),
                table.code_count(),
                table.rule_count(),
                table.profile_count(),
                loaded.hosts,
                loaded.files,
                loaded.generated
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("qrlaunch: {error}");
            ExitCode::FAILURE
        }
    }
}
