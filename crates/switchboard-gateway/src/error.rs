//! The gateway's local error type, and the one mapping from upstream failures to wire errors.

use switchboard_client::ErrorClass;
use switchboard_host::HostError;
use switchboard_server::HandlerError;

/// Why the gateway could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The config file is wrong; the message names the key.
    #[error("{file}: {message}")]
    Config { file: String, message: String },

    /// `[security]` could not be set up (a JWKS, Redis or the audit log); the gateway does
    /// not start without it.
    #[error("{0}; the gateway does not start without its security")]
    Security(String),

    /// The front could not be built (a name the server kit refuses).
    #[error("the gateway's server could not be built: {0}")]
    Build(#[from] switchboard_server::BuildError),

    #[error("could not listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("the {front} front failed: {source}")]
    Serve {
        front: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The label of a failure in metrics and logs (`errors_total{class=...}`).
pub(crate) fn host_error_class(error: &HostError) -> &'static str {
    match error {
        HostError::Client(client) => match client.class() {
            ErrorClass::Connection => "connection",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Rpc => "rpc",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Config => "config",
        },
        HostError::InvalidArguments { .. } | HostError::ArgumentsNotAnObject { .. } => {
            "invalid_arguments"
        }
        HostError::ServerUnavailable { .. } => "unavailable",
        _ => "not_found",
    }
}

/// Whether a request may be sent again without harm: a read, a list, or a tool that says it
/// is read-only or idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeatable {
    Yes,
    No,
}

/// How an upstream failure reaches the gateway's client (see the error table in the design):
/// - the upstream's own JSON-RPC error is passed on as it is;
/// - an upstream that cannot be reached is transient trouble: `-32000`, retryable;
/// - an upstream lost or timed out while it had the request is `-32000` too, but retryable
///   only when the request is [`Repeatable`]: the call may have run;
/// - arguments that fail the tool's schema are `-32602` with every violation;
/// - an upstream that broke the protocol is `-32603`.
pub(crate) fn to_handler_error(error: HostError, repeatable: Repeatable) -> HandlerError {
    match error {
        HostError::Client(switchboard_client::ClientError::Rpc {
            code,
            message,
            data,
            ..
        }) => HandlerError::Rpc {
            code,
            message,
            data: data.map(|d| *d),
        },
        HostError::Client(
            client @ (switchboard_client::ClientError::ConnectionLost { .. }
            | switchboard_client::ClientError::RequestTimeout { .. }),
        ) if repeatable == Repeatable::No => HandlerError::Rpc {
            code: -32000,
            message: format!(
                "{client}; the call may have run, so it is not safe to repeat blindly"
            ),
            data: Some(serde_json::json!({"retryable": false})),
        },
        HostError::Client(client) => match client.class() {
            ErrorClass::Connection | ErrorClass::Timeout => HandlerError::Transient {
                message: client.to_string(),
                retry_after_ms: Some(1000),
            },
            ErrorClass::Rpc | ErrorClass::Protocol | ErrorClass::Config => {
                HandlerError::Internal(client.to_string())
            }
        },
        HostError::ServerUnavailable { .. } => HandlerError::Transient {
            message: error.to_string(),
            retry_after_ms: Some(5000),
        },
        HostError::InvalidArguments { violations, .. } => HandlerError::InvalidArguments {
            violations: violations
                .into_iter()
                .map(|v| switchboard_server::Violation {
                    pointer: v.pointer,
                    message: v.message,
                })
                .collect(),
        },
        other => HandlerError::NotFound {
            message: other.to_string(),
            data: serde_json::Value::Null,
        },
    }
}
