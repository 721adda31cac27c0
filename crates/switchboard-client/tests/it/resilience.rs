//! The resilience policies against the fixture's fault modes: exact attempt counts and delays
//! on paused time in-process, real child processes for crashes.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, ErrorClass,
    model::Tool,
    resilience::{BreakerState, HealthStatus, Jitter, Resilient},
};
use switchboard_config::{RateLimitSettings, Resilience, ServerEntry, ToolSettings, Transport};
use test_support::{
    bin_path,
    fixture::{FixtureOptions, Journal, JournalEntry, count_calls, serve_in_memory},
};
use tokio::time::Instant;

use crate::name;

/// The fixture's tools as the client sees them (annotations included).
async fn tools(connection: &Connection) -> Vec<Tool> {
    connection.list_tools(Duration::from_secs(5)).await.unwrap()
}

fn tool(tools: &[Tool], name: &str) -> Tool {
    tools.iter().find(|t| t.name == name).unwrap().clone()
}

fn args(value: Value) -> Option<serde_json::Map<String, Value>> {
    value.as_object().cloned()
}

/// Retries on, breaker and reconnection as given, deterministic backoff: 100 ms, 200 ms, ...
fn settings() -> Resilience {
    let mut settings = Resilience::default();
    settings.retry.max_attempts = 3;
    settings.retry.initial_backoff = Duration::from_millis(100);
    settings.circuit_breaker.failure_threshold = 0;
    settings.health_check.interval = Duration::ZERO;
    settings
}

/// A server over an in-memory fixture; every reconnection gets a fresh fixture with the
/// same options (and the same journal).
async fn in_memory(fixture: FixtureOptions, settings: Resilience) -> (Resilient, Vec<Tool>) {
    let connector: switchboard_client::resilience::Connector = Arc::new(move || {
        let fixture = fixture.clone();
        Box::pin(async move {
            let (reader, writer) = serve_in_memory(fixture);
            Connection::connect_io(name("fx"), reader, writer, &ConnectOptions::default()).await
        })
    });
    let connection = connector().await.unwrap();
    let listed = tools(&connection).await;
    let resilient = Resilient::new(
        name("fx"),
        settings,
        Duration::from_secs(60),
        Some(Arc::new(connection)),
        Some(connector),
    )
    .with_jitter(Jitter::None);
    (resilient, listed)
}

