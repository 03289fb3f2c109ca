//! `qrlaunch-loadtest`: workload files and an HTTP/1.1 load generator with
//! honest tail latency, for loopback only.
//!
//! * `gen-table`: the table file (N codes, M rules) from a seed;
//! * `gen-nginx-map`: the same codes as an nginx `map` with the same
//!   `Location` values;
//! * `gen-requests`: the request list (`host<TAB>target<TAB>expected status`);
//! * `run`: closed loop (N connections as fast as they go) or open loop
//!   (`--rate`: fixed rate, latency from each request's due time), bounded
//!   by `--duration` and `--max-requests`; prints text and one JSON line,
//!   with the CPU use of the server (`--server-pid`) and of given cores
//!   (`--watch-cores`) so a run shows whether the server set the pace;
//! * `soak`: an open-loop run that also samples a process's RSS;
//! * `propagation`, `purge`: how long after an admin `2xx` a change answers
//!   on other nodes of a fleet, or through a cache.

mod changes;
mod client;
mod pacing;
mod procstat;
mod report;
mod timer;

use clap::{Args, Parser, Subcommand};
use client::{Pace, Prepared};
use qrlaunch::model::scheme_url;
use qrlaunch::workload::{self, Mix, RequestKind, Spec};
use report::{Report, Tally};
use std::io::{BufRead, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "qrlaunch-loadtest",
    version,
    about = "Load generator and workload files for qrlaunch (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the table file (NDJSON).
    GenTable {
        #[command(flatten)]
        workload: WorkloadArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the codes as an nginx `map $uri $qr_target { … }` block.
    GenNginxMap {
        #[command(flatten)]
        workload: WorkloadArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the request list: `host<TAB>target<TAB>status` lines.
    GenRequests {
        #[command(flatten)]
        workload: WorkloadArgs,
        #[command(flatten)]
        mix: MixArgs,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Drive a server and report throughput and latency.
    Run(RunArgs),
    /// An open-loop run that samples a process's RSS every 10 s and fails
    /// if it grew or any request failed.
    Soak {
        #[command(flatten)]
        run: RunArgs,
        /// The server's process id.
        #[arg(long)]
        pid: u32,
        /// Allowed RSS growth from the first sample after warm-up, in percent.
        #[arg(long, default_value_t = 5.0)]
        max_growth_percent: f64,
    },
    /// Writes codes through one node's admin API at a fixed rate and times
    /// when each write's position shows on the other nodes.
    Propagation {
        #[command(flatten)]
        admin: AdminArgs,
        /// A node's scan address (repeat for each node to watch).
        #[arg(long = "node", required = true)]
        nodes: Vec<SocketAddr>,
        /// Writes per second.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// How many writes.
        #[arg(long, default_value_t = 100)]
        writes: usize,
        /// Writers in parallel (each write is due at its time regardless).
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// How often each node's position is read.
        #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
        poll: Duration,
        /// Codes written are PREFIX0, PREFIX1, …
        #[arg(long, default_value = "prop")]
        prefix: String,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Changes one code again and again and times when each change answers
    /// through a cache (that marks hits with `X-Cache: HIT`).
    Purge {
        #[command(flatten)]
        admin: AdminArgs,
        /// The cache's address.
        #[arg(long)]
        cache: SocketAddr,
        #[arg(long, default_value = "purgebench")]
        code: String,
        #[arg(long, default_value_t = 100)]
        changes: usize,
        /// How often the answer is fetched through the cache.
        #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
        poll: Duration,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
struct AdminArgs {
    /// The admin API's address (loopback).
    #[arg(long)]
    admin: SocketAddr,
    /// File holding the admin token.
    #[arg(long)]
    token_file: PathBuf,
}

#[derive(Args, Clone, Copy)]
struct WorkloadArgs {
    #[arg(long, default_value_t = 1_000_000)]
    codes: usize,
    #[arg(long, default_value_t = 10_000)]
    rules: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl WorkloadArgs {
    fn spec(self) -> Spec {
        Spec {
            codes: self.codes,
            rules: self.rules,
            seed: self.seed,
        }
    }
}

#[derive(Args, Clone, Copy)]
struct MixArgs {
    /// Percent of requests for known codes.
    #[arg(long, default_value_t = 90)]
    known: u8,
    /// Percent of requests for legacy URLs (matched by rules).
    #[arg(long, default_value_t = 8)]
    legacy: u8,
    /// Percent of requests for unknown codes.
    #[arg(long, default_value_t = 2)]
    unknown: u8,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Server address; must be loopback.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to run (e.g. `10s`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many requests at the latest.
    #[arg(long, default_value_t = 50_000_000)]
    max_requests: u64,
    /// Open loop at this many requests per second; without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Requests from a `gen-requests` file instead of generating them.
    #[arg(long)]
    requests: Option<PathBuf>,
    #[command(flatten)]
    workload: WorkloadArgs,
    #[command(flatten)]
    mix: MixArgs,
    /// Send this `User-Agent` with every request (without it, none is sent,
    /// which qrlaunch answers like an iPhone: a 302 to `weixin://`).
    #[arg(long)]
    user_agent: Option<String>,
    /// The status a known code or legacy URL must get instead of 302: 200
    /// when the `--user-agent` is answered with a launch page (Android,
    /// desktop, WeChat).
    #[arg(long)]
    answer_status: Option<u16>,
    /// Name in the report.
    #[arg(long, default_value = "qrlaunch")]
    label: String,
    /// Print only the JSON line.
    #[arg(long)]
    json: bool,
    /// Open loop: wake the pacer at most every this many microseconds and
    /// send what fell due meanwhile, instead of spinning to send each
    /// request at its exact due time (0). The wait is counted in latency.
    #[arg(long, default_value_t = 0)]
    batch_us: u64,
    /// The server's process id: its CPU time and preemptions are reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Cores whose busy time is reported (e.g. `0` or `0,1`): the server's
    /// pinned core near 100% means the server, not the generator, set the pace.
    #[arg(long, value_parser = procstat::parse_cores, default_value = "")]
    watch_cores: std::vec::Vec<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::GenTable { workload, out } => write_lines(
            &out,
            workload::table_lines(workload.spec()).map(|l| serde_json::to_string(&l).expect("a table line serializes")),
        ),
        Command::GenNginxMap { workload, out } => gen_nginx_map(workload.spec(), &out),
        Command::GenRequests {
            workload,
            mix,
            count,
            out,
        } => {
            let requests = workload::requests(workload.spec(), mix.mix(), count);
            write_lines(
                &out,
                requests
                    .iter()
                    .map(|r| format!("{}\t{}\t{}", r.host, r.target, expected(r.kind))),
            )
        }
        Command::Run(args) => run(&args).map(|report| {
            print_report(&report, args.json);
        }),
        Command::Soak {
            run,
            pid,
            max_growth_percent,
        } => soak(&run, pid, max_growth_percent),
        Command::Propagation {
            admin,
            nodes,
            rate,
            writes,
            writers,
            poll,
            prefix,
            json,
        } => changes::Admin::new(admin.admin, &admin.token_file)
            .and_then(|admin| {
                changes::propagation(changes::Propagation {
                    admin,
                    nodes,
                    rate,
                    writes,
                    writers,
                    poll,
                    prefix,
                })
            })
            .map(|found| print_latencies(&found, json)),
        Command::Purge {
            admin,
            cache,
            code,
            changes,
            poll,
            json,
        } => changes::Admin::new(admin.admin, &admin.token_file)
            .and_then(|admin| {
                changes::purge(changes::Purge {
                    admin,
                    cache,
                    code,
                    changes,
                    poll,
                })
            })
            .map(|found| print_latencies(&found, json)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("qrlaunch-loadtest: {message}");
            ExitCode::FAILURE
        }
    }
}

impl MixArgs {
    fn mix(self) -> Mix {
        Mix {
            known_codes: self.known,
            legacy_urls: self.legacy,
            unknown: self.unknown,
        }
    }
}

fn expected(kind: RequestKind) -> u16 {
    match kind {
        RequestKind::Code | RequestKind::Legacy => 302,
        RequestKind::Unknown => 404,
    }
}

fn write_lines(out: &PathBuf, lines: impl Iterator<Item = String>) -> Result<(), String> {
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::new(file);
    for line in lines {
        writeln!(w, "{line}").map_err(|e| format!("{}: {e}", out.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", out.display()))
}

/// The codes as an nginx map whose values are byte-identical to the
/// `Location` qrlaunch sends (rendered by the same code).
fn gen_nginx_map(spec: Spec, out: &PathBuf) -> Result<(), String> {
    let spec = Spec { rules: 0, ..spec };
    let mut builder = qrlaunch::model::table::TableBuilder::with_capacity(spec.codes);
    for line in workload::table_lines(spec) {
        builder.insert(&line.validate().map_err(|e| e.to_string())?);
    }
    let table = builder.build();
    let lines = table
        .codes()
        .map(|(code, hit)| format!("    \"/{code}\" \"{}\";", scheme_url::render(&hit, None).url));
    let head = ["map $uri $qr_target {".to_string(), "    default \"\";".to_string()];
    write_lines(out, head.into_iter().chain(lines).chain(["}".to_string()]))
}

fn load_requests(args: &RunArgs) -> Result<Vec<Prepared>, String> {
    if let Some(path) = &args.requests {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            let mut parts = line.split('\t');
            let (Some(host), Some(target), Some(status)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!(
                    "{} line {}: expected host<TAB>target<TAB>status",
                    path.display(),
                    n + 1
                ));
            };
            let status = status
                .parse()
                .map_err(|_| format!("{} line {}: bad status", path.display(), n + 1))?;
            out.push(prepare(args, host, target, status));
        }
        if out.is_empty() {
            return Err(format!("{}: no requests", path.display()));
        }
        return Ok(out);
    }
    let requests = workload::requests(args.workload.spec(), args.mix.mix(), 100_000);
    Ok(requests
        .iter()
        .map(|r| prepare(args, &r.host, &r.target, expected(r.kind)))
        .collect())
}

/// One request as `args` want it sent: their User-Agent, and their answer
/// status in place of a 302.
fn prepare(args: &RunArgs, host: &str, target: &str, expect: u16) -> Prepared {
    let expect = match (expect, args.answer_status) {
        (302, Some(status)) => status,
        _ => expect,
    };
    Prepared::get(host, target, args.user_agent.as_deref(), expect)
}

fn check_loopback(addr: SocketAddr) -> Result<(), String> {
    let loopback = match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "--addr {addr} is not a loopback address; load is only ever sent to 127.0.0.0/8 or [::1]"
        ))
    }
}

/// One bounded run on a single-threaded runtime (the generator is pinned
/// to one core by the scripts).
fn run(args: &RunArgs) -> Result<Report, String> {
    check_loopback(args.addr)?;
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "--rate {rate}: must be a positive number of requests per second"
            ));
        }
    }
    if let Some(ua) = &args.user_agent {
        if ua.bytes().any(|b| b.is_ascii_control()) {
            return Err("--user-agent must not contain control characters".into());
        }
    }
    let requests = Arc::new(load_requests(args)?);
    timer::tighten_timer_slack();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let before = procstat::sample(args.server_pid, &args.watch_cores);
    let (tally, elapsed, lag) = runtime.block_on(async {
        let timer = timer::PreciseTimer::new().map_err(|e| format!("timerfd: {e}"))?;
        // Open loop starts a moment later, so that connecting is not charged to the first requests.
        let start = Instant::now()
            + if args.rate.is_some() {
                Duration::from_millis(20)
            } else {
                Duration::ZERO
            };
        let deadline = start + args.duration;
        let budget = Arc::new(AtomicU64::new(args.max_requests));
        let gate = Arc::new(pacing::Gate::new(args.connections));
        let schedule = args.rate.map(|rate| pacing::Schedule {
            start,
            rate,
            connections: args.connections,
        });
        let mut tasks = Vec::with_capacity(args.connections);
        for k in 0..args.connections {
            let pace = match schedule {
                Some(schedule) => Pace::Open {
                    schedule,
                    connection: k,
                    gate: gate.clone(),
                },
                None => Pace::Closed,
            };
            let offset = k * requests.len() / args.connections;
            tasks.push(tokio::spawn(client::run_connection(
                args.addr,
                requests.clone(),
                offset,
                pace,
                deadline,
                budget.clone(),
            )));
        }
        let connections = async {
            let mut total = Tally::default();
            for task in tasks {
                if let Ok(tally) = task.await {
                    total.merge(&tally);
                }
            }
            total
        };
        let mut lag = report::histogram();
        let total = match schedule {
            None => connections.await,
            Some(schedule) => {
                let pacing = match args.batch_us {
                    0 => pacing::Pacing::Precise,
                    us => pacing::Pacing::Batched(Duration::from_micros(us)),
                };
                // The ticker ends at the deadline; the connections may end
                // sooner (--max-requests) or later (draining a backlog).
                let ticker = pacing::tick(&gate, schedule, deadline, &timer, pacing, &mut lag);
                tokio::pin!(ticker, connections);
                let mut ticking = true;
                loop {
                    tokio::select! {
                        () = &mut ticker, if ticking => ticking = false,
                        total = &mut connections => break total,
                    }
                }
            }
        };
        Ok::<_, String>((total, start.elapsed(), lag))
    })?;
    let after = procstat::sample(args.server_pid, &args.watch_cores);
    let mode = if args.rate.is_some() { "open" } else { "closed" };
    let mut report = Report::new(&args.label, mode, args.connections, args.rate, elapsed, &tally);
    report.usage = procstat::Usage::between(&before, &after, &args.watch_cores, elapsed);
    if args.rate.is_some() {
        report.set_pacer_lag(&lag);
    }
    Ok(report)
}

fn print_latencies(found: &changes::Latencies, json_only: bool) {
    let text = (!json_only).then(|| found.text());
    print_lines(text, serde_json::to_string(found).expect("latencies serialize"));
}

fn print_report(report: &Report, json_only: bool) {
    print_lines((!json_only).then(|| report.text()), report.json());
}

/// The text (unless only JSON was asked for) and the JSON line; a closed
/// pipe (`| head`) ends the output quietly.
fn print_lines(text: Option<String>, json: String) {
    let mut out = std::io::stdout().lock();
    if let Some(text) = text {
        if writeln!(out, "{text}").is_err() {
            return;
        }
    }
    let _ = writeln!(out, "{json}");
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn soak(args: &RunArgs, pid: u32, max_growth_percent: f64) -> Result<(), String> {
    if args.rate.is_none() {
        return Err("soak needs --rate (an open-loop rate, e.g. half the saturation rate)".into());
    }
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = {
        let samples = samples.clone();
        let end = Instant::now() + args.duration;
        std::thread::spawn(move || {
            while Instant::now() < end {
                if let Some(kib) = rss_kib(pid) {
                    samples.lock().expect("samples").push(kib);
                }
                std::thread::sleep(Duration::from_secs(10).min(end.saturating_duration_since(Instant::now())));
            }
        })
    };
    let args = &RunArgs {
        server_pid: args.server_pid.or(Some(pid)),
        ..args.clone()
    };
    let report = run(args)?;
    let _ = sampler.join();
    print_report(&report, args.json);
    let samples = samples.lock().expect("samples").clone();
    // The first samples include warm-up (buffers, first table generations).
    let baseline = samples
        .get(samples.len().min(2).saturating_sub(1))
        .copied()
        .unwrap_or(0);
    let last = samples.last().copied().unwrap_or(0);
    let max = samples.iter().copied().max().unwrap_or(0);
    let growth = if baseline > 0 {
        (last as f64 - baseline as f64) * 100.0 / baseline as f64
    } else {
        0.0
    };
    println!("soak: RSS samples (KiB) {samples:?}; baseline {baseline}, last {last}, max {max}, growth {growth:.1}%");
    if report.error_count() > 0 {
        return Err(format!("{} requests failed during the soak", report.error_count()));
    }
    if growth > max_growth_percent {
        return Err(format!("RSS grew {growth:.1}% (limit {max_growth_percent}%)"));
    }
    Ok(())
}
