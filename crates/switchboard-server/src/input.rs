//! Asking the client for input (elicitation, sampling, roots) from inside a handler, in both
//! eras, through one call: [`crate::RequestContext::input`].
//!
//! - In a **legacy** session the kit sends a real JSON-RPC request to the client (on stdio's
//!   output, or on the SSE stream of the HTTP POST being answered) and waits for the response,
//!   which the client sends back as a message of its own. Ids are `"s-1"`, `"s-2"`, … per session,
//!   so they cannot clash with the client's.
//! - A **2026-07-28** handler cannot wait on the client (SEP-2322, multi round-trip requests).
//!   `input` looks the key up in the request's `inputResponses`; when it is not there, the handler
//!   stops with [`HandlerError::InputRequired`] and the kit answers `resultType: "input_required"`
//!   with every request it needs and a signed `requestState`. The client asks its user or model,
//!   then sends the same call again with `inputResponses` and the `requestState`; the handler
//!   runs again from the start and now finds its answers. Handlers must therefore be
//!   deterministic up to their first `input`, and keep what later rounds need in
//!   [`crate::RequestContext::set_state`].

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{context::Outbound, error::HandlerError, wire};

/// How long a legacy handler waits for the client to answer one input request (a person may be
/// typing an answer to an elicitation). Cancellation of the call ends the wait sooner.
pub const INPUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Something a handler needs from the client before it can finish.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InputRequest {
    /// `elicitation/create` with these params (`message`, `requestedSchema`, …): ask the user.
    /// The answer is an `ElicitResult`: `{"action": "accept"|"decline"|"cancel", "content": {…}}`.
    Elicitation(Value),
    /// `sampling/createMessage` with these params (`messages`, `maxTokens`, …): ask the
    /// client's model. The answer is a `CreateMessageResult` (`role`, `content`, `model`, …).
    Sampling(Value),
    /// `roots/list`: the client's roots. The answer is `{"roots": [{"uri", "name"?}, …]}`.
    Roots,
}

impl InputRequest {
    /// Ask the user to fill in a form: `requested_schema` is a flat object schema.
    pub fn elicitation(message: impl Into<String>, requested_schema: Value) -> Self {
        InputRequest::Elicitation(
            json!({"message": message.into(), "requestedSchema": requested_schema}),
        )
    }

    /// Ask the client's model one user message, in text.
    pub fn sampling_text(prompt: impl Into<String>, max_tokens: u32) -> Self {
        InputRequest::Sampling(json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt.into()}}],
            "maxTokens": max_tokens,
        }))
    }

    /// Ask for the client's roots.
    pub fn roots() -> Self {
        InputRequest::Roots
    }

    /// The JSON-RPC method of the request.
    pub fn method(&self) -> &'static str {
        match self {
            InputRequest::Elicitation(_) => "elicitation/create",
            InputRequest::Sampling(_) => "sampling/createMessage",
            InputRequest::Roots => "roots/list",
        }
    }

    /// The client capability that says the client can answer it.
    pub fn capability(&self) -> &'static str {
        match self {
            InputRequest::Elicitation(_) => "elicitation",
            InputRequest::Sampling(_) => "sampling",
            InputRequest::Roots => "roots",
        }
    }

    /// The params of the request.
    pub fn params(&self) -> Value {
        match self {
            InputRequest::Elicitation(params) | InputRequest::Sampling(params) => params.clone(),
            InputRequest::Roots => json!({}),
        }
    }

    /// Whether `answer` has the shape of this request's result; the reason when it does not.
    pub(crate) fn check_answer(&self, answer: &Value) -> Result<(), &'static str> {
        let Some(object) = answer.as_object() else {
            return Err("the answer must be a JSON object");
        };
        match self {
            InputRequest::Elicitation(_) => match object.get("action").and_then(Value::as_str) {
                Some("accept" | "decline" | "cancel") => Ok(()),
                _ => Err(
                    "an elicitation answer needs \"action\": \"accept\", \"decline\" or \"cancel\"",
                ),
            },
            InputRequest::Sampling(_) => {
                if object.get("role").is_some_and(Value::is_string)
                    && object.contains_key("content")
                {
                    Ok(())
                } else {
                    Err("a sampling answer needs \"role\" and \"content\"")
                }
            }
            InputRequest::Roots => {
                if object.get("roots").is_some_and(Value::is_array) {
                    Ok(())
                } else {
                    Err("a roots answer needs a \"roots\" array")
                }
            }
        }
    }
}

/// What a 2026-07-28 handler still needs from the client: the kit turns it into an
/// `input_required` result. Made by [`crate::RequestContext::input`]; pass it on with `?`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRequired {
    pub(crate) requests: BTreeMap<String, InputRequest>,
    /// The handler's state when it stopped, sealed into `requestState`.
    pub(crate) state: Option<Value>,
}

impl InputRequired {
    /// The keys of the requests, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.requests.keys().map(String::as_str)
    }

    /// The `inputRequests` object of the result.
    pub(crate) fn input_requests(&self) -> Value {
        Value::Object(
            self.requests
                .iter()
                .map(|(key, request)| {
                    (
                        key.clone(),
                        json!({"method": request.method(), "params": request.params()}),
                    )
                })
                .collect(),
        )
    }
}

impl std::fmt::Display for InputRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request needs input from the client first: {}",
            self.keys().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Where a handler's input comes from.