fn journaled(journal: &Arc<Journal>) -> FixtureOptions {
    FixtureOptions {
        journal: Some(journal.clone()),
        ..FixtureOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_fails_twice_is_retried_after_100_then_200_ms() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        fail_first_calls: 2,
        ..journaled(&journal)
    };
    let (server, tools) = in_memory(fixture, settings()).await;
    let started = Instant::now();
    let result = server
        .call_tool(
            &tool(&tools, "slow"),
            args(json!({"ms": 0})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(!result.is_error);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(journal.calls_of("slow"), 3);
    let stats = server.stats();
    assert_eq!((stats.attempts, stats.retries), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_ms_from_the_server_sets_the_pause() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        fail_first_calls: 1,
        retry_after_ms: Some(1_500),
        ..journaled(&journal)
    };
    let (server, tools) = in_memory(fixture, settings()).await;
    let started = Instant::now();
    server
        .call_tool(
            &tool(&tools, "echo"),
            args(json!({"text": "hi"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(1_500));
    assert_eq!(journal.calls_of("echo"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_keeps_failing_gets_max_attempts_and_the_last_error() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        fail_first_calls: 100,
        ..journaled(&journal)
    };
    let (server, tools) = in_memory(fixture, settings()).await;
    let started = Instant::now();
    let error = server
        .call_tool(
            &tool(&tools, "echo"),
            args(json!({"text": "hi"})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Rpc { code: -32000, .. }),
        "{error}"
    );
    assert_eq!(journal.calls_of("echo"), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn tool_errors_and_invalid_params_are_not_retried() {
    let journal = Journal::new();
    let (server, tools) = in_memory(journaled(&journal), settings()).await;
    let failed = server
        .call_tool(&tool(&tools, "fail"), None, CallOptions::default())
        .await
        .unwrap();
    assert!(failed.is_error);
    assert_eq!(journal.calls_of("fail"), 1, "isError results are final");

    // An unknown tool is -32602; even a read-only one is not sent again.
    let unknown: Tool = serde_json::from_value(json!({
        "name": "nope",
        "inputSchema": {"type": "object"},
        "annotations": {"readOnlyHint": true}
    }))
    .unwrap();
    let error = server
        .call_tool(&unknown, None, CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Rpc { code: -32602, .. }),
        "{error}"
    );
    assert_eq!(journal.calls_of("nope"), 1, "-32602 is final");
    assert_eq!(server.stats().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_response_is_lost_is_not_sent_twice() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        lose_first_responses: 1,
        ..journaled(&journal)
    };
    let (server, tools) = in_memory(fixture, settings()).await;
    let options = CallOptions {
        timeout: Duration::from_secs(2),
        ..CallOptions::default()
    };
    let started = Instant::now();
    // `slow` carries no readOnlyHint or idempotentHint: it may change something.
    let error = server
        .call_tool(&tool(&tools, "slow"), args(json!({"ms": 0})), options)
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Timeout, "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let entries = journal.entries();
    assert_eq!(count_calls(&entries, "slow"), 1, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, JournalEntry::Cancelled { .. })),
        "the timed-out call was cancelled: {entries:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idempotent_call_whose_response_is_lost_is_retried() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        lose_first_responses: 1,
        ..journaled(&journal)
    };
    let (server, tools) = in_memory(fixture, settings()).await;
    let options = CallOptions {
        timeout: Duration::from_secs(2),
        ..CallOptions::default()
    };
    let started = Instant::now();
    // readOnlyHint
    let echoed = server
        .call_tool(
            &tool(&tools, "echo"),
            args(json!({"text": "again"})),
            options,
        )
        .await
        .unwrap();
    assert!(!echoed.is_error);
    assert_eq!(started.elapsed(), Duration::from_millis(2_100));
    assert_eq!(journal.calls_of("echo"), 2);
}

#[tokio::test(start_paused = true)]
async fn the_config_can_mark_a_tool_idempotent_and_give_it_its_own_timeout() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        lose_first_responses: 1,
        ..journaled(&journal)
    };
    let mut settings = settings();
    let mut slow = ToolSettings::default();
    slow.idempotent = Some(true);
    slow.timeout = Some(Duration::from_millis(500));
    settings.tools.insert("slow".to_owned(), slow);
    let (server, tools) = in_memory(fixture, settings).await;
    let started = Instant::now();
    server
        .call_tool(
            &tool(&tools, "slow"),
            args(json!({"ms": 0})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(600));
    assert_eq!(journal.calls_of("slow"), 2);
}

#[tokio::test(start_paused = true)]
async fn an_empty_retry_budget_stops_retries() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        fail_first_calls: 100,
        ..journaled(&journal)
    };
    let mut settings = settings();
    settings.retry.budget_percent = 0;
    settings.retry.min_retries_per_second = 0;
    let (server, tools) = in_memory(fixture, settings).await;
    server
        .call_tool(
            &tool(&tools, "echo"),
            args(json!({"text": "x"})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(journal.calls_of("echo"), 1);
    assert_eq!(server.stats().budget_exhausted, 1);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_fails_fast_saying_when_and_closes_after_a_good_probe() {
    let journal = Journal::new();
    let fixture = FixtureOptions {
        fail_first_calls: 3,
        ..journaled(&journal)
    };
    let mut settings = settings();
    settings.retry.max_attempts = 1;
    settings.circuit_breaker.failure_threshold = 3;
    settings.circuit_breaker.open_duration = Duration::from_secs(10);
    let (server, tools) = in_memory(fixture, settings).await;
    let echo = tool(&tools, "echo");
    for _ in 0..3 {
        let error = server
            .call_tool(&echo, args(json!({"text": "x"})), CallOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Rpc { .. }), "{error}");
    }
    tokio::time::advance(Duration::from_secs(4)).await;
    let error = server
        .call_tool(&echo, args(json!({"text": "x"})), CallOptions::default())
        .await
        .unwrap_err();
    let ClientError::CircuitOpen { retry_in, .. } = &error else {
        panic!("expected a fast failure, got {error}");
    };
    assert_eq!(*retry_in, Duration::from_secs(6));
    assert!(error.to_string().contains("in 6.0 s"), "{error}");
    assert_eq!(error.class(), ErrorClass::Connection);
    assert_eq!(journal.calls_of("echo"), 3, "the fast failure was not sent");
    assert_eq!(server.stats().fast_fails, 1);

    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(server.breaker_state(), BreakerState::HalfOpen);
    server
        .call_tool(
            &echo,
            args(json!({"text": "probe"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(server.breaker_state(), BreakerState::Closed);
    assert_eq!(journal.calls_of("echo"), 4);
}

#[tokio::test(start_paused = true)]
async fn a_read_only_tool_with_cache_ttl_is_answered_from_the_cache_until_it_expires() {
    let journal = Journal::new();
    let mut settings = settings();
    let mut echo = ToolSettings::default();
    echo.cache_ttl = Some(Duration::from_secs(30));
    settings.tools.insert("echo".to_owned(), echo);
    let (server, tools) = in_memory(journaled(&journal), settings).await;
    let echo = tool(&tools, "echo");
    for _ in 0..3 {
        server
            .call_tool(&echo, args(json!({"text": "same"})), CallOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(journal.calls_of("echo"), 1);
    server
        .call_tool(
            &echo,
            args(json!({"text": "other"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(journal.calls_of("echo"), 2, "other arguments, other entry");
    tokio::time::advance(Duration::from_secs(31)).await;
    server
        .call_tool(&echo, args(json!({"text": "same"})), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(journal.calls_of("echo"), 3, "expired");
    assert_eq!(server.stats().cache_hits, 2);
}

#[tokio::test]
async fn the_rate_limit_spaces_calls_at_the_configured_rate() {
    let mut settings = settings();
    settings.rate_limit = Some(RateLimitSettings::new(
        std::num::NonZeroU32::new(20).unwrap(),
        std::num::NonZeroU32::new(1).unwrap(),
    ));
    let (server, tools) = in_memory(FixtureOptions::default(), settings).await;
    let echo = tool(&tools, "echo");
    let started = std::time::Instant::now();
    for _ in 0..5 {
        server
            .call_tool(&echo, args(json!({"text": "x"})), CallOptions::default())
            .await
            .unwrap();
    }
    // A burst of one, then one token every 50 ms: four waits.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn health_is_checked_with_ping_on_legacy_and_discover_on_modern() {
    for era in [
        switchboard_client::EraPreference::Legacy,
        switchboard_client::EraPreference::Modern,
    ] {
        let (reader, writer) = serve_in_memory(FixtureOptions::default());
        let options = ConnectOptions {
            era,
            ..ConnectOptions::default()
        };
        let connection = Connection::connect_io(name("fx"), reader, writer, &options)
            .await
            .unwrap();
        let server = Resilient::new(
            name("fx"),
            settings(),
            Duration::from_secs(60),
            Some(Arc::new(connection)),
            None,
        );
        assert_eq!(server.health().status, HealthStatus::Unknown);
        let report = server.check_health().await;
        assert_eq!(report.status, HealthStatus::Healthy, "{era:?}");
        assert!(report.latency.is_some());
        assert_eq!(report.breaker, BreakerState::Disabled);
    }
}

fn stdio_fixture(args: &[&str], resilience: Resilience) -> ServerEntry {
    let mut entry = ServerEntry::new(
        name("fx"),
        Transport::Stdio {
            command: bin_path("sb-fixture-server").display().to_string(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: Default::default(),
            cwd: None,
        },
    );
    entry.resilience = resilience;
    entry
}

fn quick() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn a_crashed_stdio_server_fails_the_call_in_flight_and_is_restarted_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("calls.jsonl");
    let record_arg = record.display().to_string();
    let mut settings = settings();
    settings.reconnect.initial_backoff = Duration::from_millis(10);
    let entry = stdio_fixture(&["--crash-after", "1", "--record", &record_arg], settings);
    let server = Resilient::connect(&entry, &quick(), Duration::from_secs(10))
        .await
        .unwrap();
    let first = server.current().unwrap();
    let tools = tools(&first).await;
    let slow = tool(&tools, "slow");
    server
        .call_tool(&slow, args(json!({"ms": 0})), CallOptions::default())
        .await
        .unwrap();
    // The second call kills the server; `slow` may write, so it is not retried.
    let error = server
        .call_tool(&slow, args(json!({"ms": 0})), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::ConnectionLost {
                method: "tools/call",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("connection was lost"), "{error}");
    // The next call starts a new server process and works.
    let result = server
        .call_tool(&slow, args(json!({"ms": 0})), CallOptions::default())
        .await
        .unwrap();
    assert!(!result.is_error);
    assert_eq!(server.stats().reconnects, 1);
    assert!(!Arc::ptr_eq(&first, &server.current().unwrap()));
    assert_eq!(count_calls(&Journal::read_file(&record), "slow"), 3);
}

#[tokio::test]
async fn health_reconnects_a_crashed_server_and_reports_one_that_cannot_start_as_down() {
    let mut settings = settings();
    settings.reconnect.max_attempts = 2;
    settings.reconnect.initial_backoff = Duration::from_millis(10);
    let entry = stdio_fixture(&["--crash-after", "0"], settings);
    let server = Resilient::connect(&entry, &quick(), Duration::from_secs(10))
        .await
        .unwrap();
    let tools = tools(&server.current().unwrap()).await;
    let error = server
        .call_tool(
            &tool(&tools, "slow"),
            args(json!({"ms": 0})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Connection, "{error}");
    // Reconnection works (the process starts), so health is good again until the next call.
    let report = server.check_health().await;
    assert_eq!(report.status, HealthStatus::Healthy);

    // A command that no longer exists cannot be restarted at all.
    let mut gone = stdio_fixture(&[], settings_with_reconnect(2));
    if let Transport::Stdio { command, .. } = &mut gone.transport {
        *command = "/nonexistent/sb-fixture-server".to_owned();
    }
    let connector = Resilient::connector_for(&gone, &quick());
    let server = Resilient::new(
        name("fx"),
        settings_with_reconnect(2),
        Duration::from_secs(5),
        None,
        Some(connector),
    );
    let report = server.check_health().await;
    assert!(
        matches!(&report.status, HealthStatus::Down { reason } if reason.contains("not found")),
        "{:?}",
        report.status
    );
}

fn settings_with_reconnect(attempts: u32) -> Resilience {
    let mut settings = settings();
    settings.reconnect.max_attempts = attempts;
    settings.reconnect.initial_backoff = Duration::from_millis(10);
    settings
}
