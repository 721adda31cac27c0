//! The host's side of resilience: health, graceful degradation, replicas, reconnection.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection,
    resilience::{Jitter, Resilient},
};
use switchboard_config::{Resilience, parse_config};
use switchboard_host::{BreakerState, HealthStatus, Host, HostError, HostOptions};
use test_support::{
    bin_path,
    fixture::{FixtureOptions, Journal, serve_in_memory},
};

use crate::{FIXTURE_TOOLS, name};

fn settings() -> Resilience {
    let mut settings = Resilience::default();
    settings.retry.max_attempts = 1;
    settings.health_check.interval = Duration::ZERO;
    settings
}

async fn replica(server: &str, fixture: FixtureOptions, settings: Resilience) -> Arc<Resilient> {
    let (reader, writer) = serve_in_memory(fixture);
    let connection =
        Connection::connect_io(name(server), reader, writer, &ConnectOptions::default())
            .await
            .unwrap();
    Arc::new(
        Resilient::new(
            name(server),
            settings,
            Duration::from_secs(60),
            Some(Arc::new(connection)),
            None,
        )
        .with_jitter(Jitter::None),
    )
}

#[tokio::test]
async fn health_reports_status_latency_and_breaker_of_every_server() {
    let host = Host::from_resilient(
        vec![vec![
            replica("a", FixtureOptions::default(), settings()).await,
        ]],
        HostOptions::default(),
    );
    let before = host.health();
    assert_eq!(before[0].status, HealthStatus::Unknown);
    let checked = host.check_health().await;
    assert_eq!(checked.len(), 1);
    assert_eq!(checked[0].server.as_str(), "a");
    assert_eq!(checked[0].status, HealthStatus::Healthy);
    assert!(checked[0].latency.is_some());
    assert_eq!(checked[0].breaker, BreakerState::Closed);
    assert!(checked[0].is_available());
    assert_eq!(host.health()[0].status, HealthStatus::Healthy, "remembered");
}

#[tokio::test]
async fn the_agent_is_offered_only_the_tools_of_available_servers_and_told_which_are_down() {
    let mut breaker = settings();
    breaker.circuit_breaker.failure_threshold = 1;
    let failing = FixtureOptions {
        fail_first_calls: 100,
        ..FixtureOptions::default()
    };
    let host = Host::from_resilient(
        vec![
            vec![replica("good", FixtureOptions::default(), settings()).await],
            vec![replica("flaky", failing, breaker).await],
        ],
        HostOptions::default(),
    );
    let all = host.available_tools().await;
    assert_eq!(all.tools.len(), 2 * FIXTURE_TOOLS.len());
    assert!(all.unavailable.is_empty());

    let echo = host.resolve_tool("flaky/echo").await.unwrap();
    let error = host
        .call_tool(&echo, json!({"text": "x"}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, HostError::Client(ClientError::Rpc { .. })),
        "{error}"
    );
    let error = host
        .call_tool(&echo, json!({"text": "x"}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, HostError::Client(ClientError::CircuitOpen { .. })),
        "{error}"
    );

    let degraded = host.available_tools().await;
    let servers: Vec<&str> = degraded.tools.iter().map(|t| t.server.as_str()).collect();
    assert_eq!(servers, ["good"; FIXTURE_TOOLS.len()]);
    assert_eq!(degraded.unavailable.len(), 1);
    assert_eq!(degraded.unavailable[0].0.as_str(), "flaky");
    assert!(
        degraded.unavailable[0]
            .1
            .contains("circuit breaker is open"),
        "{:?}",
        degraded.unavailable
    );
}

