//! CPU use during a run, from `/proc`: the server process's CPU time and
//! involuntary context switches, the generator's own CPU time, and how busy
//! given cores were. They tell whether a run measured the server (its core
//! near 100%) or the generator (its core at 100%, the server's not), and
//! whether something else on the machine took the server's core away.

use serde::Serialize;
use std::time::Duration;

/// Counters read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The server's user + system CPU time, in clock ticks.
    server_ticks: Option<u64>,
    /// The server's involuntary context switches, summed over its threads.
    server_preempted: Option<u64>,
    /// This process's CPU time, in clock ticks.
    own_ticks: Option<u64>,
    /// Per watched core: (busy, total) in clock ticks.
    cores: Vec<Option<(u64, u64)>>,
}

/// What changed between two samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// The server's CPU time as a percentage of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_percent: Option<f64>,
    /// Times the server was preempted (not counting its own waits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_preempted: Option<u64>,
    /// The generator's CPU time as a percentage of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_percent: Option<f64>,
    /// How busy each watched core was (user, system, interrupts), percent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub core_busy_percent: Vec<(usize, f64)>,
}

/// Reads counters for `server` (a pid) and the given cores.
pub fn sample(server: Option<u32>, cores: &[usize]) -> Sample {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    Sample {
        server_ticks: server.and_then(process_ticks),
        server_preempted: server.and_then(preemptions),
        own_ticks: process_ticks(std::process::id()),
        cores: cores.iter().map(|&c| core_ticks(&stat, c)).collect(),
    }
}

impl Usage {
    pub fn between(before: &Sample, after: &Sample, cores: &[usize], elapsed: Duration) -> Usage {
        let per_second = clock_ticks_per_second();
        let percent = |a: Option<u64>, b: Option<u64>| {
            let ticks = b?.checked_sub(a?)?;
            let secs = elapsed.as_secs_f64();
            (secs > 0.0).then(|| ticks as f64 * 100.0 / per_second / secs)
        };
        Usage {
            server_cpu_percent: percent(before.server_ticks, after.server_ticks),
            // Threads that ended during the run take their counts with
            // them; a smaller sum after than before means "unknown", not 0.
            server_preempted: after
                .server_preempted
                .zip(before.server_preempted)
                .and_then(|(b, a)| b.checked_sub(a)),
            client_cpu_percent: percent(before.own_ticks, after.own_ticks),
            core_busy_percent: cores
                .iter()
                .zip(before.cores.iter().zip(&after.cores))
                .filter_map(|(&core, (a, b))| {
                    let ((busy0, total0), (busy1, total1)) = ((*a)?, (*b)?);
                    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
                    Some((core, busy1.saturating_sub(busy0) as f64 * 100.0 / total as f64))
                })
                .collect(),
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of a process (all its threads), from `/proc/PID/stat`.
fn process_ticks(pid: u32) -> Option<u64> {
    parse_process_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_process_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces; fields are counted after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After `)`: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Involuntary context switches summed over the threads of a process.
fn preemptions(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut sum = 0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        sum += parse_status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    }
    Some(sum)
}

fn parse_status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(name))?.trim().parse().ok()
}

/// (busy, total) ticks of core `n` from `/proc/stat`; idle and iowait are
/// not busy, steal is (the core was not ours).
fn core_ticks(stat: &str, n: usize) -> Option<(u64, u64)> {
    let label = format!("cpu{n}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Parses `0,1` or `0-3` into core numbers.
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("`{part}` is not a core number or range like 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_parsed() {
        let stat = "1234 (qr launch) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 3 0";
        assert_eq!(parse_process_ticks(stat), Some(280));
        let status = "Name:\tqrlaunch\nvoluntary_ctxt_switches:\t50\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_status_field(status, "nonvoluntary_ctxt_switches:"), Some(7));
        let proc_stat = "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 100 0 50 800 10 0 40 0 0 0\ncpu1 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(core_ticks(proc_stat, 0), Some((190, 1000)));
        assert_eq!(core_ticks(proc_stat, 2), None);
        assert_eq!(parse_cores("0,2-3").unwrap(), [0, 2, 3]);
        assert!(parse_cores("x").is_err());
    }

    #[test]
    fn usage_is_the_difference_of_two_samples() {
        let before = Sample {
            server_ticks: Some(100),
            server_preempted: Some(5),
            own_ticks: Some(10),
            cores: vec![Some((100, 1000))],
        };
        let after = Sample {
            server_ticks: Some(100 + clock_ticks_per_second() as u64),
            server_preempted: Some(12),
            own_ticks: Some(10),
            cores: vec![Some((550, 1500))],
        };
        let usage = Usage::between(&before, &after, &[0], Duration::from_secs(2));
        assert_eq!(usage.server_cpu_percent, Some(50.0));
        assert_eq!(usage.server_preempted, Some(7));
        assert_eq!(usage.client_cpu_percent, Some(0.0));
        assert_eq!(usage.core_busy_percent, [(0, 90.0)]);
        let fewer = Sample {
            server_preempted: Some(3),
            ..after.clone()
        };
        let usage = Usage::between(&before, &fewer, &[0], Duration::from_secs(2));
        assert_eq!(
            usage.server_preempted, None,
            "a thread that ended took its count with it"
        );
        // And the live files read without a server.
        let s = sample(None, &[0]);
        assert!(s.own_ticks.is_some() && s.server_ticks.is_none());
    }
}
