//! Answering the server: elicitation, sampling and roots.
//!
//! A server may need something from the client before it can finish a request: the user's answer
//! to a form (`elicitation/create`), a completion from the client's model
//! (`sampling/createMessage`), or the client's roots (`roots/list`). In a legacy session it sends
//! these as JSON-RPC requests of its own; in the 2026-07-28 revision it answers the call with an
//! `input_required` result that lists them, and the client sends the call again with the answers
//! (SEP-2322, multi round-trip requests). A [`ClientCallbacks`] implementation in
//! [`crate::ConnectOptions::callbacks`] answers both the same way, and the client declares
//! exactly the capabilities it names, so a server never asks for what cannot be answered.
//!
//! ```
//! use switchboard_client::callbacks::{
//!     CallbackError, CallbackFuture, Callbacks, ClientCallbacks, ElicitationRequest,
//!     ElicitationResponse,
//! };
//!
//! /// Accepts every form with the defaults its schema gives.
//! #[derive(Debug)]
//! struct AcceptDefaults;
//!
//! impl ClientCallbacks for AcceptDefaults {
//!     fn supported(&self) -> Callbacks {
//!         Callbacks { elicitation: true, ..Callbacks::default() }
//!     }
//!
//!     fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
//!         Box::pin(async move { Ok(ElicitationResponse::accept(request.defaults())) })
//!     }
//! }
//!
//! let request = ElicitationRequest::from_json(serde_json::json!({
//!     "message": "Who are you?",
//!     "requestedSchema": {"type": "object", "properties": {"name": {"type": "string", "default": "Ada"}}}
//! }))
//! .unwrap();
//! assert_eq!(request.defaults()["name"], "Ada");
//! ```

use std::{fmt, future::Future, pin::Pin};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::model::Content;

/// The future a callback returns. Callbacks may wait on a person, so they are not bounded here;
/// the request that needed them keeps its own timeout.
pub type CallbackFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, CallbackError>> + Send + 'a>>;

/// Which server requests a [`ClientCallbacks`] answers. Each one set is declared to the server
/// as a client capability (`elicitation`, `sampling`, `roots`); the others are not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Callbacks {
    /// `elicitation/create` in form mode: [`ClientCallbacks::elicit`].
    pub elicitation: bool,
    /// `sampling/createMessage`: [`ClientCallbacks::sample`].
    pub sampling: bool,
    /// `roots/list`: [`ClientCallbacks::roots`].
    pub roots: bool,
}

impl Callbacks {
    /// The `capabilities` object that declares these callbacks to a server.
    pub(crate) fn capabilities(self) -> Value {
        let mut capabilities = Map::new();
        if self.elicitation {
            capabilities.insert("elicitation".into(), json!({"form": {}}));
        }
        if self.sampling {
            capabilities.insert("sampling".into(), json!({}));
        }
        if self.roots {
            capabilities.insert("roots".into(), json!({}));
        }
        Value::Object(capabilities)
    }
}

/// How a client answers what a server asks of it. Implement the methods named in
/// [`ClientCallbacks::supported`]; the others are never called.
pub trait ClientCallbacks: Send + Sync + fmt::Debug {
    /// The requests this implementation answers.
    fn supported(&self) -> Callbacks;

    /// Ask the user to fill in a form. Declining or cancelling is an answer, not an error.
    fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
        let _ = request;
        Box::pin(async { Err(CallbackError::unsupported("elicitation/create")) })
    }

    /// Ask the client's model for one message.
    fn sample(&self, request: SamplingRequest) -> CallbackFuture<'_, SamplingResponse> {
        let _ = request;
        Box::pin(async { Err(CallbackError::unsupported("sampling/createMessage")) })
    }

    /// The client's roots: the directories or URIs the server may work within.
    fn roots(&self) -> CallbackFuture<'_, Vec<Root>> {
        Box::pin(async { Err(CallbackError::unsupported("roots/list")) })
    }
}

/// Passes on what a server sends during one call to whoever made that call: a gateway relays
/// it to its own client. Set it in [`crate::CallOptions::relay`].
///
/// - A 2026-07-28 server's `input_required` rounds for the call are answered here (with the
///   server's key for each request), not by the connection's [`ClientCallbacks`].
/// - A legacy server sends its requests and logs on the session, without saying which call
///   they belong to. While exactly one call with a relay is in flight on the connection, they
///   go to that relay; with several, a request is refused (it cannot be told apart, and the
///   wrong caller must never see it) and a log goes to the connection's events.
///
/// Answers and params are raw JSON, so a relay passes on fields this crate does not model.
pub trait CallRelay: Send + Sync + fmt::Debug {
    /// Answer one server request (`elicitation/create`, `sampling/createMessage`,
    /// `roots/list`) with its JSON result. `key` is the request's key in a 2026-07-28
    /// `inputRequests`; `None` for a legacy server request.
    fn answer<'a>(
        &'a self,
        key: Option<&'a str>,
        method: &'a str,
        params: Value,
    ) -> CallbackFuture<'a, Value>;

    /// A `notifications/message` log entry the server sent during the call.
    fn log(&self, message: crate::model::LogMessage) {
        let _ = message;
    }

    /// The server answered the call with a task (the 2026-07-28 tasks extension), which the
    /// client now follows to its end: a gateway starts its own task for its client here.
    /// Called once per call, before the first `tasks/get`.
    fn task_started(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Why a callback could not answer. It reaches the server as a JSON-RPC error (legacy era) or
/// ends the call (2026-07-28, where a request cannot be answered with an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallbackError {
    /// The JSON-RPC error code sent to a legacy server.
    pub code: i32,
    pub message: String,
}

