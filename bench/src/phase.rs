//! How long a phase runs, and what it did.

use std::time::{Duration, Instant};

/// When a concurrent phase stops sending: once it has made `min_calls` calls and run for
/// `min_duration`, or at `cap`, whichever comes first. The minimum duration gives fast servers
/// enough CPU ticks to measure (`/proc` counts CPU time in 10 ms ticks).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub min_calls: u64,
    pub min_duration: Duration,
    pub cap: Duration,
}

impl Budget {
    /// Only a number of calls, bounded by `cap`.
    pub fn calls(calls: u64, cap: Duration) -> Budget {
        Budget {
            min_calls: calls,
            min_duration: Duration::ZERO,
            cap,
        }
    }

    /// Whether another call may be sent, `sent` calls and `started.elapsed()` into the phase.
    pub fn more(&self, sent: u64, started: Instant) -> bool {
        if sent >= self.min_calls && self.min_duration.is_zero() {
            return false;
        }
        let elapsed = started.elapsed();
        elapsed < self.cap && (sent < self.min_calls || elapsed < self.min_duration)
    }

    /// What a phase that made `calls` calls in `elapsed` did.
    pub fn completed(&self, calls: u64, elapsed: Duration) -> Completed {
        Completed {
            calls,
            elapsed,
            capped: calls < self.min_calls,
        }
    }
}

/// What a phase did.
#[derive(Debug, Clone, Copy)]
pub struct Completed {
    pub calls: u64,
    pub elapsed: Duration,
    /// Whether the time cap stopped the phase before its minimum number of calls.
    pub capped: bool,
}

/// A duration in whole microseconds, at least 1 (the histogram's lowest value).
pub fn duration_us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_budget_stops_at_the_count() {
        let budget = Budget::calls(3, Duration::from_secs(60));
        let started = Instant::now();
        assert!(budget.more(2, started));
        assert!(!budget.more(3, started));
        assert!(!budget.completed(3, Duration::ZERO).capped);
        assert!(budget.completed(2, Duration::ZERO).capped);
    }

    #[test]
    fn a_minimum_duration_keeps_a_phase_going_past_its_count() {
        let budget = Budget {
            min_calls: 1,
            min_duration: Duration::from_secs(60),
            cap: Duration::from_secs(120),
        };
        assert!(budget.more(1_000_000, Instant::now()));
    }

    #[test]
    fn the_cap_ends_every_phase() {
        let budget = Budget {
            min_calls: u64::MAX,
            min_duration: Duration::from_secs(60),
            cap: Duration::ZERO,
        };
        assert!(!budget.more(0, Instant::now()));
    }
}
