//! Errors a handler returns, and how each reaches the wire.

use serde::Serialize;
use serde_json::json;

use crate::{
    input::InputRequired,
    wire::{ErrorObject, code},
};

/// One way the arguments break the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer to the offending value ("" for the whole object).
    pub pointer: String,
    pub message: String,
}

/// A failure that is not the tool's own result. A domain failure (unknown id, over budget)
/// is not an error: return [`crate::ToolOutput::error`] so the model can read it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The arguments are wrong: `-32602` with each violation in `data`.
    #[error("invalid arguments: {}", violations.iter().map(|v| format!("{}: {}", v.pointer, v.message)).collect::<Vec<_>>().join("; "))]
    InvalidArguments { violations: Vec<Violation> },
    /// Something the caller named does not exist (a resource URI, a prompt): `-32602`.
    #[error("{message}")]
    NotFound {
        message: String,
        data: serde_json::Value,
    },
    /// Temporary trouble (a locked database, an upstream timeout): `-32000` with
    /// `retryable: true` so clients may try again.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// A bug or an unexpected failure: `-32603`. The message is shown to the client, so it
    /// must not contain secrets.
    #[error("{0}")]
    Internal(String),
    /// A 2026-07-28 handler needs input from the client before it can finish. Made by
    /// [`crate::RequestContext::input`]: return it with `?`, and the kit answers the call with an
    /// `input_required` result. (Anywhere else it reaches the client as `-32603`.)
    #[error("{0}")]
    InputRequired(InputRequired),
    /// The handler asked the client for input that the client's capabilities do not cover:
    /// `-32021` with `requiredCapabilities`.
    #[error("the client did not declare the {capability} capability")]
    MissingClientCapability { capability: String },
    /// The client's answer to an input request has the wrong shape: `-32602`.
    #[error("inputResponses.{key}: {message}")]
    InvalidInputResponse { key: String, message: String },
    /// A request to a legacy client failed: it answered with an error, did not answer in time,
    /// or went away: `-32603`.
    #[error("{method} failed: {message}")]
    ClientRequestFailed { method: String, message: String },
    /// A JSON-RPC error to pass on as it is: a gateway forwarding an upstream's error answer.
    #[error("{message}")]
    Rpc {
        code: i64,
        message: String,
        data: Option<serde_json::Value>,
    },
}

impl HandlerError {
    /// One violation at `pointer`.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError::InvalidArguments {
            violations: vec![Violation {
                pointer: pointer.into(),
                message: message.into(),
            }],
        }
    }

    pub fn to_wire(&self) -> ErrorObject {
        match self {
            HandlerError::InvalidArguments { violations } => {
                ErrorObject::new(code::INVALID_PARAMS, self.to_string())
                    .with_data(json!({ "violations": violations }))
            }
            HandlerError::NotFound { message, data } => {
                ErrorObject::new(code::INVALID_PARAMS, message.clone()).with_data(data.clone())
            }
            HandlerError::Transient {
                message,
                retry_after_ms,
            } => ErrorObject::new(code::SERVER_ERROR, message.clone())
                .with_data(json!({ "retryable": true, "retry_after_ms": retry_after_ms })),
            HandlerError::Internal(message) => ErrorObject::internal(message.clone()),
            HandlerError::InputRequired(required) => ErrorObject::internal(format!(
                "{required}, but only 2026-07-28 tools/call and prompts/get requests can ask for it"
            ))
            .with_data(json!({ "inputRequests": required.input_requests() })),
            HandlerError::MissingClientCapability { capability } => {
                ErrorObject::new(code::MISSING_CLIENT_CAPABILITY, self.to_string())
                    .with_data(json!({ "requiredCapabilities": { capability.as_str(): {} } }))
            }
            HandlerError::InvalidInputResponse { key, .. } => {
                ErrorObject::new(code::INVALID_PARAMS, self.to_string())
                    .with_data(json!({ "key": key }))
            }
            HandlerError::ClientRequestFailed { method, .. } => {
                ErrorObject::internal(self.to_string()).with_data(json!({ "method": method }))
            }
            HandlerError::Rpc {
                code,
                message,
                data,
            } => {
                let error = ErrorObject::new(*code, message.clone());
                match data {
                    Some(data) => error.with_data(data.clone()),
                    None => error,
                }
            }
        }
    }
}