impl CallbackError {
    /// A failure of ours (JSON-RPC internal error, -32603).
    pub fn new(message: impl Into<String>) -> Self {
        CallbackError {
            code: -32603,
            message: message.into(),
        }
    }

    /// The user refused a sampling request (the spec's code -1).
    pub fn rejected(message: impl Into<String>) -> Self {
        CallbackError {
            code: -1,
            message: message.into(),
        }
    }

    /// The method is not answered by this client (JSON-RPC method not found, -32601).
    pub fn unsupported(method: &str) -> Self {
        CallbackError {
            code: -32601,
            message: format!("this client does not answer {method}"),
        }
    }
}

/// An `elicitation/create` request: a message and, in form mode, the schema of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ElicitationRequest {
    pub message: String,
    /// The flat object schema of the form (form mode).
    pub requested_schema: Option<Value>,
    /// The page to open (URL mode), which this client does not declare.
    pub url: Option<String>,
    /// The request's params as sent.
    pub raw: Value,
}

impl ElicitationRequest {
    /// Parse the params of an `elicitation/create` request.
    pub fn from_json(raw: Value) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            #[serde(default)]
            message: String,
            #[serde(default)]
            requested_schema: Option<Value>,
            #[serde(default)]
            url: Option<String>,
        }
        let wire: Wire = serde_json::from_value(raw.clone())?;
        Ok(ElicitationRequest {
            message: wire.message,
            requested_schema: wire.requested_schema,
            url: wire.url,
            raw,
        })
    }

    /// The `default` of every property of the form that has one (SEP-1034), for pre-filling
    /// the form or for accepting it unchanged.
    pub fn defaults(&self) -> Map<String, Value> {
        self.requested_schema
            .as_ref()
            .and_then(|schema| schema.get("properties"))
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .filter_map(|(name, property)| {
                        property
                            .get("default")
                            .map(|default| (name.clone(), default.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What the user did with an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitationAction {
    Accept,
    Decline,
    Cancel,
}

/// The answer to an elicitation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElicitationResponse {
    pub action: ElicitationAction,
    /// The form's values (with `Accept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Map<String, Value>>,
}

impl ElicitationResponse {
    pub fn accept(content: Map<String, Value>) -> Self {
        ElicitationResponse {
            action: ElicitationAction::Accept,
            content: Some(content),
        }
    }

    pub fn decline() -> Self {
        ElicitationResponse {
            action: ElicitationAction::Decline,
            content: None,
        }
    }

    pub fn cancel() -> Self {
        ElicitationResponse {
            action: ElicitationAction::Cancel,
            content: None,
        }
    }
}

/// One message of a sampling request. `content` is kept as sent: one content block or, since
/// 2025-11-25, an array of them (text, image, audio, tool use and results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingMessage {
    pub role: String,
    pub content: Value,
}

/// A `sampling/createMessage` request.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRequest {
    pub messages: Vec<SamplingMessage>,
    pub max_tokens: u64,
    pub system_prompt: Option<String>,
    /// The request's params as sent (model preferences, temperature, tools, ...).
    pub raw: Value,
}

impl SamplingRequest {
    /// Parse the params of a `sampling/createMessage` request.
    pub fn from_json(raw: Value) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            #[serde(default)]
            messages: Vec<SamplingMessage>,
            #[serde(default)]
            max_tokens: u64,
            #[serde(default)]
            system_prompt: Option<String>,
        }
        let wire: Wire = serde_json::from_value(raw.clone())?;
        Ok(SamplingRequest {
            messages: wire.messages,
            max_tokens: wire.max_tokens,
            system_prompt: wire.system_prompt,
            raw,
        })
    }
}

/// The model's answer to a sampling request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingResponse {
    /// The model that answered.
    pub model: String,
    pub role: String,
    pub content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

impl SamplingResponse {
    /// A complete text answer from the assistant.
    pub fn text(model: impl Into<String>, text: impl Into<String>) -> Self {
        SamplingResponse {
            model: model.into(),
            role: "assistant".to_owned(),
            content: Content::Text { text: text.into() },
            stop_reason: Some("endTurn".to_owned()),
        }
    }
}

