//! Rate limits: GCRA per client and class (read or write), with per-client and per-tool
//! quotas, in memory (one replica) or in Redis (replicas share the counters).
//!
//! A quota of N per minute lets a client make N calls at once and then one every 60/N
//! seconds. A tool with its own quota (`[security.rate_limits.tools]`) has its own bucket per
//! client instead of the class bucket.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use switchboard_policy::ratelimit::{Decision, MemoryRateLimiter, RateClass, RateLimiter, RateLimits};
//! let limits = RateLimits::from_config(&Default::default(), &Default::default()).expect("valid");
//! let limiter = MemoryRateLimiter::new();
//! let bucket = limits.bucket("ci-bot", RateClass::Write, "expenses", "add_expense");
//! for _ in 0..10 {
//!     assert_eq!(limiter.check(&bucket).await.expect("in memory"), Decision::Allowed);
//! }
//! assert!(matches!(limiter.check(&bucket).await.expect("in memory"), Decision::Denied(_)));
//! # }
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::body::Body;
use futures::future::BoxFuture;
use governor::{
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::keyed::DashMapStateStore,
};
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::{
    auth::json_response,
    config::{ClientConfig, RateLimitConfig},
    scope::PatternMap,
    wire::WireError,
};

/// The in-band code of a retryable refusal (shared with transient server trouble).
pub const RATE_LIMITED_CODE: i64 = -32000;
/// `data.reason` of an in-band rate-limit refusal.
pub const RATE_LIMITED_REASON: &str = "rate_limited";
/// How long connecting to Redis may take.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one Redis check may take.
pub const REDIS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Which budget a call spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    Read,
    Write,
}

impl RateClass {
    /// Read-only tools (annotated `readOnlyHint`), resource reads, prompts and lists are reads;
    /// every other tool call is a write.
    pub fn for_tool(read_only: bool) -> RateClass {
        if read_only {
            RateClass::Read
        } else {
            RateClass::Write
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Read => "read",
            RateClass::Write => "write",
        }
    }
}

/// One budget: its key (unique per client and class or tool) and its quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub per_minute: NonZeroU32,
}

impl Bucket {
    /// The key is length-prefixed, so no client id can collide with another's bucket.
    pub fn new(client_id: &str, what: &str, per_minute: NonZeroU32) -> Bucket {
        Bucket {
            key: format!("{}:{client_id}:{what}", client_id.len()),
            per_minute,
        }
    }

    /// GCRA's emission interval: the time one call costs.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.get()
    }
}

/// The quotas of a gateway, built once from the config.
#[derive(Debug, Clone)]
pub struct RateLimits {
    reads_per_minute: NonZeroU32,
    writes_per_minute: NonZeroU32,
    tools: PatternMap<NonZeroU32>,
    clients: BTreeMap<String, ClientConfig>,
}

impl RateLimits {
    pub fn from_config(
        config: &RateLimitConfig,
        clients: &BTreeMap<String, ClientConfig>,
    ) -> Result<RateLimits, String> {
        Ok(RateLimits {
            reads_per_minute: config.reads_per_minute,
            writes_per_minute: config.writes_per_minute,
            tools: PatternMap::from_config(&config.tools)?,
            clients: clients.clone(),
        })
    }

    /// The bucket a call of `server/tool` by this client spends from.
    pub fn bucket(&self, client_id: &str, class: RateClass, server: &str, tool: &str) -> Bucket {
        if let Some(per_minute) = self.tools.get(server, tool) {
            return Bucket::new(client_id, &format!("tool:{server}/{tool}"), *per_minute);
        }
        self.class_bucket(client_id, class)
    }

    /// The client's read or write bucket.
    pub fn class_bucket(&self, client_id: &str, class: RateClass) -> Bucket {
        let client = self.clients.get(client_id);
        let per_minute = match class {
            RateClass::Read => client
                .and_then(|c| c.reads_per_minute)
                .unwrap_or(self.reads_per_minute),
            RateClass::Write => client
                .and_then(|c| c.writes_per_minute)
                .unwrap_or(self.writes_per_minute),
        };
        Bucket::new(client_id, class.as_str(), per_minute)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied(RateLimited),
}

/// A refused call and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
}

impl RateLimited {
    pub fn retry_after_ms(&self) -> u64 {
        u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX)
    }

    /// HTTP 429 with `Retry-After` in whole seconds (rounded up, at least 1).
    pub fn http_response(&self) -> Response<Body> {
        let seconds = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate_limited", "retry_after_ms": self.retry_after_ms()}),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        response
    }

    /// In-band: `-32000` with `data: {retryable: true, retry_after_ms, reason: "rate_limited"}`
    /// (the reason tells a front apart from other transient trouble, which shares the code).
    pub fn jsonrpc_error(&self) -> WireError {
        WireError {
            code: RATE_LIMITED_CODE,
            message: format!("rate limit exceeded; retry in {} ms", self.retry_after_ms()),
            data: Some(json!({
                "retryable": true,
                "retry_after_ms": self.retry_after_ms(),
                "reason": RATE_LIMITED_REASON,
            })),
        }
    }
}

