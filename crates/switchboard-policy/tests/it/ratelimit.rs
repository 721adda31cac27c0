//! Rate limits: exact counts with a controllable clock, and one global limit across two
//! Redis-backed limiters.

use std::{collections::BTreeMap, num::NonZeroU32, time::Duration};

use governor::clock::FakeRelativeClock;
use http::{StatusCode, header};
use serde_json::json;
use switchboard_policy::{
    config::SecurityConfig,
    ratelimit::{
        Bucket, Decision, MemoryRateLimiter, RateClass, RateLimited, RateLimiter, RateLimits,
        RedisRateLimiter,
    },
};

const REDIS_URL_VAR: &str = "SWITCHBOARD_TEST_REDIS_URL";

fn limits() -> RateLimits {
    let config = SecurityConfig::from_toml_section(
        r#"
[security.rate_limits.tools]
"expenses/import_expenses" = 2
[security.clients.batch]
writes_per_minute = 3
reads_per_minute = 5
"#,
    )
    .expect("valid");
    RateLimits::from_config(&config.rate_limits, &config.clients).expect("valid limits")
}

/// (allowed, denied) after `attempts` checks.
async fn spend(limiter: &dyn RateLimiter, bucket: &Bucket, attempts: usize) -> (usize, usize) {
    let mut counts = (0, 0);
    for _ in 0..attempts {
        match limiter.check(bucket).await.expect("a decision") {
            Decision::Allowed => counts.0 += 1,
            Decision::Denied(_) => counts.1 += 1,
        }
    }
    counts
}

#[tokio::test]
async fn the_defaults_allow_exactly_10_writes_and_100_reads_a_minute() {
    let clock = FakeRelativeClock::default();
    let limiter = MemoryRateLimiter::with_clock(clock.clone());
    let limits = limits();
    let writes = limits.bucket("chat-app", RateClass::Write, "expenses", "add_expense");
    let reads = limits.bucket("chat-app", RateClass::Read, "expenses", "list_expenses");

    assert_eq!(spend(&limiter, &writes, 25).await, (10, 15));
    assert_eq!(spend(&limiter, &reads, 150).await, (100, 50));
    // The 11th write may go 60/10 = 6 s after the burst.
    assert_eq!(
        limiter.check_now(&writes),
        Decision::Denied(RateLimited {
            retry_after: Duration::from_secs(6)
        })
    );

    clock.advance(Duration::from_secs(5));
    assert_eq!(spend(&limiter, &writes, 5).await, (0, 5));
    clock.advance(Duration::from_secs(1));
    assert_eq!(spend(&limiter, &writes, 5).await, (1, 4));
    // Reads replenish one per 0.6 s: 9 s after the burst, 15 more.
    clock.advance(Duration::from_secs(3));
    assert_eq!(spend(&limiter, &reads, 20).await, (15, 5));

    // After a quiet minute the whole burst is back.
    clock.advance(Duration::from_secs(60));
    assert_eq!(spend(&limiter, &writes, 12).await, (10, 2));
}

#[tokio::test]
async fn clients_and_classes_have_separate_budgets_and_overrides() {
    let clock = FakeRelativeClock::default();
    let limiter = MemoryRateLimiter::with_clock(clock.clone());
    let limits = limits();
    let batch_writes = limits.bucket("batch", RateClass::Write, "bookmarks", "add");
    let batch_reads = limits.bucket("batch", RateClass::Read, "bookmarks", "search");
    let other_writes = limits.bucket("chat-app", RateClass::Write, "bookmarks", "add");
    let import_batch = limits.bucket("batch", RateClass::Write, "expenses", "import_expenses");
    let import_other = limits.bucket("chat-app", RateClass::Write, "expenses", "import_expenses");

    assert_eq!(spend(&limiter, &batch_writes, 10).await, (3, 7));
    assert_eq!(spend(&limiter, &batch_reads, 10).await, (5, 5));
    assert_eq!(spend(&limiter, &other_writes, 12).await, (10, 2));
    // The tool's own quota, per client, independent of the write budget just spent.
    assert_eq!(spend(&limiter, &import_batch, 5).await, (2, 3));
    assert_eq!(spend(&limiter, &import_other, 5).await, (2, 3));
    assert_eq!(
        limiter.check_now(&import_batch),
        Decision::Denied(RateLimited {
            retry_after: Duration::from_secs(30)
        })
    );
    // A client id cannot reach into another client's bucket.
    assert_ne!(
        Bucket::new("a:write", "read", NonZeroU32::MIN).key,
        Bucket::new("a", "write:read", NonZeroU32::MIN).key
    );
}