/// One root: a directory or URI the server may work within.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// A `file://` URI.
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The methods a server may ask the client, by their wire names.
pub(crate) mod method {
    pub const ELICITATION: &str = "elicitation/create";
    pub const SAMPLING: &str = "sampling/createMessage";
    pub const ROOTS: &str = "roots/list";
}

/// Answer one server request (`method` with `params`) through `callbacks`, as the JSON result
/// the server expects. Used for legacy requests and for 2026-07-28 `inputRequests` alike.
pub(crate) async fn answer(
    callbacks: &dyn ClientCallbacks,
    method: &str,
    params: Value,
) -> Result<Value, CallbackError> {
    let supported = callbacks.supported();
    let malformed = |e: serde_json::Error| CallbackError {
        code: -32602,
        message: format!("invalid {method} params: {e}"),
    };
    let encoded = |value: Result<Value, serde_json::Error>| {
        value.map_err(|e| CallbackError::new(format!("could not encode the answer: {e}")))
    };
    match method {
        method::ELICITATION if supported.elicitation => {
            let request = ElicitationRequest::from_json(params).map_err(malformed)?;
            if request.url.is_some() && request.requested_schema.is_none() {
                return Err(CallbackError {
                    code: -32602,
                    message: "URL-mode elicitation is not supported by this client".to_owned(),
                });
            }
            encoded(serde_json::to_value(callbacks.elicit(request).await?))
        }
        method::SAMPLING if supported.sampling => {
            let request = SamplingRequest::from_json(params).map_err(malformed)?;
            encoded(serde_json::to_value(callbacks.sample(request).await?))
        }
        method::ROOTS if supported.roots => {
            let roots = callbacks.roots().await?;
            Ok(json!({ "roots": roots }))
        }
        other => Err(CallbackError::unsupported(other)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Everything;

    impl ClientCallbacks for Everything {
        fn supported(&self) -> Callbacks {
            Callbacks {
                elicitation: true,
                sampling: true,
                roots: true,
            }
        }
        fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
            Box::pin(async move { Ok(ElicitationResponse::accept(request.defaults())) })
        }
        fn sample(&self, request: SamplingRequest) -> CallbackFuture<'_, SamplingResponse> {
            Box::pin(async move {
                Ok(SamplingResponse::text(
                    "test-model",
                    format!("{} messages", request.messages.len()),
                ))
            })
        }
        fn roots(&self) -> CallbackFuture<'_, Vec<Root>> {
            Box::pin(async {
                Ok(vec![Root {
                    uri: "file:///work".into(),
                    name: Some("work".into()),
                }])
            })
        }
    }

    #[derive(Debug)]
    struct Nothing;

    impl ClientCallbacks for Nothing {
        fn supported(&self) -> Callbacks {
            Callbacks::default()
        }
    }

    #[test]
    fn defaults_are_taken_from_every_property_that_has_one() {
        let request = ElicitationRequest::from_json(json!({
            "message": "m",
            "requestedSchema": {"type": "object", "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "verified": {"type": "boolean", "default": true},
                "status": {"type": "string", "enum": ["active", "inactive"], "default": "active"},
                "nickname": {"type": "string"}
            }}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(request.defaults()),
            json!({"name": "John Doe", "age": 30, "score": 95.5, "verified": true, "status": "active"})
        );
    }

    #[test]
    fn only_declared_callbacks_become_capabilities() {
        assert_eq!(Callbacks::default().capabilities(), json!({}));
        assert_eq!(
            Everything.supported().capabilities(),
            json!({"elicitation": {"form": {}}, "sampling": {}, "roots": {}})
        );
    }

    #[tokio::test]
    async fn answers_have_the_wire_shape_of_each_result() {
        let elicited = answer(
            &Everything,
            "elicitation/create",
            json!({"message": "m", "requestedSchema": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}}),
        )
        .await
        .unwrap();
        assert_eq!(elicited, json!({"action": "accept", "content": {"a": "x"}}));
        let sampled = answer(
            &Everything,
            "sampling/createMessage",
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}], "maxTokens": 10}),
        )
        .await
        .unwrap();
        assert_eq!(
            sampled,
            json!({"model": "test-model", "role": "assistant", "content": {"type": "text", "text": "1 messages"}, "stopReason": "endTurn"})
        );
        let roots = answer(&Everything, "roots/list", json!({})).await.unwrap();
        assert_eq!(
            roots,
            json!({"roots": [{"uri": "file:///work", "name": "work"}]})
        );
    }

    #[tokio::test]
    async fn an_undeclared_request_is_method_not_found() {
        let error = answer(&Nothing, "sampling/createMessage", json!({}))
            .await
            .unwrap_err();
        assert_eq!(error.code, -32601);
        assert!(error.message.contains("sampling/createMessage"));
    }
}
