//! The client's local error type. [`ClientError::class`] is the single classification that the
//! CLI turns into exit codes and that resilience policies will key on.

use std::time::Duration;

use serde_json::Value;
use switchboard_config::ServerName;

/// Why a connection or a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("server \"{server}\": command \"{command}\" was not found on PATH{hint}")]
    CommandNotFound {
        server: ServerName,
        command: String,
        /// Extra advice, starting with "; " when present.
        hint: String,
    },

    #[error("server \"{server}\": could not start \"{command}\": {source}")]
    Spawn {
        server: ServerName,
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("server \"{server}\": no answer to the MCP handshake within {after:?}{diagnostics}")]
    ConnectTimeout {
        server: ServerName,
        after: Duration,
        /// What we saw while waiting (garbage on stdout, stderr tail), starting with "; ".
        diagnostics: String,
    },

    #[error("server \"{server}\": the MCP handshake failed: {reason}{diagnostics}")]
    Handshake {
        server: ServerName,
        reason: String,
        diagnostics: String,
    },

    #[error("server \"{server}\" speaks protocol revisions {} and we speak {}", theirs.join(", "), ours.join(", "))]
    NoCommonVersion {
        server: ServerName,
        ours: Vec<String>,
        theirs: Vec<String>,
    },

    #[error("server \"{server}\": the connection was lost during {method}{diagnostics}")]
    ConnectionLost {
        server: ServerName,
        method: &'static str,
        diagnostics: String,
    },

    #[error(
        "server \"{server}\": {method} got no answer within {after:?} (the request was cancelled)"
    )]
    RequestTimeout {
        server: ServerName,
        method: &'static str,
        after: Duration,
    },

    #[error("server \"{server}\" answered {method} with error {code}: {message}")]
    Rpc {
        server: ServerName,
        method: &'static str,
        code: i64,
        message: String,
        /// The error's `data`, boxed to keep the error small (it is rarely present).
        data: Option<Box<Value>>,
    },

    #[error("server \"{server}\": {method}: {detail}")]
    Protocol {
        server: ServerName,
        method: &'static str,
        detail: String,
    },

    #[error("server \"{server}\": invalid HTTP setting: {detail}")]
    InvalidHttpSetting { server: ServerName, detail: String },

    #[error("server \"{server}\" requires authorization, which failed: {reason}")]
    Authorization { server: ServerName, reason: String },

    /// The server's circuit breaker is open after repeated failures: the call was not sent.
    #[error("server \"{server}\" is failing, so calls to it are paused (circuit breaker open); {}", describe_retry_in(*retry_in))]
    CircuitOpen {
        server: ServerName,
        /// How long until the breaker lets a probe call through (zero: a probe is under way).
        retry_in: Duration,
    },
}

fn describe_retry_in(retry_in: Duration) -> String {
    if retry_in.is_zero() {
        "a probe call is checking whether it has recovered".to_owned()
    } else {
        format!(
            "the next call will be let through in {:.1} s",
            retry_in.as_secs_f64()
        )
    }
}

/// The broad kind of a [`ClientError`], for exit codes and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The server could not be started or reached, or the connection broke.
    Connection,
    /// The server did not answer in time.
    Timeout,
    /// The server answered with a JSON-RPC error.
    Rpc,
    /// The server broke the protocol (malformed or unexpected messages).
    Protocol,
    /// Our own configuration for this server is unusable.
    Config,
}

impl ClientError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ClientError::CommandNotFound { .. } | ClientError::InvalidHttpSetting { .. } => {
                ErrorClass::Config
            }
            ClientError::Spawn { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::Authorization { .. }
            | ClientError::CircuitOpen { .. } => ErrorClass::Connection,
            ClientError::ConnectTimeout { .. } | ClientError::RequestTimeout { .. } => {
                ErrorClass::Timeout
            }
            ClientError::Rpc { .. } => ErrorClass::Rpc,
            ClientError::Handshake { .. }
            | ClientError::NoCommonVersion { .. }
            | ClientError::Protocol { .. } => ErrorClass::Protocol,
        }
    }

    /// The server this error concerns.
    pub fn server(&self) -> &ServerName {
        match self {
            ClientError::CommandNotFound { server, .. }
            | ClientError::Spawn { server, .. }
            | ClientError::ConnectTimeout { server, .. }
            | ClientError::Handshake { server, .. }
            | ClientError::NoCommonVersion { server, .. }
            | ClientError::ConnectionLost { server, .. }
            | ClientError::RequestTimeout { server, .. }
            | ClientError::Rpc { server, .. }
            | ClientError::Protocol { server, .. }
            | ClientError::InvalidHttpSetting { server, .. }
            | ClientError::Authorization { server, .. }
            | ClientError::CircuitOpen { server, .. } => server,
        }
    }
}