#[tokio::test]
async fn a_denial_is_429_with_retry_after_or_32000_retryable() {
    let denied = RateLimited {
        retry_after: Duration::from_millis(5_500),
    };
    let response = denied.http_response();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "6");
    assert_eq!(
        denied.jsonrpc_error().to_json(),
        json!({
            "code": -32000,
            "message": "rate limit exceeded; retry in 5500 ms",
            "data": {"retryable": true, "retry_after_ms": 5500, "reason": "rate_limited"}
        })
    );
    let soon = RateLimited {
        retry_after: Duration::from_millis(20),
    };
    assert_eq!(soon.http_response().headers()[header::RETRY_AFTER], "1");
}

#[allow(clippy::print_stderr)]
fn redis_url() -> Option<String> {
    match std::env::var(REDIS_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED: {REDIS_URL_VAR} is not set");
            None
        }
    }
}

/// A key prefix no other test (or earlier run) uses.
fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("switchboard-test:{test}:{}:{nanos}:", std::process::id())
}

#[tokio::test]
async fn two_gateways_on_one_redis_enforce_one_limit_of_10_writes_a_minute() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("global");
    // Two limiters with their own connections, as two gateway replicas would have.
    let replica_a = RedisRateLimiter::connect(&url, prefix.clone())
        .await
        .expect("connect A");
    let replica_b = RedisRateLimiter::connect(&url, prefix.clone())
        .await
        .expect("connect B");
    let limits = RateLimits::from_config(&Default::default(), &BTreeMap::new()).expect("valid");
    let writes = limits.bucket("chat-app", RateClass::Write, "expenses", "add_expense");

    let (mut allowed_a, mut allowed_b, mut denied) = (0, 0, 0);
    let mut longest_wait = Duration::ZERO;
    for attempt in 0..30_u32 {
        let replica: &dyn RateLimiter = if attempt.is_multiple_of(2) {
            &replica_a
        } else {
            &replica_b
        };
        match replica.check(&writes).await.expect("Redis answers") {
            Decision::Allowed if attempt.is_multiple_of(2) => allowed_a += 1,
            Decision::Allowed => allowed_b += 1,
            Decision::Denied(limited) => {
                denied += 1;
                longest_wait = longest_wait.max(limited.retry_after);
            }
        }
    }
    assert_eq!(allowed_a + allowed_b, 10, "one global budget");
    assert_eq!(
        (allowed_a, allowed_b),
        (5, 5),
        "both replicas spent from it"
    );
    assert_eq!(denied, 20);
    assert!(
        longest_wait > Duration::from_secs(5) && longest_wait <= Duration::from_secs(6),
        "the next write is about 6 s away: {longest_wait:?}"
    );
    // Another client, and reads, have budgets of their own.
    let other = limits.bucket("batch", RateClass::Write, "expenses", "add_expense");
    assert_eq!(spend(&replica_b, &other, 12).await, (10, 2));
    let reads = limits.bucket("chat-app", RateClass::Read, "expenses", "list_expenses");
    assert_eq!(spend(&replica_a, &reads, 3).await, (3, 0));
}

#[tokio::test]
async fn concurrent_checks_on_redis_never_overspend() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("concurrent");
    let replica_a = std::sync::Arc::new(
        RedisRateLimiter::connect(&url, prefix.clone())
            .await
            .expect("connect A"),
    );
    let replica_b = std::sync::Arc::new(
        RedisRateLimiter::connect(&url, prefix)
            .await
            .expect("connect B"),
    );
    let bucket = Bucket::new("racer", "write", NonZeroU32::new(10).expect("ten"));
    let mut tasks = tokio::task::JoinSet::new();
    for attempt in 0..40_u32 {
        let replica = if attempt.is_multiple_of(2) {
            replica_a.clone()
        } else {
            replica_b.clone()
        };
        let bucket = bucket.clone();
        tasks.spawn(async move { replica.check(&bucket).await.expect("Redis answers") });
    }
    let mut allowed = 0;
    while let Some(decision) = tasks.join_next().await {
        if decision.expect("task") == Decision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let result = RedisRateLimiter::connect("redis://127.0.0.1:1", "x:").await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}
