//! What the gateway measures, in Prometheus format at `/metrics` (the `metrics` crate, with
//! `metrics-exporter-prometheus` as the recorder).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `gateway_http_requests_total` | `status` | HTTP requests answered by the front |
//! | `gateway_http_request_duration_seconds` | | time to the response head |
//! | `gateway_calls_total` | `server`, `tool`, `outcome` (`ok`, `tool_error`, `error`) | forwarded tool calls |
//! | `gateway_call_duration_seconds` | `server`, `tool` | latency of forwarded tool calls |
//! | `gateway_upstream_requests_total` | `server`, `method` | every forwarded request (lists, reads, prompts, calls) |
//! | `gateway_errors_total` | `server`, `class` | failures by class: `connection`, `timeout`, `rpc`, `protocol`, `config`, `invalid_arguments`, `not_found`, `unavailable`, `overloaded` |
//! | `gateway_rejected_total` | `reason` | requests the front refused (`host_or_origin`, `body_too_large`, `too_deep`, `client_in_flight`) |
//! | `gateway_upstream_up` | `server` | 1 when calls to the upstream can be expected to work, else 0 (updated by `/readyz` and `/metrics`) |
//! | `gateway_sessions_forwarded_total` | | requests for a legacy session another replica holds, sent on to it |
//! | `gateway_replica_forwarded_total` | | 2026-07-28 requests for a task or parked call another replica holds, sent on to it |
//! | `gateway_upstream_breaker_state` | `server`, `state` (`closed`, `open`, `half-open`, `disabled`) | 1 for the upstream's current breaker state |

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, PoisonError, RwLock},
};

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "gateway_http_requests_total";
pub const HTTP_DURATION: &str = "gateway_http_request_duration_seconds";
pub const CALLS: &str = "gateway_calls_total";
pub const CALL_DURATION: &str = "gateway_call_duration_seconds";
pub const UPSTREAM_REQUESTS: &str = "gateway_upstream_requests_total";
pub const ERRORS: &str = "gateway_errors_total";
pub const REJECTED: &str = "gateway_rejected_total";
pub const UPSTREAM_UP: &str = "gateway_upstream_up";
pub const UPSTREAM_BREAKER: &str = "gateway_upstream_breaker_state";
/// Requests for a legacy session owned by another replica, forwarded to it.
pub const SESSIONS_FORWARDED: &str = "gateway_sessions_forwarded_total";
/// 2026-07-28 requests for a task or a parked call held by another replica, forwarded to it.
pub const REPLICA_FORWARDED: &str = "gateway_replica_forwarded_total";

/// Histogram buckets, in seconds: from a fast local call to a slow remote one.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` when another recorder
/// was installed first (then `/metrics` says so).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// The handles of one upstream tool's call metrics. Naming a labelled metric builds its key
/// (the label strings with it) and looks the key up in the recorder, several times per
/// forwarded call; these are looked up once per tool instead.
#[derive(Debug)]
pub struct ToolMetrics {
    /// `gateway_upstream_requests_total{server, method="tools/call"}`.
    pub requests: Counter,
    /// `gateway_call_duration_seconds{server, tool}`.
    pub duration: Histogram,
    ok: Counter,
    tool_error: Counter,
    error: Counter,
}

/// A forwarded call's outcome, the `outcome` label of `gateway_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    ToolError,
    Error,
}

impl CallOutcome {
    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::ToolError => "tool_error",
            CallOutcome::Error => "error",
        }
    }
}

impl ToolMetrics {
    fn new(server: &str, tool: &str) -> ToolMetrics {
        let calls = |outcome: CallOutcome| metrics::counter!(CALLS, "server" => server.to_owned(), "tool" => tool.to_owned(), "outcome" => outcome.label());
        ToolMetrics {
            requests: metrics::counter!(UPSTREAM_REQUESTS, "server" => server.to_owned(), "method" => "tools/call"),
            duration: metrics::histogram!(CALL_DURATION, "server" => server.to_owned(), "tool" => tool.to_owned()),
            ok: calls(CallOutcome::Ok),
            tool_error: calls(CallOutcome::ToolError),
            error: calls(CallOutcome::Error),
        }
    }

    /// `gateway_calls_total{server, tool, outcome}`.
    pub fn calls(&self, outcome: CallOutcome) -> &Counter {
        match outcome {
            CallOutcome::Ok => &self.ok,
            CallOutcome::ToolError => &self.tool_error,
            CallOutcome::Error => &self.error,
        }
    }
}

/// [`ToolMetrics`] by server and tool, made on a tool's first call. Holds only tools that were
/// found and called, as the recorder's own series do. Make it after the recorder is installed
/// ([`handle`]): a handle made before is a no-op for good.
#[derive(Debug, Default)]
pub struct ToolMetricsCache {
    servers: RwLock<HashMap<String, HashMap<String, Arc<ToolMetrics>>>>,
}

impl ToolMetricsCache {
    pub fn get(&self, server: &str, tool: &str) -> Arc<ToolMetrics> {
        let found = self
            .servers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(server)
            .and_then(|tools| tools.get(tool))
            .cloned();
        if let Some(found) = found {
            return found;
        }
        let made = Arc::new(ToolMetrics::new(server, tool));
        self.servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(server.to_owned())
            .or_default()
            .entry(tool.to_owned())
            .or_insert(made)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tools_handles_are_made_once_and_kept_apart_from_other_tools() {
        let cache = ToolMetricsCache::default();
        let first = cache.get("fx", "echo");
        assert!(Arc::ptr_eq(&first, &cache.get("fx", "echo")));
        assert!(!Arc::ptr_eq(&first, &cache.get("fx", "add")));
        assert!(!Arc::ptr_eq(&first, &cache.get("other", "echo")));
    }

    #[test]
    fn the_handles_count_under_the_tools_labels() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let cache = ToolMetricsCache::default();
            let echo = cache.get("fx", "echo");
            echo.requests.increment(1);
            echo.calls(CallOutcome::ToolError).increment(1);
            cache
                .get("fx", "echo")
                .calls(CallOutcome::ToolError)
                .increment(1);
            echo.duration.record(0.002);
        });
        let text = handle.render();
        for expected in [
            r#"gateway_upstream_requests_total{server="fx",method="tools/call"} 1"#,
            r#"gateway_calls_total{server="fx",tool="echo",outcome="tool_error"} 2"#,
            r#"gateway_calls_total{server="fx",tool="echo",outcome="ok"} 0"#,
            r#"gateway_call_duration_seconds_count{server="fx",tool="echo"} 1"#,
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
