//! Which failures are retried, how long to wait, and how many retries the budget allows.

use std::time::Duration;

use serde_json::Value;
use switchboard_config::RetrySettings;
use tokio::time::Instant;

use crate::error::ClientError;

/// JSON-RPC code of transient server trouble; retried only when `data.retryable` is true.
pub const TRANSIENT_ERROR_CODE: i64 = -32000;

/// Whether a call may be sent twice without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Sending it again does no harm (`readOnlyHint`, `idempotentHint`, or the config says so).
    Idempotent,
    /// It may change something: once it may have reached the server, it is not sent again.
    NotIdempotent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again, after the server's `retry_after_ms` when it gave one.
    Retry { server_delay: Option<Duration> },
    /// The failure is final.
    Stop,
}

/// Whether `error`, from an attempt whose request may have reached the server, is worth
/// another attempt.
///
/// - `-32000` with `data.retryable: true`: the server says so, whatever the tool does.
/// - Timeouts and lost connections: the server may have run the call, so only when it is
///   idempotent.
/// - Everything else (invalid params, unknown method, missing scope, other errors, protocol
///   and configuration problems, an open breaker) is final.
pub(crate) fn verdict(error: &ClientError, idempotency: Idempotency) -> Verdict {
    match error {
        ClientError::Rpc { code, data, .. } if *code == TRANSIENT_ERROR_CODE => {
            let data = data.as_deref();
            let retryable = data
                .and_then(|d| d.get("retryable"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if retryable {
                Verdict::Retry {
                    server_delay: data
                        .and_then(|d| d.get("retry_after_ms"))
                        .and_then(Value::as_u64)
                        .map(Duration::from_millis),
                }
            } else {
                Verdict::Stop
            }
        }
        ClientError::RequestTimeout { .. } | ClientError::ConnectionLost { .. }
            if idempotency == Idempotency::Idempotent =>
        {
            Verdict::Retry { server_delay: None }
        }
        _ => Verdict::Stop,
    }
}

/// Whether a connection failure (the request was never sent) is worth another attempt.
pub(crate) fn connect_verdict(error: &ClientError) -> Verdict {
    match error {
        ClientError::Spawn { .. }
        | ClientError::ConnectTimeout { .. }
        | ClientError::Handshake { .. }
        | ClientError::ConnectionLost { .. } => Verdict::Retry { server_delay: None },
        _ => Verdict::Stop,
    }
}

/// How backoff pauses are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Uniformly between zero and the cap ("full jitter"), so retrying clients spread out.
    #[default]
    Full,
    /// Always the cap: deterministic, for tests and for callers that need exact pauses.
    None,
}

/// The cap of retry number `retry` (from 1): `initial * 2^(retry-1)`, at most `max`.
pub fn backoff_cap(initial: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    initial.saturating_mul(factor).min(max)
}

/// The pause before retry number `retry`.
pub(crate) fn backoff(settings: &RetrySettings, retry: u32, jitter: Jitter) -> Duration {
    let cap = backoff_cap(settings.initial_backoff, settings.max_backoff, retry);
    match jitter {
        Jitter::None => cap,
        Jitter::Full => {
            let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(fastrand::u64(0..=millis))
        }
    }
}

/// Retries may add at most `budget_percent` of the calls made, plus a small reserve that
/// refills at `min_retries_per_second`, so a failing server is not hammered by every caller
/// retrying at once.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    per_call: f64,
    reserve_per_second: f64,
    cap: f64,
    state: std::sync::Mutex<(f64, Instant)>,
}

impl RetryBudget {
    pub(crate) fn new(settings: &RetrySettings) -> Self {
        let reserve_per_second = f64::from(settings.min_retries_per_second);
        // A long quiet spell must not bank unbounded retries.
        let cap = reserve_per_second.max(1.0) + 10.0;
        RetryBudget {
            per_call: f64::from(settings.budget_percent) / 100.0,
            reserve_per_second,
            cap,
            state: std::sync::Mutex::new((reserve_per_second.min(cap), Instant::now())),
        }
    }

    /// A first attempt earns retries.
    pub(crate) fn deposit(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = (state.0 + self.per_call).min(self.cap);
    }

    /// Spend one retry, if the budget has one.
    pub(crate) fn withdraw(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * self.reserve_per_second;
        state.0 = (state.0 + refill).min(self.cap);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_config::ServerName;

    fn rpc(code: i64, data: Option<Value>) -> ClientError {
        ClientError::Rpc {
            server: ServerName::new("s").expect("valid"),
            method: "tools/call",
            code,
            message: "m".to_owned(),
            data: data.map(Box::new),
        }
    }

    #[test]
    fn only_retryable_transient_errors_and_idempotent_timeouts_are_retried() {
        use Idempotency::*;
        let retryable = rpc(
            -32000,
            Some(json!({"retryable": true, "retry_after_ms": 250})),
        );
        assert_eq!(
            verdict(&retryable, NotIdempotent),
            Verdict::Retry {
                server_delay: Some(Duration::from_millis(250))
            }
        );
        assert_eq!(verdict(&rpc(-32000, None), Idempotent), Verdict::Stop);
        for code in [-32602, -32601, -32001, -32603] {
            let error = rpc(code, Some(json!({"retryable": true})));
            assert_eq!(verdict(&error, Idempotent), Verdict::Stop, "{code}");
        }
        let timeout = ClientError::RequestTimeout {
            server: ServerName::new("s").expect("valid"),
            method: "tools/call",
            after: Duration::from_secs(1),
        };
        assert_eq!(
            verdict(&timeout, Idempotent),
            Verdict::Retry { server_delay: None }
        );
        assert_eq!(verdict(&timeout, NotIdempotent), Verdict::Stop);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_full_jitter_stays_below_it() {
        let settings = RetrySettings::default();
        let caps: Vec<u128> = (1..=9)
            .map(|n| backoff(&settings, n, Jitter::None).as_millis())
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        let drawn: Vec<Duration> = (0..200)
            .map(|_| backoff(&settings, 3, Jitter::Full))
            .collect();
        assert!(drawn.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(drawn.iter().any(|d| *d != drawn[0]), "jitter varies");
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_allows_a_share_of_calls_plus_a_refilling_reserve() {
        let mut settings = RetrySettings::default();
        settings.budget_percent = 50;
        settings.min_retries_per_second = 1;
        let budget = RetryBudget::new(&settings);
        assert!(budget.withdraw(), "the reserve starts full");
        assert!(!budget.withdraw());
        budget.deposit();
        budget.deposit();
        assert!(budget.withdraw(), "two calls at 50% earn one retry");
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(budget.withdraw(), "the reserve refills");
    }
}
