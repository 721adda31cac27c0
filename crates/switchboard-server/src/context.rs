//! What a handler can do besides returning: report progress, log, notice cancellation.

use std::sync::Arc;

use serde_json::{Value, json, value::RawValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::wire;

/// Outgoing messages queued for a transport before handlers wait.
pub const OUTBOUND_QUEUE: usize = 256;

/// Which era a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: the request carried its own `_meta` (protocol version, capabilities).
    Modern,
    /// A session opened with `initialize`.
    Legacy,
}

/// Where a request's notifications go: stdout for stdio, the request's SSE stream for HTTP.
pub type Outbound = mpsc::Sender<Vec<u8>>;

/// Handed to every tool, resource and prompt handler.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub(crate) era: Era,
    pub(crate) progress_token: Option<Arc<RawValue>>,
    pub(crate) outbound: Option<Outbound>,
    pub(crate) cancelled: CancellationToken,
    pub(crate) client_capabilities: Option<Arc<Value>>,
    /// The least severe level the client wants to hear; `None`: it asked for no logs.
    pub(crate) log_level: Option<LogLevel>,
}

/// Syslog severities, as MCP names them, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            "alert" => LogLevel::Alert,
            "emergency" => LogLevel::Emergency,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }
}

impl RequestContext {
    /// A context for calling a handler outside a session (tests, benchmarks, embedding).
    pub fn detached() -> Self {
        RequestContext {
            era: Era::Modern,
            progress_token: None,
            outbound: None,
            cancelled: CancellationToken::new(),
            client_capabilities: None,
            log_level: None,
        }
    }

    pub fn era(&self) -> Era {
        self.era
    }

    /// Whether the client cancelled this request (`notifications/cancelled`). Long handlers
    /// should check it, or select on [`Self::cancellation`].
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancelled
    }

    /// The capabilities the client declared, as sent.
    pub fn client_capabilities(&self) -> Option<&Value> {
        self.client_capabilities.as_deref()
    }

    /// Send `notifications/progress`, if the client asked for progress on this request.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let (Some(token), Some(outbound)) = (&self.progress_token, &self.outbound) else {
            return;
        };
        let mut params = json!({ "progressToken": serde_json::from_str::<Value>(token.get()).unwrap_or(Value::Null), "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        let mut bytes = Vec::with_capacity(128);
        wire::write_notification(&mut bytes, "notifications/progress", &params);
        let _ = outbound.send(bytes).await;
    }

    /// Send a `notifications/message` log entry to the client, if it asked for that level:
    /// with `logging/setLevel` in a legacy session (every level until it does), or with
    /// `io.modelcontextprotocol/logLevel` in a 2026-07-28 request's `_meta` (none otherwise).
    pub async fn log(&self, level: LogLevel, data: Value) {
        let Some(outbound) = &self.outbound else {
            return;
        };
        if self.log_level.is_none_or(|least| level < least) {
            return;
        }
        let mut bytes = Vec::with_capacity(128);
        wire::write_notification(
            &mut bytes,
            "notifications/message",
            &json!({"level": level.name(), "data": data}),
        );
        let _ = outbound.send(bytes).await;
    }
}
