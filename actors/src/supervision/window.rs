//! Restart intensity windows and restart backoff: the pure arithmetic behind the supervisor.
//!
//! Instants come from tokio's monotonic clock (`tokio::time::Instant`), so tests can drive the
//! windows with `tokio::time::pause` / `advance`. Nothing here spawns or sleeps.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// "At most `max_restarts` restarts within `window_ms`": the Erlang-style restart intensity.
///
/// Restart number `max_restarts + 1` inside one window exceeds the intensity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intensity {
    /// Restarts tolerated inside one window.
    pub max_restarts: u32,
    /// Length of the sliding window in milliseconds.
    pub window_ms: u64,
}

impl Intensity {
    /// `max_restarts` restarts in `window`.
    pub fn new(max_restarts: u32, window: Duration) -> Self {
        Self {
            max_restarts,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The window as a [`Duration`].
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

impl Default for Intensity {
    /// 5 restarts in 10 s (SPEC §13.1, project level).
    fn default() -> Self {
        Self::new(5, Duration::from_secs(10))
    }
}

/// A sliding window of restart instants checked against an [`Intensity`].
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: Intensity,
    // INVARIANT: sorted ascending (instants are recorded from a monotonic clock) and, after
    // `record`, only holds instants within `intensity.window()` of the newest one.
    instants: VecDeque<Instant>,
}

impl RestartWindow {
    /// An empty window.
    pub fn new(intensity: Intensity) -> Self {
        Self {
            intensity,
            instants: VecDeque::new(),
        }
    }

    /// The intensity this window enforces.
    pub fn intensity(&self) -> Intensity {
        self.intensity
    }

    /// Records one restart at `now`, drops instants older than the window and returns the
    /// number of restarts now inside the window (this one included).
    pub fn record(&mut self, now: Instant) -> u32 {
        self.prune(now);
        self.instants.push_back(now);
        self.count()
    }

    /// Drops instants that fell out of the window at `now`.
    pub fn prune(&mut self, now: Instant) {
        let window = self.intensity.window();
        while let Some(first) = self.instants.front() {
            if now.saturating_duration_since(*first) >= window {
                self.instants.pop_front();
            } else {
                break;
            }
        }
    }

    /// Restarts currently inside the window (as of the last `record`/`prune`).
    pub fn count(&self) -> u32 {
        u32::try_from(self.instants.len()).unwrap_or(u32::MAX)
    }

    /// Whether the restarts inside the window exceed the intensity.
    pub fn exceeded(&self) -> bool {
        self.count() > self.intensity.max_restarts
    }
}

/// Delay before restart number `n` inside a window: 0, base, 2·base, 4·base … capped at `max`.
///
/// SPEC §13.1: 0, 100, 200, 400 … ms, capped at 2 s (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Delay of the second restart in a window, in milliseconds.
    pub base_ms: u64,
    /// Upper bound of any delay, in milliseconds.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 100,
            max_ms: 2000,
        }
    }
}

impl Backoff {
    /// No delay at all (useful in tests that do not pause time).
    pub fn none() -> Self {
        Self {
            base_ms: 0,
            max_ms: 0,
        }
    }

    /// Delay before the `nth` restart inside the current window (1-based).
    pub fn delay(&self, nth: u32) -> Duration {
        if nth <= 1 {
            return Duration::ZERO;
        }
        let shift = (nth - 2).min(32);
        let ms = self.base_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::default();
        let got: Vec<u64> = (1..=8)
            .map(|n| u64::try_from(b.delay(n).as_millis()).unwrap())
            .collect();
        assert_eq!(got, vec![0, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn window_counts_only_recent_restarts() {
        let mut w = RestartWindow::new(Intensity::new(2, Duration::from_secs(10)));
        assert_eq!(w.record(Instant::now()), 1);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(w.record(Instant::now()), 2);
        assert!(!w.exceeded());
        assert_eq!(w.record(Instant::now()), 3);
        assert!(w.exceeded());
        // the first instant ages out after 10 s
        tokio::time::advance(Duration::from_secs(6)).await;
        w.prune(Instant::now());
        assert_eq!(w.count(), 2);
        assert!(!w.exceeded());
    }
}
