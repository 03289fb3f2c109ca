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

    #[tokio::test]
    async fn a_job_that_panics_is_reported_not_propagated() {
        let done = super::run("qrlaunch-test", || 7).await;
        assert_eq!(done, Some(7));
        let panicked = super::run("qrlaunch-test", || -> u8 { panic!("a bug in a build") }).await;
        assert_eq!(panicked, None);
    }
}
