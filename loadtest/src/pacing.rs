//! Open-loop pacing: when each request is *due*, and releasing it then.
//!
//! Request `i` of a run at `rate` per second is due at `start + i / rate`,
//! whatever happened to earlier requests. Connection `k` of `n` sends
//! requests `k, k + n, k + 2n, …`; its latency is measured from the due
//! time, so a server that stalls is charged for every request that should
//! have been sent meanwhile (no coordinated omission).
//!
//! One ticker task releases requests as they fall due (a precise timer,
//! then a short spin) and wakes the connection each belongs to; the
//! connections themselves never spin. A connection still busy with an
//! earlier answer sends its released requests late, and that wait counts.

use crate::timer::PreciseTimer;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    pub rate: f64,
    pub connections: usize,
}

impl Schedule {
    /// When request `i` is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// The `j`-th request index of connection `k`.
    pub fn index(&self, k: usize, j: u64) -> u64 {
        j * self.connections as u64 + k as u64
    }

    /// The connection that sends request `i`.
    pub fn connection(&self, i: u64) -> usize {
        (i % self.connections as u64) as usize
    }

    /// How many requests are due by `now` (indices `0..n`), counting only
    /// those due before `deadline`; at least `released`.
    pub fn due_by(&self, released: u64, now: Instant, deadline: Instant) -> u64 {
        let end = now.min(deadline);
        if end < self.start {
            return released;
        }
        // The float estimate can be one off either way; fix it exactly.
        let mut n = (((end - self.start).as_secs_f64() * self.rate) as u64 + 1).max(released);
        while n > released && (self.due(n - 1) > now || self.due(n - 1) >= deadline) {
            n -= 1;
        }
        while self.due(n) <= now && self.due(n) < deadline {
            n += 1;
        }
        n
    }
}

/// What the ticker shares with the connections.
pub struct Gate {
    released: AtomicU64,
    wake: Vec<Notify>,
}

impl Gate {
    pub fn new(connections: usize) -> Gate {
        Gate {
            released: AtomicU64::new(0),
            wake: (0..connections).map(|_| Notify::new()).collect(),
        }
    }

    /// Waits until request `i`, sent by connection `k`, is released.
    pub async fn wait_for(&self, k: usize, i: u64) {
        while self.released.load(Ordering::Acquire) <= i {
            self.wake[k].notified().await;
        }
    }

    /// Releases requests `..n` and wakes the connections that now have one.
    fn release(&self, schedule: &Schedule, n: u64) {
        let before = self.released.swap(n, Ordering::AcqRel);
        let woken = (n - before).min(self.wake.len() as u64);
        for i in before..before + woken {
            self.wake[schedule.connection(i)].notify_one();
        }
    }
}

/// Releases every request due before `deadline` at its due time (or, with
/// a `granularity`, in batches at most that far apart; see [`Pacing`]).
///
/// Records in `lag` how late it released each request: the generator's
/// own lateness, which a stalled generator shows and a stalled server does not.
pub async fn tick(
    gate: &Gate,
    schedule: Schedule,
    deadline: Instant,
    timer: &PreciseTimer,
    pacing: Pacing,
    lag: &mut Histogram<u64>,
) {
    let mut released = 0;
    let mut woke = schedule.start;
    loop {
        let due = schedule.due(released);
        if due >= deadline {
            return;
        }
        let slept = match pacing {
            Pacing::Precise => timer.sleep_until(due).await,
            Pacing::Batched(granularity) => timer.sleep_coarse(due.max(woke + granularity)).await,
        };
        if slept.is_err() {
            // No timer: spin on the runtime instead.
            while Instant::now() < due {
                tokio::task::yield_now().await;
            }
        }
        woke = Instant::now();
        let now_released = schedule.due_by(released, woke, deadline);
        gate.release(&schedule, now_released);
        for i in released..now_released {
            crate::report::record(lag, woke.saturating_duration_since(schedule.due(i)));
        }
        released = now_released;
    }
}

