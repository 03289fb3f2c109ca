//! A sleep with microsecond precision on a tokio runtime.
//!
//! tokio's own timer has a 1 ms resolution, far coarser than the 10 µs
//! between requests of an open-loop run at 100,000 requests a second. This
//! timer is a Linux `timerfd` watched by the runtime's reactor, so a wait
//! costs no CPU; the thread's timer slack is set to 1 ns so the kernel does
//! not round the expiry up by its default 50 µs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Below this, a wait spins (yielding to the other tasks) instead of arming
/// the timer. Arming and taking a timer costs more than 10 µs of CPU on a
/// VM (each arm and expiry exits to the hypervisor): with a timer per
/// request, the generator could send only about 60,000 requests a second on
/// the 2-vCPU test machine; spinning keeps up with 113,000.
pub const SPIN_BELOW: Duration = Duration::from_micros(40);

/// Asks the kernel not to delay this thread's timers (the default slack is
/// 50 µs). Best effort: without it timers are merely later.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// A one-shot timer on `CLOCK_MONOTONIC` (the clock `Instant` reads).
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// Must be called within a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: plain system call; the descriptor is owned below.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the `OwnedFd` keeps the descriptor open for the AsyncFd's
        // whole life and always returns the same one.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)?;
        Ok(PreciseTimer { fd })
    }

    /// Returns at `due` or a little after: the timer for the bulk of the
    /// wait, then spinning for the last [`SPIN_BELOW`].
    pub async fn sleep_until(&self, due: Instant) -> io::Result<()> {
        let now = Instant::now();
        if due > now + SPIN_BELOW {
            self.expire_after(due - now - SPIN_BELOW / 2).await?;
        }
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Returns at `until` or after, by the timer alone (no spinning).
    pub async fn sleep_coarse(&self, until: Instant) -> io::Result<()> {
        let now = Instant::now();
        if until > now {
            self.expire_after(until - now).await?;
        }
        Ok(())
    }

    async fn expire_after(&self, left: Duration) -> io::Result<()> {
        let left = left.max(Duration::from_nanos(1)); // zero would disarm it
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|inner| {
                let mut expirations = [0u8; 8];
                // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                let n = unsafe { libc::read(inner.get_ref().as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_due_time_and_not_before() {
        tighten_timer_slack();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let timer = PreciseTimer::new().unwrap();
            for micros in [0u64, 10, 300, 2_500] {
                let due = Instant::now() + Duration::from_micros(micros);
                timer.sleep_until(due).await.unwrap();
                assert!(Instant::now() >= due, "woke before {micros} µs");
            }
            let until = Instant::now() + Duration::from_micros(300);
            timer.sleep_coarse(until).await.unwrap();
            assert!(Instant::now() >= until, "coarse sleep woke early");
            // A due time in the past returns at once.
            timer
                .sleep_until(Instant::now() - Duration::from_millis(1))
                .await
                .unwrap();
        });
    }
}
