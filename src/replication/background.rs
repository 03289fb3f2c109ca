//! Heavy work that must not slow scans down: table builds, snapshots,
//! compactions, imports and count flushes run on threads of their own in
//! Linux's idle scheduling class (`SCHED_IDLE`), and old tables are freed by
//! one such worker.
//!
//! On a node pinned to one core, a rebuild of a million codes at normal
//! priority takes half the core from the scan thread for a second or two,
//! and scan latency explodes. Nice 19 was not enough: measured on this
//! project's VMs (kernel 6.18, EEVDF), a nice-19 snapshot parser still ran
//! 17-19 ms at a stretch while the scan thread waited up to 22 ms to run
//! (ARCHITECTURE.md, "Background work and the scan path"). A `SCHED_IDLE`
//! thread runs only when nothing else of any priority wants the core, and
//! a scan thread that wakes preempts it at once; the work takes longer
//! under load and scans do not notice. Where `SCHED_IDLE` is refused, the
//! thread falls back to nice 19.
//!
//! The other threads' places are set here too: the scan threads ask for a
//! short time slice ([`short_slice`]) and the control runtime runs ten nice
//! levels below them ([`set_nice`]), so that a scan thread that wakes does
//! not wait for the admin API or the follower either.

use tokio::sync::oneshot;

/// Starts `work` on a new low-priority thread at once and returns a future
/// of its result that does not block the runtime; `None` if the thread
/// could not start or the work panicked.
pub fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = Option<T>> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.to_string()).spawn(move || {
        lower_priority();
        let _ = tx.send(work());
    });
    async move {
        spawned.ok()?;
        rx.await.ok()
    }
}

/// Frees `old` on a low-priority thread once no scan holds it any more.
///
/// Dropping a million-code table returns tens of megabytes to the kernel,
/// which takes milliseconds; done where the snapshot was swapped out (on a
/// runtime thread) or by the last scan still reading it, that would be a
/// scan's latency. Handing the reference to one long-lived worker makes it
/// the last owner, so the free always happens there.
pub fn retire<T: Send + Sync + 'static>(old: std::sync::Arc<T>) {
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        // Scans hold a snapshot for microseconds; give them a moment.
        for _ in 0..1000 {
            if std::sync::Arc::strong_count(&old) == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(old);
    });
    if let Err(std::sync::mpsc::SendError(job)) = retirer().send(job) {
        // The worker could not start: free here rather than leak.
        job();
    }
}

/// Waits (up to `limit`) until every snapshot retired so far has been freed.
pub async fn retired(limit: std::time::Duration) {
    let (tx, rx) = oneshot::channel::<()>();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = tx.send(());
    });
    if retirer().send(job).is_ok() {
        let _ = tokio::time::timeout(limit, rx).await;
    }
}

/// The one retire worker, started on first use.
fn retirer() -> &'static std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>> {
    static RETIRER: std::sync::OnceLock<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>> = std::sync::OnceLock::new();
    RETIRER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let _ = std::thread::Builder::new()
            .name("qrlaunch-retire".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    job();
                }
            });
        tx
    })
}

/// Returns the allocator's free memory to the kernel: jemalloc (the
/// binary's default allocator) gives back its dirty pages only gradually,
/// and only when it is called, so an idle node would keep them; glibc
/// keeps freed blocks in its arenas.
pub fn release_free_memory() {
    #[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
    // SAFETY: `arena.4096.purge` (4096 is MALLCTL_ARENAS_ALL) reads and
    // writes nothing: both pointers null, length 0, as jemalloc's manual
    // asks; the name is NUL-terminated.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks the
    // allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Puts the calling thread in the idle scheduling class (`SCHED_IDLE`;
/// Linux scheduling policies are per thread), or at nice 19 if that is
/// refused. Failure only costs latency, so it is not an error.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler and setpriority have no memory-safety
    // preconditions; pid 0 / who 0 mean the calling thread only, and the
    // parameter is a valid, initialised struct.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
    }
}

/// The time slice a scan thread asks for: the shortest the kernel takes.
pub const SCAN_SLICE_NS: u64 = 100_000;

/// Lets the calling thread, when it wakes, take its core from whatever
/// other normal-priority thread runs there, by asking the kernel for a
/// short time slice ([`SCAN_SLICE_NS`], `sched_attr.sched_runtime`: the
/// EEVDF scheduler's custom slice, Linux 6.12 and later). For the scan
/// threads, which run for microseconds and then wait.
///
/// EEVDF lets the running task finish its slice (0.7 ms times a factor of
/// the number of CPUs: 1.4 ms on two cores) unless the task that wakes is
/// eligible and has the shorter slice. Eligibility is the weight's part:
/// see [`set_nice`], which puts the control runtime ten nice levels lower.
/// Measured together (`SCHED_RECORD=1 loadtest/writes.sh`; ARCHITECTURE.md,
/// "Background work and the scan path"), the scan thread's scheduling
/// delay p99 went from 0.19 ms to 0.05 ms; the slice alone changed nothing
/// (0.19 ms), and in a record made by hand the lower weight alone about
/// halved it. The scan thread's share of the core is the
/// weight's, which this leaves as it is. Kernels before 6.12 take the call
/// and ignore the slice. Threads not in the normal policy (`chrt`) are left
/// alone, and failure only costs latency: not an error.
pub fn short_slice() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_getscheduler, getpriority and sched_setattr have no
    // memory-safety preconditions beyond a valid attribute struct, which is
    // initialised in full, with its size; pid 0 is the calling thread.
    unsafe {
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            return;
        }
        // The nice value goes into the same call: keep the thread's own.
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if nice == -1 && *libc::__errno_location() != 0 {
            return;
        }
        let attr = libc::sched_attr {
            size: std::mem::size_of::<libc::sched_attr>() as u32,
            sched_policy: libc::SCHED_OTHER as u32,
            sched_flags: 0,
            sched_nice: nice,
            sched_priority: 0,
            sched_runtime: SCAN_SLICE_NS,
            sched_deadline: 0,
            sched_period: 0,
        };
        libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0);
    }
}