/// How the ticker waits for the next due request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Each request at its due time: a timer, then spinning for the last
    /// stretch. At rates above ~25,000/s the generator spins all the time,
    /// so its core is always busy.
    Precise,
    /// Wake at most every this often (a timer, no spinning) and release
    /// everything due by then: the generator sleeps between batches, and
    /// each request may go out up to this much (plus the timer's own
    /// lateness) after it was due. That delay is counted in its latency,
    /// never hidden.
    Batched(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, connections: usize) -> Schedule {
        Schedule {
            start: Instant::now(),
            rate,
            connections,
        }
    }

    #[test]
    fn requests_are_spread_evenly_over_connections_and_time() {
        let s = schedule(1000.0, 4);
        let start = s.start;
        assert_eq!(s.due(0), start);
        assert_eq!(s.due(1000), start + Duration::from_secs(1));
        assert_eq!(s.due(1), start + Duration::from_millis(1));
        // Connection 1 sends requests 1, 5, 9, …
        assert_eq!((0..3).map(|j| s.index(1, j)).collect::<Vec<_>>(), [1, 5, 9]);
        assert_eq!(s.connection(9), 1);
        // Every index belongs to exactly one connection.
        let mut seen: Vec<u64> = (0..4).flat_map(|k| (0..25).map(move |j| s.index(k, j))).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn exactly_the_requests_due_so_far_are_released() {
        let s = schedule(1000.0, 4);
        let far = s.start + Duration::from_secs(60);
        let at = |ms: f64| s.start + Duration::from_secs_f64(ms / 1000.0);
        assert_eq!(s.due_by(0, s.start, far), 1, "request 0 is due at the start");
        assert_eq!(s.due_by(0, at(0.999), far), 1);
        assert_eq!(s.due_by(0, at(1.0), far), 2);
        assert_eq!(s.due_by(0, at(10.5), far), 11);
        // Never takes back what was released.
        assert_eq!(s.due_by(50, at(10.5), far), 50);
        // Nothing due at or after the deadline: a 10 ms run at 1000/s is 10 requests.
        assert_eq!(s.due_by(0, at(500.0), at(10.0)), 10);
        // Before the start, nothing.
        assert_eq!(s.due_by(0, s.start - Duration::from_millis(1), far), 0);
    }

    #[test]
    fn the_ticker_releases_every_request_of_a_run_once_and_never_early() {
        for pacing in [Pacing::Precise, Pacing::Batched(Duration::from_micros(200))] {
            ticker_run(pacing);
        }
    }

    fn ticker_run(pacing: Pacing) {
        crate::timer::tighten_timer_slack();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let connections = 3;
            let s = Schedule {
                start: Instant::now() + Duration::from_millis(2),
                rate: 2000.0,
                connections,
            };
            let deadline = s.start + Duration::from_millis(50);
            let gate = std::sync::Arc::new(Gate::new(connections));
            let timer = PreciseTimer::new().unwrap();
            let mut tasks = Vec::new();
            for k in 0..connections {
                let gate = gate.clone();
                tasks.push(tokio::spawn(async move {
                    let mut sent = Vec::new();
                    for j in 0.. {
                        let i = s.index(k, j);
                        if s.due(i) >= deadline {
                            break;
                        }
                        gate.wait_for(k, i).await;
                        // Released no earlier than due.
                        assert!(Instant::now() >= s.due(i), "request {i} released early");
                        sent.push(i);
                    }
                    sent
                }));
            }
            let mut lag = crate::report::histogram();
            tick(&gate, s, deadline, &timer, pacing, &mut lag).await;
            assert_eq!(lag.len(), 100, "one lateness per request");
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.unwrap());
            }
            all.sort_unstable();
            // 50 ms at 2000/s: requests 0..100, each exactly once.
            assert_eq!(all, (0..100).collect::<Vec<_>>());
        });
    }
}
