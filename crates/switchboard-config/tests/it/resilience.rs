//! The entry's `"switchboard"` object: defaults, every knob, and errors with positions.

use std::time::Duration;

use switchboard_config::{ConfigError, Resilience};

use crate::{chain, line_column, parse_err, parse_ok};

#[test]
fn an_entry_without_settings_gets_the_documented_defaults() {
    let config = parse_ok(r#"{ "mcpServers": { "a": { "command": "x" } } }"#);
    let settings = &config.servers["a"].resilience;
    assert_eq!(settings, &Resilience::default());
    assert_eq!(settings.connect_timeout, None);
    assert_eq!(settings.request_timeout, None);
    assert_eq!(settings.retry.max_attempts, 3);
    assert_eq!(settings.retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(settings.retry.max_backoff, Duration::from_secs(10));
    assert_eq!(settings.retry.budget_percent, 20);
    assert_eq!(settings.retry.min_retries_per_second, 10);
    assert_eq!(settings.circuit_breaker.failure_threshold, 5);
    assert_eq!(
        settings.circuit_breaker.open_duration,
        Duration::from_secs(30)
    );
    assert_eq!(settings.circuit_breaker.half_open_probes, 1);
    assert_eq!(settings.rate_limit, None);
    assert_eq!(settings.reconnect.max_attempts, 5);
    assert_eq!(
        settings.reconnect.initial_backoff,
        Duration::from_millis(200)
    );
    assert_eq!(settings.reconnect.max_backoff, Duration::from_secs(30));
    assert_eq!(settings.health_check.interval, Duration::from_secs(30));
    assert_eq!(settings.health_check.timeout, Duration::from_secs(5));
    assert!(settings.replicas.is_empty());
    assert!(settings.tools.is_empty());
}

#[test]
fn every_knob_is_read() {
    let config = parse_ok(
        r#"{ "mcpServers": { "search": {
            "url": "https://a.example.com/mcp",
            "alwaysAllow": ["x"],
            "switchboard": {
                "connectTimeoutMs": 5000,
                "requestTimeoutMs": 20000,
                "retry": { "maxAttempts": 4, "initialBackoffMs": 50, "maxBackoffMs": 800,
                           "budgetPercent": 10, "minRetriesPerSecond": 2 },
                "circuitBreaker": { "failureThreshold": 3, "openMs": 10000, "halfOpenProbes": 2 },
                "rateLimit": { "requestsPerSecond": 5 },
                "reconnect": { "maxAttempts": 0, "initialBackoffMs": 10, "maxBackoffMs": 20 },
                "healthCheck": { "intervalMs": 0, "timeoutMs": 1000 },
                "replicas": ["https://b.example.com/mcp"],
                "tools": {
                    "lookup": { "timeoutMs": 2000, "idempotent": true, "cacheTtlMs": 60000 },
                    "write": { "idempotent": false }
                }
            }
        } } }"#,
    );
    let s = &config.servers["search"].resilience;
    assert_eq!(s.connect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(s.request_timeout, Some(Duration::from_secs(20)));
    assert_eq!(
        (
            s.retry.max_attempts,
            s.retry.initial_backoff,
            s.retry.max_backoff
        ),
        (4, Duration::from_millis(50), Duration::from_millis(800))
    );
    assert_eq!(
        (s.retry.budget_percent, s.retry.min_retries_per_second),
        (10, 2)
    );
    assert_eq!(s.circuit_breaker.failure_threshold, 3);
    assert_eq!(s.circuit_breaker.open_duration, Duration::from_secs(10));
    assert_eq!(s.circuit_breaker.half_open_probes, 2);
    let limit = s.rate_limit.unwrap();
    assert_eq!((limit.requests_per_second.get(), limit.burst.get()), (5, 5));
    assert_eq!(s.reconnect.max_attempts, 0);
    assert_eq!(s.health_check.interval, Duration::ZERO);
    assert_eq!(s.replicas[0].as_str(), "https://b.example.com/mcp");
    let lookup = s.tool("lookup");
    assert_eq!(lookup.timeout, Some(Duration::from_secs(2)));
    assert_eq!(lookup.idempotent, Some(true));
    assert_eq!(lookup.cache_ttl, Some(Duration::from_secs(60)));
    assert_eq!(s.tool("write").idempotent, Some(false));
    assert_eq!(s.tool("other"), Default::default());
}

#[test]
fn a_misspelt_setting_is_an_error_that_lists_the_right_names() {
    let error = parse_err(
        r#"{ "mcpServers": { "a": { "command": "x",
  "switchboard": { "retry": { "maxAttemps": 2 } } } } }"#,
    );
    assert!(
        matches!(error, ConfigError::UnknownSetting { .. }),
        "{error:?}"
    );
    assert_eq!(line_column(&error), (2, 31));
    assert_eq!(
        chain(&error),
        r#"/home/a/mcp.json:2:31: server "a": unknown setting "switchboard.retry.maxAttemps"; expected one of: maxAttempts, initialBackoffMs, maxBackoffMs, budgetPercent, minRetriesPerSecond"#
    );
}

#[test]
fn wrong_types_and_ranges_point_at_the_value() {
    let error = parse_err(
        r#"{ "mcpServers": { "a": { "command": "x",
  "switchboard": { "requestTimeoutMs": "20s" } } } }"#,
    );
    assert_eq!(line_column(&error), (2, 40));
    assert_eq!(
        chain(&error),
        r#"/home/a/mcp.json:2:40: server "a": field "switchboard.requestTimeoutMs" must be a whole number, found a string"#
    );

    let error = parse_err(
        r#"{ "mcpServers": { "a": { "command": "x",
  "switchboard": { "retry": { "maxAttempts": 0 } } } } }"#,
    );
    assert_eq!(line_column(&error), (2, 46));
    assert_eq!(
        chain(&error),
        r#"/home/a/mcp.json:2:46: server "a": setting "switchboard.retry.maxAttempts" must be at least 1"#
    );

    let error = parse_err(
        r#"{ "mcpServers": { "a": { "command": "x",
  "switchboard": { "healthCheck": { "timeoutMs": 1.5 } } } } }"#,
    );
    assert!(matches!(error, ConfigError::WrongType { .. }), "{error:?}");
}

#[test]
fn replicas_are_only_for_remote_servers_and_must_share_the_scheme() {
    let error = parse_err(
        r#"{ "mcpServers": { "a": { "command": "x",
  "switchboard": { "replicas": ["https://b.example.com"] } } } }"#,
    );
    assert_eq!(line_column(&error), (2, 20));
    assert!(
        chain(&error).contains("only for servers with a \"url\""),
        "{}",
        chain(&error)
    );

    let error = parse_err(
        r#"{ "mcpServers": { "a": { "url": "https://a.example.com/mcp",
  "switchboard": { "replicas": ["ws://b.example.com"] } } } }"#,
    );
    assert_eq!(line_column(&error), (2, 33));
    assert!(chain(&error).contains("same scheme"), "{}", chain(&error));
}

#[test]
fn a_rate_limit_needs_its_rate() {
    let error = parse_err(
        r#"{ "mcpServers": { "a": { "command": "x",
  "switchboard": { "rateLimit": { "burst": 3 } } } } }"#,
    );
    assert!(
        chain(&error).contains("\"switchboard.rateLimit.requestsPerSecond\" is required"),
        "{}",
        chain(&error)
    );
}