/// How many nice levels the control runtime (the main thread and its
/// blocking pool: the admin API, the follower, SQLite's small reads and
/// writes) sits below the scan threads.
pub const CONTROL_NICE_STEP: i32 = 10;

/// The nice value for the control runtime's threads: the process's own
/// (the calling thread's, before any change) plus [`CONTROL_NICE_STEP`], at
/// most 19. Computed once, before the first [`set_nice`], so that a thread
/// that inherited it is not lowered twice.
pub fn control_nice() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority has no preconditions; who 0 is the calling thread.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    #[cfg(not(target_os = "linux"))]
    let nice = 0;
    (nice + CONTROL_NICE_STEP).min(19)
}

/// Sets the calling thread's nice value (Linux: per thread), for the
/// control runtime's threads, so that a scan thread that wakes while one
/// of them runs gets the core.
///
/// Measured on a `--threads 1` node taking 1,000 admin writes a second
/// beside 20,000 scans a second (`SCHED_RECORD=1 loadtest/writes.sh`;
/// ARCHITECTURE.md, "Background work and the scan path"): at equal weight,
/// EEVDF let the control thread's longer stretches (0.6-1.9 ms) run to
/// their end while the woken scan thread waited, which a short slice alone
/// did not change: the scan thread, having used more of the core, was not
/// yet eligible. Ten nice levels below it (a tenth of its weight), the
/// control thread keeps a tenth of a core the scans want, and with the
/// short slice the scan thread's scheduling delay went from p99 0.19 ms to
/// 0.05 ms. Raising a nice value needs no privilege, lowering it does: a
/// thread started from one already lowered keeps the lower priority.
/// Failure only costs latency.
pub fn set_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory-safety preconditions; who 0 is the
    // calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The calling thread's time slice in nanoseconds, as the kernel shows it
/// (`se.slice` in `/proc/thread-self/sched`), for tests.
#[cfg(all(test, target_os = "linux"))]
fn slice_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/sched")
        .ok()?
        .lines()
        .find(|l| l.starts_with("se.slice"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

/// The scheduling policy of the calling thread (`SCHED_IDLE` is 5), for
/// tests.
#[cfg(all(test, target_os = "linux"))]
fn policy() -> i32 {
    // SAFETY: no preconditions; 0 is the calling thread.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn background_work_runs_in_the_idle_class() {
        let policy = super::run("qrlaunch-test", super::policy).await;
        assert_eq!(policy, Some(libc::SCHED_IDLE));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_scan_thread_gets_a_short_slice_and_keeps_its_nice_value() {
        let (slice, nice, wanted) = std::thread::spawn(|| {
            // A thread may raise its own nice value; keep within 19 when the
            // tests themselves run niced.
            // SAFETY: getpriority/setpriority on the calling thread only.
            let wanted = (unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) } + 3).min(19);
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, wanted) };
            super::short_slice();
            (
                super::slice_ns(),
                unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) },
                wanted,
            )
        })
        .join()
        .expect("the thread ran");
        assert_eq!(nice, wanted, "the nice value is the thread's own");
        // Kernels before 6.12 show no custom slice (and before 6.6 none at
        // all); the call must still succeed and keep the nice value.
        if let Some(slice) = slice {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let version: Vec<u32> = release
                .split(['.', '-'])
                .take(2)
                .filter_map(|p| p.parse().ok())
                .collect();
            if version.as_slice() >= [6, 12].as_slice() {
                assert_eq!(slice, super::SCAN_SLICE_NS, "kernel {release}");
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_control_runtime_sits_ten_nice_levels_lower_at_most_19() {
        // Each case on a thread of its own, started from this one: a nice
        // value can be raised without privilege, not lowered again.
        // SAFETY: getpriority/setpriority on the calling thread only.
        let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let got = |start: i32| {
            std::thread::spawn(move || {
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, start) };
                let nice = super::control_nice();
                super::set_nice(nice);
                (nice, unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })
            })
            .join()
            .expect("the thread ran")
        };
        for start in [base, base + 4, 15.max(base)] {
            if start > 19 {
                continue;
            }
            let wanted = (start + super::CONTROL_NICE_STEP).min(19);
            assert_eq!(got(start), (wanted, wanted), "from nice {start}");
        }
    }

    #[tokio::test]
    async fn a_job_that_panics_is_reported_not_propagated() {
        let done = super::run("qrlaunch-test", || 7).await;
        assert_eq!(done, Some(7));
        let panicked = super::run("qrlaunch-test", || -> u8 { panic!("a bug in a build") }).await;
        assert_eq!(panicked, None);
    }
}