/// A rate-limit store that could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("cannot reach the rate-limit store (Redis): {0}")]
    Redis(#[source] redis::RedisError),
    #[error("the rate-limit store (Redis) did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the rate-limit script answered something unexpected: {0}")]
    Protocol(String),
}

/// Spends one call from a bucket.
pub trait RateLimiter: Send + Sync + fmt::Debug {
    fn check<'a>(&'a self, bucket: &'a Bucket) -> BoxFuture<'a, Result<Decision, RateLimitError>>;
}

type Keyed<C> = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Counters in this process (governor's keyed GCRA), one keyed limiter per quota.
pub struct MemoryRateLimiter<C: Clock = DefaultClock> {
    clock: C,
    limiters: Mutex<HashMap<NonZeroU32, Arc<Keyed<C>>>>,
}

impl<C: Clock> fmt::Debug for MemoryRateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quotas = self.limiters.lock().map(|l| l.len()).unwrap_or_default();
        f.debug_struct("MemoryRateLimiter")
            .field("quotas", &quotas)
            .finish()
    }
}

impl MemoryRateLimiter<DefaultClock> {
    pub fn new() -> Self {
        MemoryRateLimiter::with_clock(DefaultClock::default())
    }
}

impl Default for MemoryRateLimiter<DefaultClock> {
    fn default() -> Self {
        MemoryRateLimiter::new()
    }
}

impl<C: Clock + Clone> MemoryRateLimiter<C> {
    /// With a given clock (tests use governor's `FakeRelativeClock`).
    pub fn with_clock(clock: C) -> Self {
        MemoryRateLimiter {
            clock,
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// Forget buckets that are full again; call now and then to bound memory.
    pub fn retain_recent(&self) {
        let limiters: Vec<_> = self
            .limiters
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        for limiter in limiters {
            limiter.retain_recent();
        }
    }

    /// The synchronous check the trait wraps.
    pub fn check_now(&self, bucket: &Bucket) -> Decision {
        let limiter = {
            let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            limiters
                .entry(bucket.per_minute)
                .or_insert_with(|| {
                    Arc::new(governor::RateLimiter::dashmap_with_clock(
                        governor::Quota::per_minute(bucket.per_minute),
                        self.clock.clone(),
                    ))
                })
                .clone()
        };
        match limiter.check_key(&bucket.key) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Denied(RateLimited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
        }
    }
}

impl<C: Clock + Clone + Send + Sync> RateLimiter for MemoryRateLimiter<C>
where
    C::Instant: Send + Sync,
{
    fn check<'a>(&'a self, bucket: &'a Bucket) -> BoxFuture<'a, Result<Decision, RateLimitError>> {
        let decision = self.check_now(bucket);
        Box::pin(async move { Ok(decision) })
    }
}

/// GCRA in one Lua script, so a check is atomic across replicas. Time comes from Redis
/// (`TIME`), not from the replicas' clocks, so they agree. Times are in microseconds.
/// KEYS[1]: the bucket; ARGV[1]: the emission interval; ARGV[2]: the burst.
/// Returns {1, 0} when allowed, {0, microseconds until allowed} when not.
const GCRA_SCRIPT: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
local ttl_ms = math.floor((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
return {1, 0}
";

/// Counters in Redis, shared by every replica that uses the same URL and prefix.
pub struct RedisRateLimiter {
    connection: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisRateLimiter {
    /// Connect (with reconnects on failure). Keys are `<prefix><bucket key>`; replicas of one
    /// gateway use the same prefix, e.g. `switchboard:rl:`.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(RateLimitError::Redis)?;
        let connection =
            tokio::time::timeout(REDIS_CONNECT_TIMEOUT, client.get_connection_manager())
                .await
                .map_err(|_| RateLimitError::Timeout(REDIS_CONNECT_TIMEOUT))?
                .map_err(RateLimitError::Redis)?;
        Ok(RedisRateLimiter {
            connection,
            prefix: prefix.into(),
            script: redis::Script::new(GCRA_SCRIPT),
        })
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(&'a self, bucket: &'a Bucket) -> BoxFuture<'a, Result<Decision, RateLimitError>> {
        Box::pin(async move {
            let interval_us = u64::try_from(bucket.interval().as_micros()).unwrap_or(u64::MAX);
            let mut connection = self.connection.clone();
            let mut invocation = self.script.key(format!("{}{}", self.prefix, bucket.key));
            invocation.arg(interval_us).arg(bucket.per_minute.get());
            let reply: Vec<i64> = tokio::time::timeout(
                REDIS_CHECK_TIMEOUT,
                invocation.invoke_async(&mut connection),
            )
            .await
            .map_err(|_| RateLimitError::Timeout(REDIS_CHECK_TIMEOUT))?
            .map_err(RateLimitError::Redis)?;
            match reply.as_slice() {
                [1, _] => Ok(Decision::Allowed),
                [0, wait] => Ok(Decision::Denied(RateLimited {
                    retry_after: Duration::from_micros(u64::try_from(*wait).unwrap_or(0)),
                })),
                other => Err(RateLimitError::Protocol(format!("{other:?}"))),
            }
        })
    }
}
