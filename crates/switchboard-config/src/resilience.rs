//! Per-server and per-tool resilience settings: the `"switchboard"` object of a server entry.
//!
//! Other hosts (Claude Desktop, Cursor, VS Code) ignore keys they do not know on a server entry,
//! so every Switchboard-only knob lives under one namespaced key and the file stays portable:
//!
//! ```json
//! "search": {
//!   "url": "https://a.example.com/mcp",
//!   "switchboard": {
//!     "requestTimeoutMs": 20000,
//!     "retry": { "maxAttempts": 4 },
//!     "circuitBreaker": { "failureThreshold": 3, "openMs": 10000 },
//!     "rateLimit": { "requestsPerSecond": 5, "burst": 10 },
//!     "replicas": ["https://b.example.com/mcp"],
//!     "tools": { "lookup": { "timeoutMs": 2000, "idempotent": true, "cacheTtlMs": 60000 } }
//!   }
//! }
//! ```
//!
//! Inside the namespace an unknown key is an error (it is ours, so a typo must not be ignored).

use std::num::NonZeroU32;
use std::time::Duration;

use indexmap::IndexMap;
use url::Url;

/// The key on a server entry that holds [`Resilience`].
pub const RESILIENCE_KEY: &str = "switchboard";

/// Everything Switchboard does to survive a misbehaving server, for one server entry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Resilience {
    /// `connectTimeoutMs`: time allowed for spawning and the handshake; the command line's
    /// `--connect-timeout` when absent.
    pub connect_timeout: Option<Duration>,
    /// `requestTimeoutMs`: time allowed for one request; the command line's `--timeout` when
    /// absent.
    pub request_timeout: Option<Duration>,
    /// `retry`.
    pub retry: RetrySettings,
    /// `circuitBreaker`.
    pub circuit_breaker: BreakerSettings,
    /// `rateLimit`; no client-side limit when absent.
    pub rate_limit: Option<RateLimitSettings>,
    /// `reconnect`.
    pub reconnect: ReconnectSettings,
    /// `healthCheck`.
    pub health_check: HealthSettings,
    /// `replicas`: more URLs serving the same server (remote servers only).
    pub replicas: Vec<Url>,
    /// `tools`: settings of single tools, by the tool's name on the server.
    pub tools: IndexMap<String, ToolSettings>,
}

impl Resilience {
    /// The settings of `tool`, or the defaults.
    pub fn tool(&self, tool: &str) -> ToolSettings {
        self.tools.get(tool).cloned().unwrap_or_default()
    }
}

/// `retry`: exponential backoff with full jitter, limited by a retry budget.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySettings {
    /// `maxAttempts`: attempts in total, the first included (1 turns retries off). Default 3.
    pub max_attempts: u32,
    /// `initialBackoffMs`: the backoff cap of the first retry; doubles each retry. Default 100.
    pub initial_backoff: Duration,
    /// `maxBackoffMs`: the largest backoff cap. Default 10 000.
    pub max_backoff: Duration,
    /// `budgetPercent`: retries may add at most this share of the calls made. Default 20.
    pub budget_percent: u32,
    /// `minRetriesPerSecond`: retries always allowed regardless of the budget. Default 10.
    pub min_retries_per_second: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            budget_percent: 20,
            min_retries_per_second: 10,
        }
    }
}

/// `circuitBreaker`: closed, open, half-open.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// `failureThreshold`: consecutive failures that open the breaker (0 turns it off).
    /// Default 5.
    pub failure_threshold: u32,
    /// `openMs`: how long it stays open before letting probes through. Default 30 000.
    pub open_duration: Duration,
    /// `halfOpenProbes`: calls let through while half-open; that many successes close it.
    /// Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            open_duration: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// `rateLimit`: a token bucket on our side of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitSettings {
    /// `requestsPerSecond`: the refill rate. Required.
    pub requests_per_second: NonZeroU32,
    /// `burst`: the bucket's size. Default: `requestsPerSecond`.
    pub burst: NonZeroU32,
}

impl RateLimitSettings {
    pub fn new(requests_per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        RateLimitSettings {
            requests_per_second,
            burst,
        }
    }
}

/// `reconnect`: restarting a crashed stdio server or reopening a broken connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectSettings {
    /// `maxAttempts`: connection attempts per reconnection (0 turns reconnection off).
    /// Default 5.
    pub max_attempts: u32,
    /// `initialBackoffMs`: pause after the first failed attempt; doubles each time. Default 200.
    pub initial_backoff: Duration,
    /// `maxBackoffMs`: the longest pause. Default 30 000.
    pub max_backoff: Duration,
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        ReconnectSettings {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// `healthCheck`: a periodic `ping` (legacy) or `server/discover` (2026-07-28).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthSettings {
    /// `intervalMs`: time between checks (0 turns periodic checks off). Default 30 000.
    pub interval: Duration,
    /// `timeoutMs`: time allowed for one check. Default 5 000.
    pub timeout: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One tool's settings under `tools`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ToolSettings {
    /// `timeoutMs`: overrides the request timeout for this tool.
    pub timeout: Option<Duration>,
    /// `idempotent`: whether a call that may have reached the server can be sent again.
    /// When absent, the tool's `readOnlyHint`/`idempotentHint` annotations decide.
    pub idempotent: Option<bool>,
    /// `cacheTtlMs`: cache successful results of this read-only tool for this long (opt-in).
    pub cache_ttl: Option<Duration>,
}