#[tokio::test(start_paused = true)]
async fn calls_go_to_the_replica_with_the_fewest_requests_in_flight() {
    let first = Journal::new();
    let second = Journal::new();
    let journaled = |journal: &Arc<Journal>| FixtureOptions {
        journal: Some(journal.clone()),
        ..FixtureOptions::default()
    };
    let host = Host::from_resilient(
        vec![vec![
            replica("svc", journaled(&first), settings()).await,
            replica("svc", journaled(&second), settings()).await,
        ]],
        HostOptions::default(),
    );
    let slow = host.resolve_tool("svc/slow").await.unwrap();
    let echo = host.resolve_tool("svc/echo").await.unwrap();
    let busy = host.call_tool(
        &slow,
        json!({"ms": 1000, "steps": 1}),
        CallOptions::default(),
    );
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        host.call_tool(&echo, json!({"text": "x"}), CallOptions::default())
            .await
    };
    let (busy, meanwhile) = tokio::join!(busy, meanwhile);
    busy.unwrap();
    meanwhile.unwrap();
    assert_eq!((first.calls_of("slow"), first.calls_of("echo")), (1, 0));
    assert_eq!((second.calls_of("slow"), second.calls_of("echo")), (0, 1));
    let health = &host.health()[0];
    assert_eq!((health.replicas, health.usable_replicas), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn a_replica_whose_breaker_is_open_is_skipped() {
    let first = Journal::new();
    let second = Journal::new();
    let mut breaker = settings();
    breaker.circuit_breaker.failure_threshold = 1;
    let host = Host::from_resilient(
        vec![vec![
            replica(
                "svc",
                FixtureOptions {
                    journal: Some(first.clone()),
                    fail_first_calls: 100,
                    ..FixtureOptions::default()
                },
                breaker,
            )
            .await,
            replica(
                "svc",
                FixtureOptions {
                    journal: Some(second.clone()),
                    ..FixtureOptions::default()
                },
                settings(),
            )
            .await,
        ]],
        HostOptions::default(),
    );
    let echo = host.resolve_tool("svc/echo").await.unwrap();
    // Both idle: the first replica gets the call, fails, and its breaker opens.
    host.call_tool(&echo, json!({"text": "x"}), CallOptions::default())
        .await
        .unwrap_err();
    for _ in 0..3 {
        host.call_tool(&echo, json!({"text": "x"}), CallOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(first.calls_of("echo"), 1);
    assert_eq!(second.calls_of("echo"), 3);
}

#[tokio::test]
async fn a_crashed_server_is_restarted_by_the_host_and_its_lists_are_read_again() {
    let command =
        serde_json::to_string(&bin_path("sb-fixture-server").display().to_string()).unwrap();
    let text = format!(
        r#"{{ "mcpServers": {{ "fx": {{
            "command": {command}, "args": ["--crash-after", "1"],
            "switchboard": {{ "reconnect": {{ "initialBackoffMs": 10 }}, "healthCheck": {{ "intervalMs": 0 }} }}
        }} }} }}"#
    );
    let config = parse_config(&text, None, &|_| None).unwrap();
    let host = tokio::time::timeout(
        Duration::from_secs(30),
        Host::connect(&config, HostOptions::default()),
    )
    .await
    .unwrap();
    let slow = host.resolve_tool("fx/slow").await.unwrap();
    host.call_tool(&slow, json!({"ms": 0}), CallOptions::default())
        .await
        .unwrap();
    let error = host
        .call_tool(&slow, json!({"ms": 0}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("connection was lost during tools/call"),
        "{error}"
    );
    let result = host
        .call_tool(&slow, json!({"ms": 0}), CallOptions::default())
        .await
        .unwrap();
    assert!(!result.is_error);
    let health = &host.health()[0];
    assert_eq!(health.stats.reconnects, 1);
    // The restarted server's tools are listed again (the reconnection invalidated the cache).
    let (tools, errors) = host.tools(Some("fx")).await.unwrap();
    assert!(errors.is_empty());
    assert_eq!(tools.len(), FIXTURE_TOOLS.len());
    host.shutdown().await;
}

async fn modern_host_listing_with_ttl(list_ttl_ms: Option<u64>) -> (Host, Arc<Journal>) {
    modern_host_listing(
        FixtureOptions {
            list_ttl_ms,
            ..FixtureOptions::default()
        },
        HostOptions::default(),
    )
    .await
}

async fn modern_host_listing(
    fixture: FixtureOptions,
    options: HostOptions,
) -> (Host, Arc<Journal>) {
    let journal = Journal::new();
    let (reader, writer) = serve_in_memory(FixtureOptions {
        journal: Some(journal.clone()),
        ..fixture
    });
    let connect = ConnectOptions {
        era: switchboard_client::EraPreference::Modern,
        ..ConnectOptions::default()
    };
    let connection = Connection::connect_io(name("fx"), reader, writer, &connect)
        .await
        .unwrap();
    (Host::from_connections(vec![connection], options), journal)
}

