//! Heavy work that must not slow scans down: full table rebuilds and
//! imports run on a thread of their own at the lowest CPU priority.
//!
//! On a node pinned to one core, a rebuild of a million codes at normal
//! priority takes half the core from the scan thread for a second or two,
//! and scan latency explodes. At nice 19 the scheduler gives the work only
//! what scans leave idle (about 1.5% of a fully busy core, all of an idle
//! one), so the rebuild takes longer and scans do not notice.

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

/// Sets the calling thread's nice value to 19 (Linux nice values are per
/// thread). Failure only costs latency, so it is ignored.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory-safety preconditions; with
    // PRIO_PROCESS and who = 0 it changes the calling thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}
