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

use std::sync::OnceLock;

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
