//! A bounded soak: 10,000 calls against a server that fails 20% of them. Every call ends in a
//! success or a classified error, none hangs, and memory stays flat.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use serde_json::json;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection,
    resilience::{Jitter, Resilient},
};
use switchboard_config::Resilience;
use test_support::fixture::{FixtureOptions, serve_in_memory};

use crate::name;

const CALLS: usize = 10_000;
const WARM_UP: usize = 1_000;
const CONCURRENCY: usize = 8;
/// A call that takes longer than this (in paused time) counts as hung.
const HANG: Duration = Duration::from_secs(60);
/// How much the resident set may grow between the warm-up and the end.
const MAX_RSS_GROWTH_BYTES: u64 = 16 * 1024 * 1024;

/// Resident set size of this test process (its own process under nextest).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[derive(Debug, Default)]
struct Tally {
    successes: u64,
    hangs: u64,
    fast_fails: u64,
    errors: BTreeMap<String, u64>,
}

async fn run_calls(
    server: &Resilient,
    tool: &switchboard_client::model::Tool,
    n: usize,
    tally: &mut Tally,
) {
    let outcomes: Vec<Option<Result<(), ClientError>>> = futures::stream::iter(0..n)
        .map(|i| async move {
            // Callers think between calls, so paused time moves even while the breaker is
            // open and every attempt fails fast.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let call = server.call_tool(
                tool,
                json!({"text": format!("call {i}")}).as_object().cloned(),
                CallOptions::default(),
            );
            let outcome = tokio::time::timeout(HANG, call)
                .await
                .ok()
                .map(|r| r.map(drop));
            // Like a sensible caller, come back when the breaker says it lets calls in again.
            if let Some(Err(ClientError::CircuitOpen { retry_in, .. })) = &outcome {
                tokio::time::sleep(*retry_in).await;
            }
            outcome
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            None => tally.hangs += 1,
            Some(Ok(())) => tally.successes += 1,
            Some(Err(error)) => {
                if matches!(error, ClientError::CircuitOpen { .. }) {
                    tally.fast_fails += 1;
                }
                *tally
                    .errors
                    .entry(format!("{:?}", error.class()))
                    .or_default() += 1;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_calls_against_a_flaky_server_all_end_and_memory_stays_flat() {
    let fixture = FixtureOptions {
        failure_percent: 20,
        ..FixtureOptions::default()
    };
    let (reader, writer) = serve_in_memory(fixture);
    let connection =
        Connection::connect_io(name("flaky"), reader, writer, &ConnectOptions::default())
            .await
            .unwrap();
    let tools = connection.list_tools(Duration::from_secs(5)).await.unwrap();
    let echo = tools.iter().find(|t| t.name == "echo").unwrap().clone();
    let mut settings = Resilience::default();
    settings.retry.initial_backoff = Duration::from_millis(10);
    settings.retry.max_backoff = Duration::from_millis(200);
    settings.circuit_breaker.open_duration = Duration::from_millis(200);
    settings.health_check.interval = Duration::ZERO;
    let server = Resilient::new(
        name("flaky"),
        settings,
        Duration::from_secs(10),
        Some(Arc::new(connection)),
        None,
    )
    .with_jitter(Jitter::Full);

    let mut tally = Tally::default();
    run_calls(&server, &echo, WARM_UP, &mut tally).await;
    let rss_after_warm_up = rss_bytes();
    run_calls(&server, &echo, CALLS - WARM_UP, &mut tally).await;
    let rss_at_end = rss_bytes();

    let stats = server.stats();
    let errors: u64 = tally.errors.values().sum();
    eprintln!(
        "soak: {CALLS} calls: {} successes, {} retries, {} fast-fails, {} errors by class {:?}, \
         {} attempts, {} retries refused by the budget, {} hung; RSS {} KiB after warm-up, {} KiB at the end",
        tally.successes,
        stats.retries,
        tally.fast_fails,
        errors,
        tally.errors,
        stats.attempts,
        stats.budget_exhausted,
        tally.hangs,
        rss_after_warm_up / 1024,
        rss_at_end / 1024,
    );
    assert_eq!(tally.hangs, 0, "no call may hang");
    assert_eq!(
        tally.successes + errors,
        CALLS as u64,
        "every call ends in a success or a classified error"
    );
    assert_eq!(stats.calls, CALLS as u64);
    assert!(stats.retries > 0, "a 20% failure rate needs retries");
    assert!(
        tally.successes > CALLS as u64 * 9 / 10,
        "retries hide most failures: {tally:?}"
    );
    // The only errors are the server's retryable ones and the breaker's fast failures.
    assert!(
        tally.errors.keys().all(|k| k == "Rpc" || k == "Connection"),
        "{tally:?}"
    );
    assert_eq!(server.outstanding(), 0, "nothing is left in flight");
    assert!(
        rss_at_end.saturating_sub(rss_after_warm_up) < MAX_RSS_GROWTH_BYTES,
        "RSS grew from {rss_after_warm_up} to {rss_at_end} bytes"
    );
}
