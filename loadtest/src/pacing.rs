//! Open-loop pacing: when each request is *due*.
//!
//! Request `i` of a run at `rate` per second is due at `start + i / rate`,
//! whatever happened to earlier requests. Connection `k` of `n` sends
//! requests `k, k + n, k + 2n, …`; its latency is measured from the due
//! time, so a server that stalls is charged for every request that should
//! have been sent meanwhile (no coordinated omission).

use std::time::{Duration, Instant};

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spread_evenly_over_connections_and_time() {
        let start = Instant::now();
        let s = Schedule {
            start,
            rate: 1000.0,
            connections: 4,
        };
        assert_eq!(s.due(0), start);
        assert_eq!(s.due(1000), start + Duration::from_secs(1));
        assert_eq!(s.due(1), start + Duration::from_millis(1));
        // Connection 1 sends requests 1, 5, 9, …
        assert_eq!((0..3).map(|j| s.index(1, j)).collect::<Vec<_>>(), [1, 5, 9]);
        // Every index belongs to exactly one connection.
        let mut seen: Vec<u64> = (0..4).flat_map(|k| (0..25).map(move |j| s.index(k, j))).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }
}