#[derive(Debug, Clone)]
pub(crate) enum InputSource {
    /// Nowhere: the reason, for the error.
    Unavailable(&'static str),
    /// A legacy session: ask the client with real requests.
    Client(Arc<ClientRequests>),
    /// A 2026-07-28 request: the `inputResponses` it carried (empty on the first round).
    Responses(Arc<HashMap<String, Value>>),
}

/// A client's answer to one of our requests.
type Answer = Result<Value, ClientErrorObject>;

#[derive(Debug, Deserialize)]
pub(crate) struct ClientErrorObject {
    code: i64,
    #[serde(default)]
    message: String,
}

/// The requests this server sent to the client of one legacy session and still waits on.
#[derive(Debug, Default)]
pub(crate) struct ClientRequests {
    next_id: AtomicU64,
    /// `None` once the session ended: nothing more can be asked.
    waiting: Mutex<Option<HashMap<String, oneshot::Sender<Answer>>>>,
}

impl ClientRequests {
    pub(crate) fn new() -> Self {
        ClientRequests {
            next_id: AtomicU64::new(1),
            waiting: Mutex::new(Some(HashMap::new())),
        }
    }

    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<HashMap<String, oneshot::Sender<Answer>>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id and the receiver of its answer, or `None` when the session has ended.
    fn register(&self) -> Option<(String, oneshot::Receiver<Answer>)> {
        let id = format!("s-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        self.waiting().as_mut()?.insert(id.clone(), sender);
        Some((id, receiver))
    }

    fn forget(&self, id: &str) {
        if let Some(waiting) = self.waiting().as_mut() {
            waiting.remove(id);
        }
    }

    /// Hand a response from the client to the handler waiting for it.
    pub(crate) fn resolve(
        &self,
        id: Option<&RawValue>,
        result: Option<&RawValue>,
        error: Option<&RawValue>,
    ) {
        let Some(id) = id.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok()) else {
            tracing::debug!("ignoring a response whose id is not one of ours");
            return;
        };
        let Some(sender) = self.waiting().as_mut().and_then(|w| w.remove(&id)) else {
            tracing::debug!(%id, "ignoring a response to a request nobody waits for");
            return;
        };
        let answer = match (result, error) {
            (Some(result), _) => {
                serde_json::from_str(result.get()).map_err(|e| ClientErrorObject {
                    code: wire::code::PARSE_ERROR,
                    message: format!("the result is not JSON: {e}"),
                })
            }
            (None, Some(error)) => Err(serde_json::from_str(error.get()).unwrap_or(
                ClientErrorObject {
                    code: wire::code::INTERNAL_ERROR,
                    message: "the client answered with an unreadable error".into(),
                },
            )),
            (None, None) => Err(ClientErrorObject {
                code: wire::code::INVALID_REQUEST,
                message: "the response has neither result nor error".into(),
            }),
        };
        // The handler may have stopped waiting (cancelled, timed out): nothing to do then.
        let _ = sender.send(answer);
    }

    /// End the session: every handler still waiting gets an error at once.
    pub(crate) fn close(&self) {
        self.waiting().take();
    }
}

/// One request the client has not answered yet. When its handler stops waiting without an
/// answer, however it stops (timed out, cancelled, dropped with the call), the request is
/// forgotten and the client is told with `notifications/cancelled`.
struct Unanswered<'a> {
    requests: &'a ClientRequests,
    outbound: &'a Outbound,
    id: &'a str,
    reason: &'static str,
    answered: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.requests.forget(self.id);
        let mut bytes = Vec::with_capacity(96);
        wire::write_notification(
            &mut bytes,
            "notifications/cancelled",
            &json!({"requestId": self.id, "reason": self.reason}),
        );
        // Best effort: the client may be gone too.
        let _ = self.outbound.try_send(bytes);
    }
}

/// Send one request to a legacy client and wait for its answer.
pub(crate) async fn ask_client(
    requests: &ClientRequests,
    outbound: Option<&Outbound>,
    cancelled: &CancellationToken,
    key: &str,
    request: &InputRequest,
) -> Result<Value, HandlerError> {
    let method = request.method();
    let failed = |message: String| HandlerError::ClientRequestFailed {
        method: method.to_owned(),
        message,
    };
    let Some(outbound) = outbound else {
        return Err(failed(
            "this connection cannot carry requests to the client (over HTTP the client must accept text/event-stream)".into(),
        ));
    };
    let Some((id, answer)) = requests.register() else {
        return Err(failed("the session has ended".into()));
    };
    let mut unanswered = Unanswered {
        requests,
        outbound,
        id: &id,
        reason: "the call that needed it ended",
        answered: false,
    };
    let mut bytes = Vec::with_capacity(256);
    wire::write_request(&mut bytes, &id, method, &request.params());
    if outbound.send(bytes).await.is_err() {
        unanswered.answered = true;
        return Err(failed("the connection to the client is closed".into()));
    }
    let answer = tokio::select! {
        answer = answer => answer,
        () = tokio::time::sleep(INPUT_TIMEOUT) => {
            unanswered.reason = "timed out";
            return Err(failed(format!("the client did not answer within {} s", INPUT_TIMEOUT.as_secs())));
        }
        () = cancelled.cancelled() => {
            unanswered.reason = "the request that needed it was cancelled";
            return Err(failed("the request was cancelled".into()));
        }
    };
    // Answered, or the session ended: either way there is nothing left to cancel.
    unanswered.answered = true;
    match answer {
        Err(_) => Err(failed(
            "the session ended before the client answered".into(),
        )),
        Ok(Err(error)) => Err(failed(format!(
            "the client answered with error {}: {}",
            error.code, error.message
        ))),
        Ok(Ok(value)) => {
            request
                .check_answer(&value)
                .map_err(|message| HandlerError::InvalidInputResponse {
                    key: key.to_owned(),
                    message: message.to_owned(),
                })?;
            Ok(value)
        }
    }
}
