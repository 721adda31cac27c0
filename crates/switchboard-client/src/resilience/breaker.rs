//! A circuit breaker per server: closed, open, half-open.

use std::time::Duration;

use switchboard_config::BreakerSettings;
use tokio::time::Instant;

/// What a caller can see of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until `retry_in` has passed.
    Open { retry_in: Duration },
    /// A few probe calls go through; their outcome closes or reopens the breaker.
    HalfOpen,
    /// The breaker is turned off (`failureThreshold: 0`).
    Disabled,
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BreakerState::Closed => f.write_str("closed"),
            BreakerState::Open { retry_in } => write!(f, "open (retry in {retry_in:.1?})"),
            BreakerState::HalfOpen => f.write_str("half-open"),
            BreakerState::Disabled => f.write_str("off"),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    settings: BreakerSettings,
    inner: std::sync::Mutex<Inner>,
}

/// Leave to make one call; report its outcome with [`Permit::record`]. A permit dropped
/// without an outcome (the call was abandoned) frees its probe slot.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// `healthy`: the server answered (a result, or an error that is not about its health).
    pub(crate) fn record(mut self, healthy: bool) {
        self.recorded = true;
        self.breaker.record(self.probe, healthy);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            let mut inner = self.breaker.lock();
            if let Inner::HalfOpen { in_flight, .. } = &mut *inner {
                *in_flight = in_flight.saturating_sub(1);
            }
        }
    }
}

impl CircuitBreaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        CircuitBreaker {
            settings,
            inner: std::sync::Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enabled(&self) -> bool {
        self.settings.failure_threshold > 0
    }

    /// A permit, or how long until the breaker lets calls through again.
    pub(crate) fn admit(&self) -> Result<Permit<'_>, Duration> {
        let permit = |probe| Permit {
            breaker: self,
            probe,
            recorded: false,
        };
        if !self.enabled() {
            return Ok(permit(false));
        }
        let now = Instant::now();
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed { .. } => Ok(permit(false)),
            Inner::Open { until } if now < *until => Err(*until - now),
            Inner::Open { .. } => {
                tracing::info!("circuit breaker half-open: letting a probe call through");
                *inner = Inner::HalfOpen {
                    in_flight: 1,
                    successes: 0,
                };
                Ok(permit(true))
            }
            Inner::HalfOpen { in_flight, .. } if *in_flight < self.settings.half_open_probes => {
                *in_flight += 1;
                Ok(permit(true))
            }
            // Every probe slot is taken: wait for their verdict.
            Inner::HalfOpen { .. } => Err(Duration::ZERO),
        }
    }

    fn record(&self, probe: bool, healthy: bool) {
        let mut inner = self.lock();
        let open = || Inner::Open {
            until: Instant::now() + self.settings.open_duration,
        };
        match &mut *inner {
            Inner::Closed { failures } => {
                if healthy {
                    *failures = 0;
                } else {
                    *failures += 1;
                    if *failures >= self.settings.failure_threshold {
                        tracing::warn!(
                            failures = *failures,
                            open_for = ?self.settings.open_duration,
                            "circuit breaker opened"
                        );
                        *inner = open();
                    }
                }
            }
            Inner::HalfOpen {
                in_flight,
                successes,
            } if probe => {
                *in_flight = in_flight.saturating_sub(1);
                if !healthy {
                    tracing::warn!("a probe call failed: circuit breaker open again");
                    *inner = open();
                } else {
                    *successes += 1;
                    if *successes >= self.settings.half_open_probes {
                        tracing::info!("circuit breaker closed");
                        *inner = Inner::Closed { failures: 0 };
                    }
                }
            }
            // Calls admitted before the breaker opened finish late: their outcome is old news.
            Inner::HalfOpen { .. } | Inner::Open { .. } => {}
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        if !self.enabled() {
            return BreakerState::Disabled;
        }
        match &*self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } => {
                let now = Instant::now();
                if now < *until {
                    BreakerState::Open {
                        retry_in: *until - now,
                    }
                } else {
                    BreakerState::HalfOpen
                }
            }
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        let mut settings = BreakerSettings::default();
        settings.failure_threshold = 2;
        settings.open_duration = Duration::from_secs(10);
        settings.half_open_probes = 1;
        CircuitBreaker::new(settings)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_probes_after_the_open_duration_and_closes_on_success() {
        let breaker = breaker();
        breaker.admit().expect("closed").record(false);
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.admit().expect("closed").record(false);
        assert_eq!(
            breaker.admit().expect_err("open"),
            Duration::from_secs(10),
            "open: fails fast and says when it will retry"
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(breaker.admit().expect_err("open"), Duration::from_secs(6));
        tokio::time::advance(Duration::from_secs(6)).await;
        let probe = breaker.admit().expect("half-open lets one probe through");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.admit().is_err(), "only one probe at a time");
        probe.record(true);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_an_abandoned_probe_frees_its_slot() {
        let breaker = breaker();
        breaker.admit().expect("closed").record(false);
        breaker.admit().expect("closed").record(false);
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(breaker.admit().expect("probe"));
        let probe = breaker
            .admit()
            .expect("the abandoned probe's slot is free again");
        probe.record(false);
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                retry_in: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn a_success_resets_the_count_of_consecutive_failures() {
        let breaker = breaker();
        breaker.admit().expect("closed").record(false);
        breaker.admit().expect("closed").record(true);
        breaker.admit().expect("closed").record(false);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