fn listings(journal: &Journal) -> usize {
    journal
        .entries()
        .iter()
        .filter(|e| matches!(e, test_support::fixture::JournalEntry::ListedTools))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_tool_list_with_ttl_ms_is_reused_until_it_goes_stale() {
    let (host, journal) = modern_host_listing_with_ttl(Some(5_000)).await;
    host.tools(Some("fx")).await.unwrap();
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 1, "fresh for 5 s");
    tokio::time::advance(Duration::from_millis(5_001)).await;
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 2, "stale after ttlMs");
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 2, "fresh again");
}

#[tokio::test(start_paused = true)]
async fn a_tool_list_with_ttl_ms_zero_is_kept_while_the_server_announces_changes() {
    // The fixture declares tools.listChanged, so the list stays until a notification.
    let (host, journal) = modern_host_listing_with_ttl(Some(0)).await;
    host.tools(Some("fx")).await.unwrap();
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 1);
}

/// `ttlMs: 0` from a server that does not announce changes: no caching at all.
fn unannounced_ttl_zero() -> FixtureOptions {
    FixtureOptions {
        list_ttl_ms: Some(0),
        unannounced_changes: true,
        ..FixtureOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_tool_list_with_ttl_ms_zero_and_no_announcements_is_listed_every_time() {
    let (host, journal) = modern_host_listing(unannounced_ttl_zero(), HostOptions::default()).await;
    host.tools(Some("fx")).await.unwrap();
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 2);
}

#[tokio::test(start_paused = true)]
async fn list_reuse_keeps_a_list_the_server_asks_not_to_keep_that_long() {
    let options = HostOptions {
        list_reuse: Duration::from_secs(1),
        ..HostOptions::default()
    };
    let (host, journal) = modern_host_listing(unannounced_ttl_zero(), options).await;
    host.tools(Some("fx")).await.unwrap();
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 1, "reused within the second");
    tokio::time::advance(Duration::from_millis(1_001)).await;
    host.tools(Some("fx")).await.unwrap();
    assert_eq!(listings(&journal), 2, "listed again after it");
}

#[tokio::test(start_paused = true)]
async fn servers_are_checked_periodically_at_their_interval() {
    let mut periodic = settings();
    periodic.health_check.interval = Duration::from_secs(10);
    let host = Host::from_resilient(
        vec![vec![
            replica("a", FixtureOptions::default(), periodic).await,
        ]],
        HostOptions::default(),
    );
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(host.health()[0].status, HealthStatus::Unknown, "not yet");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(host.health()[0].status, HealthStatus::Healthy);
    assert!(host.health()[0].latency.is_some());
}

#[tokio::test]
async fn a_server_that_answers_garbage_is_reported_down_within_its_own_connect_timeout() {
    let command =
        serde_json::to_string(&bin_path("sb-fixture-server").display().to_string()).unwrap();
    let text = format!(
        r#"{{ "mcpServers": {{
            "good": {{ "command": {command} }},
            "garbled": {{ "command": {command}, "args": ["--mode", "garbage"],
                          "switchboard": {{ "connectTimeoutMs": 1000 }} }}
        }} }}"#
    );
    let config = parse_config(&text, None, &|_| None).unwrap();
    let started = std::time::Instant::now();
    let host = tokio::time::timeout(
        Duration::from_secs(20),
        Host::connect(&config, HostOptions::default()),
    )
    .await
    .unwrap();
    // The default connect timeout is 30 s; the entry's own 1 s applies.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let available = host.available_tools().await;
    let servers: Vec<&str> = available.tools.iter().map(|t| t.server.as_str()).collect();
    assert_eq!(servers, ["good"; FIXTURE_TOOLS.len()]);
    assert_eq!(available.unavailable.len(), 1);
    let (server, reason) = &available.unavailable[0];
    assert_eq!(server.as_str(), "garbled");
    assert!(reason.contains("not JSON-RPC"), "{reason}");
    let health = host.health();
    assert!(matches!(health[1].status, HealthStatus::Down { .. }));
    host.shutdown().await;
}
