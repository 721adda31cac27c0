//! A scripted fake LLM endpoint that speaks both providers' real wire formats.
//!
//! [`FakeLlm`] is an HTTP server on loopback that answers
//!
//! - the Anthropic Messages API at `POST /v1/messages`, and
//! - OpenAI Chat Completions at `POST /v1/chat/completions` (and `/chat/completions`),
//!
//! streamed (`"stream": true`, server-sent events in each provider's event shapes) or as one
//! JSON answer, from a [`Script`]: each request takes the next turn. A turn is a reply (text
//! and/or tool calls), an error (a status, optional `retry-after`, and a body in the provider's
//! error format), or raw bytes (for malformed or truncated streams). When the script has run
//! out, the answer is a 500 whose message says so. Every request is recorded (path, headers,
//! JSON body) so tests can assert what was sent.
//!
//! A reply's text may contain `{last_tool_result}`, replaced by the content of the last tool
//! result in the request (Anthropic `tool_result` block or OpenAI `role: "tool"` message), so a
//! scripted model can "read" what a tool returned.
//!
//! For Anthropic use [`FakeLlm::base_url`] as the base (`ANTHROPIC_BASE_URL`); for OpenAI-style
//! clients use [`FakeLlm::openai_base_url`] (the same plus `/v1`, as `OPENAI_BASE_URL`).
//!
//! # Script JSON
//!
//! The `sb-fake-llm` binary reads the same script from a file (`--script FILE`, `--port N`),
//! prints its base URL as the first line on stdout and logs requests to stderr:
//!
//! ```json
//! {
//!   "turns": [
//!     { "reply": {
//!         "text": "Let me look that up.",
//!         "tool_calls": [
//!           { "name": "expenses__list", "arguments": { "month": "2026-01" } },
//!           { "name": "bookmarks__search", "arguments": { "query": "rust" }, "id": "call_7" }
//!         ],
//!         "usage": { "input_tokens": 120, "output_tokens": 30 } } },
//!     { "error": { "status": 429, "message": "slow down", "retry_after": "0" } },
//!     { "reply": { "text": "You spent {last_tool_result}.", "stop": "end_turn" } },
//!     { "raw": { "status": 200, "content_type": "text/event-stream",
//!                "body": "event: message_start\ndata: {\"type\":\"message_start\"" } }
//!   ]
//! }
//! ```
//!
//! - `reply`: `text` (optional), `tool_calls` (each `name`, `arguments` object, optional `id`;
//!   generated ids are `toolu_fake_T_I` / `call_fake_T_I` for turn T, call I), `stop`
//!   (`end_turn`, `tool_use`, `max_tokens`, or any provider string; default `tool_use` when there
//!   are tool calls, else `end_turn`), `usage` (default 10 input and 10 output tokens),
//!   `delay_ms` (wait before answering).
//! - `error`: `status`, `message`, optional `retry_after` (header value, seconds or HTTP date),
//!   `kind` (the error `type`; derived from the status by default), `body` (sent verbatim instead
//!   of the provider-shaped body), `delay_ms`.
//! - `raw`: `status` (default 200), `content_type` (default `text/event-stream`), `body`,
//!   `delay_ms`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use test_support::fake_llm::{FakeLlm, Reply, Script};
//!
//! let fake = FakeLlm::start(
//!     Script::new()
//!         .reply(Reply::tool_call("echo", serde_json::json!({"text": "hi"})))
//!         .reply(Reply::text("The tool said {last_tool_result}.")),
//! )
//! .await?;
//! // ... point a client at fake.base_url() or fake.openai_base_url() ...
//! assert_eq!(fake.requests().len(), 0);
//! # Ok(()) }
//! ```

use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::Response,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

/// Usage reported when a reply does not set it.
pub const DEFAULT_USAGE: FakeUsage = FakeUsage {
    input_tokens: 10,
    output_tokens: 10,
};

/// The turns the fake plays, one per request, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub turns: Vec<Turn>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    /// Parse the JSON format described in the module docs.
    pub fn from_json(text: &str) -> Result<Script, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn turn(mut self, turn: Turn) -> Script {
        self.turns.push(turn);
        self
    }

    pub fn reply(self, reply: Reply) -> Script {
        self.turn(Turn::Reply(reply))
    }

    pub fn error(self, error: ErrorTurn) -> Script {
        self.turn(Turn::Error(error))
    }

    pub fn raw(self, raw: RawTurn) -> Script {
        self.turn(Turn::Raw(raw))
    }
}

/// One answer of the script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Turn {
    Reply(Reply),
    Error(ErrorTurn),
    Raw(RawTurn),
}

/// A model answer: text and/or tool calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<FakeToolCall>,
    /// `end_turn`, `tool_use`, `max_tokens`, or a provider's own string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<FakeUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: Some(text.into()),
            ..Reply::default()
        }
    }

    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Reply {
        Reply::default().with_tool_call(name, arguments)
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Reply {
        self.text = Some(text.into());
        self
    }

    pub fn with_tool_call(mut self, name: impl Into<String>, arguments: Value) -> Reply {
        self.tool_calls.push(FakeToolCall {
            name: name.into(),
            arguments,
            id: None,
        });
        self
    }

    pub fn with_tool_call_id(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: Value,
    ) -> Reply {
        self.tool_calls.push(FakeToolCall {
            name: name.into(),
            arguments,
            id: Some(id.into()),
        });
        self
    }

    pub fn with_stop(mut self, stop: impl Into<String>) -> Reply {
        self.stop = Some(stop.into());
        self
    }

    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Reply {
        self.usage = Some(FakeUsage {
            input_tokens,
            output_tokens,
        });
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Reply {
        self.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeToolCall {
    pub name: String,
    #[serde(default = "empty_object")]
    pub arguments: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

fn empty_object() -> Value {
    json!({})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// An HTTP error answer, in the provider's error format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorTurn {
    pub status: u16,
    #[serde(default)]
    pub message: String,
    /// The `retry-after` header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// The error `type`; derived from the status when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Sent verbatim instead of the provider-shaped body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl ErrorTurn {
    pub fn new(status: u16, message: impl Into<String>) -> ErrorTurn {
        ErrorTurn {
            status,
            message: message.into(),
            retry_after: None,
            kind: None,
            body: None,
            delay_ms: None,
        }
    }

    pub fn with_retry_after(mut self, value: impl Into<String>) -> ErrorTurn {
        self.retry_after = Some(value.into());
        self
    }

    pub fn with_kind(mut self, kind: impl Into<String>) -> ErrorTurn {
        self.kind = Some(kind.into());
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> ErrorTurn {
        self.body = Some(body.into());
        self
    }
}

/// Bytes sent as they are: for malformed, truncated or otherwise broken answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTurn {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default = "event_stream")]
    pub content_type: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

fn ok_status() -> u16 {
    200
}

fn event_stream() -> String {
    "text/event-stream".to_owned()
}

impl RawTurn {
    /// A 200 `text/event-stream` answer with this body.
    pub fn sse(body: impl Into<String>) -> RawTurn {
        RawTurn {
            status: 200,
            content_type: event_stream(),
            body: body.into(),
            delay_ms: None,
        }
    }

    /// A 200 `application/json` answer with this body.
    pub fn json(body: impl Into<String>) -> RawTurn {
        RawTurn {
            status: 200,
            content_type: "application/json".to_owned(),
            body: body.into(),
            delay_ms: None,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub path: String,
    /// Header names in lower case; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Value::String` with the raw text when it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Whether the request asked for a stream.
    pub fn streamed(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireFormat {
    Anthropic,
    OpenAi,
}

#[derive(Debug)]
struct Shared {
    turns: VecDeque<Turn>,
    played: usize,
    requests: Vec<RecordedRequest>,
}

/// The running fake; stops when dropped.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl FakeLlm {
    /// Serve `script` on `127.0.0.1` on a free port.
    pub async fn start(script: Script) -> std::io::Result<FakeLlm> {
        FakeLlm::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), script).await
    }

    /// Serve `script` on `addr`.
    pub async fn start_on(addr: SocketAddr, script: Script) -> std::io::Result<FakeLlm> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            turns: script.turns.into(),
            played: 0,
            requests: Vec::new(),
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the fake LLM stopped serving");
            }
        });
        Ok(FakeLlm {
            addr,
            base_url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the Anthropic base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:PORT/v1`: the OpenAI-style base URL.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// Turns not yet played.
    pub fn turns_left(&self) -> usize {
        lock(&self.shared).turns.len()
    }

    /// Wait until the server stops (it does not, unless it fails): for the binary.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A test that panicked while holding the lock must not hide the other tests' requests.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let wire = if path.ends_with("/messages") {
        WireFormat::Anthropic
    } else if path.ends_with("/chat/completions") {
        WireFormat::OpenAi
    } else {
        tracing::info!(%path, "fake LLM: no such endpoint");
        return plain(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"error":{"message":"the fake LLM serves /v1/messages and /v1/chat/completions"}}"#
                .to_owned(),
        );
    };
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let mut recorded = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        recorded
            .entry(name.as_str().to_owned())
            .and_modify(|existing: &mut String| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    let request = RecordedRequest {
        path: path.clone(),
        headers: recorded,
        body: json,
    };
    let (turn, number) = {
        let mut shared = lock(&shared);
        shared.requests.push(request.clone());
        let turn = shared.turns.pop_front();
        if turn.is_some() {
            shared.played += 1;
        }
        (turn, shared.played)
    };
    let stream = request.streamed();
    tracing::info!(%path, stream, turn = number, "fake LLM request");
    let Some(turn) = turn else {
        let message = format!("the fake LLM's script has no more turns: all {number} were played");
        return error_response(wire, &ErrorTurn::new(500, message));
    };
    let delay = match &turn {
        Turn::Reply(reply) => reply.delay_ms,
        Turn::Error(error) => error.delay_ms,
        Turn::Raw(raw) => raw.delay_ms,
    };
    if let Some(delay) = delay {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match turn {
        Turn::Reply(reply) => {
            let reply = substitute(reply, &request.body);
            let model = request
                .body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("fake-model")
                .to_owned();
            let include_usage = request
                .body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
            match (wire, stream) {
                (WireFormat::Anthropic, true) => sse(anthropic_events(&reply, &model, number)),
                (WireFormat::Anthropic, false) => {
                    json_response(&anthropic_message(&reply, &model, number))
                }
                (WireFormat::OpenAi, true) => {
                    sse(openai_chunks(&reply, &model, number, include_usage))
                }
                (WireFormat::OpenAi, false) => {
                    json_response(&openai_completion(&reply, &model, number))
                }
            }
        }
        Turn::Error(error) => error_response(wire, &error),
        Turn::Raw(raw) => plain(
            StatusCode::from_u16(raw.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &raw.content_type,
            raw.body,
        ),
    }
}

/// Replace `{last_tool_result}` in the reply's text with the request's last tool result.
fn substitute(mut reply: Reply, body: &Value) -> Reply {
    if let Some(text) = &mut reply.text
        && text.contains("{last_tool_result}")
    {
        let result = last_tool_result(body).unwrap_or_default();
        *text = text.replace("{last_tool_result}", &result);
    }
    reply
}

fn last_tool_result(body: &Value) -> Option<String> {
    let messages = body.get("messages")?.as_array()?;
    for message in messages.iter().rev() {
        if message.get("role").and_then(Value::as_str) == Some("tool") {
            return Some(content_text(message.get("content")?));
        }
        if let Some(blocks) = message.get("content").and_then(Value::as_array) {
            let result = blocks
                .iter()
                .rev()
                .find(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"));
            if let Some(result) = result {
                return Some(content_text(result.get("content")?));
            }
        }
    }
    None
}

/// A content that is a string or an array of `{type: "text", text}` blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        other => other.to_string(),
    }
}

fn stop_of(reply: &Reply) -> &str {
    match &reply.stop {
        Some(stop) => stop,
        None if reply.tool_calls.is_empty() => "end_turn",
        None => "tool_use",
    }
}

fn openai_finish(stop: &str) -> &str {
    match stop {
        "end_turn" => "stop",
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        other => other,
    }
}

fn tool_id(call: &FakeToolCall, prefix: &str, turn: usize, index: usize) -> String {
    call.id
        .clone()
        .unwrap_or_else(|| format!("{prefix}_fake_{turn}_{index}"))
}

/// `text` in up to three pieces, cut at character boundaries, so clients must join deltas.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 3 {
        return vec![text.to_owned()];
    }
    let third = chars.len() / 3;
    vec![
        chars[..third].iter().collect(),
        chars[third..2 * third].iter().collect(),
        chars[2 * third..].iter().collect(),
    ]
}

fn anthropic_events(reply: &Reply, model: &str, turn: usize) -> Vec<String> {
    let usage = reply.usage.unwrap_or(DEFAULT_USAGE);
    let mut events = Vec::new();
    let mut event = |name: &str, data: Value| {
        events.push(format!("event: {name}\ndata: {data}\n\n"));
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": format!("msg_fake_{turn}"), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": 1}
        }}),
    );
    event("ping", json!({"type": "ping"}));
    let mut index = 0;
    if let Some(text) = reply.text.as_deref().filter(|text| !text.is_empty()) {
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                   "content_block": {"type": "text", "text": ""}}),
        );
        for piece in pieces(text) {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "text_delta", "text": piece}}),
            );
        }
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        index += 1;
    }
    for (position, call) in reply.tool_calls.iter().enumerate() {
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": tool_id(call, "toolu", turn, position),
                "name": call.name, "input": {}
            }}),
        );
        // Anthropic starts with an empty fragment, then sends the JSON in pieces.
        let mut fragments = vec![String::new()];
        fragments.extend(pieces(&call.arguments.to_string()));
        for fragment in fragments {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": fragment}}),
            );
        }
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        index += 1;
    }
    event(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_of(reply), "stop_sequence": null},
               "usage": {"output_tokens": usage.output_tokens}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    events
}

fn anthropic_message(reply: &Reply, model: &str, turn: usize) -> Value {
    let usage = reply.usage.unwrap_or(DEFAULT_USAGE);
    let mut content = Vec::new();
    if let Some(text) = reply.text.as_deref().filter(|text| !text.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for (position, call) in reply.tool_calls.iter().enumerate() {
        content.push(
            json!({"type": "tool_use", "id": tool_id(call, "toolu", turn, position),
                            "name": call.name, "input": call.arguments}),
        );
    }
    json!({
        "id": format!("msg_fake_{turn}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_of(reply), "stop_sequence": null,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    })
}

fn openai_chunks(reply: &Reply, model: &str, turn: usize, include_usage: bool) -> Vec<String> {
    let usage = reply.usage.unwrap_or(DEFAULT_USAGE);
    let id = format!("chatcmpl-fake-{turn}");
    let mut chunks = Vec::new();
    let mut chunk = |choices: Value, usage: Option<Value>| {
        let mut data = json!({"id": id, "object": "chat.completion.chunk", "created": 0,
                              "model": model, "choices": choices});
        if let Some(usage) = usage {
            data["usage"] = usage;
        }
        chunks.push(format!("data: {data}\n\n"));
    };
    chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        None,
    );
    if let Some(text) = reply.text.as_deref().filter(|text| !text.is_empty()) {
        for piece in pieces(text) {
            chunk(
                json!([{"index": 0, "delta": {"content": piece}, "finish_reason": null}]),
                None,
            );
        }
    }
    for (position, call) in reply.tool_calls.iter().enumerate() {
        chunk(
            json!([{"index": 0, "delta": {"tool_calls": [{
                "index": position, "id": tool_id(call, "call", turn, position), "type": "function",
                "function": {"name": call.name, "arguments": ""}
            }]}, "finish_reason": null}]),
            None,
        );
        for fragment in pieces(&call.arguments.to_string()) {
            chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{
                    "index": position, "function": {"arguments": fragment}
                }]}, "finish_reason": null}]),
                None,
            );
        }
    }
    chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": openai_finish(stop_of(reply))}]),
        None,
    );
    if include_usage {
        chunk(
            json!([]),
            Some(json!({"prompt_tokens": usage.input_tokens,
                        "completion_tokens": usage.output_tokens,
                        "total_tokens": usage.input_tokens + usage.output_tokens})),
        );
    }
    chunks.push("data: [DONE]\n\n".to_owned());
    chunks
}

fn openai_completion(reply: &Reply, model: &str, turn: usize) -> Value {
    let usage = reply.usage.unwrap_or(DEFAULT_USAGE);
    let mut message = json!({"role": "assistant", "content": reply.text});
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = reply
            .tool_calls
            .iter()
            .enumerate()
            .map(|(position, call)| {
                json!({"id": tool_id(call, "call", turn, position), "type": "function",
                       "function": {"name": call.name, "arguments": call.arguments.to_string()}})
            })
            .collect();
    }
    json!({
        "id": format!("chatcmpl-fake-{turn}"), "object": "chat.completion", "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": openai_finish(stop_of(reply))}],
        "usage": {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                  "total_tokens": usage.input_tokens + usage.output_tokens}
    })
}

fn default_kind(wire: WireFormat, status: u16) -> &'static str {
    match (wire, status) {
        (WireFormat::Anthropic, 400) => "invalid_request_error",
        (WireFormat::Anthropic, 401) => "authentication_error",
        (WireFormat::Anthropic, 403) => "permission_error",
        (WireFormat::Anthropic, 404) => "not_found_error",
        (WireFormat::Anthropic, 429) => "rate_limit_error",
        (WireFormat::Anthropic, 529) => "overloaded_error",
        (WireFormat::Anthropic, _) => "api_error",
        (WireFormat::OpenAi, 401) => "invalid_api_key",
        (WireFormat::OpenAi, 429) => "rate_limit_exceeded",
        (WireFormat::OpenAi, 500..) => "server_error",
        (WireFormat::OpenAi, _) => "invalid_request_error",
    }
}

fn error_response(wire: WireFormat, error: &ErrorTurn) -> Response {
    let kind = error
        .kind
        .clone()
        .unwrap_or_else(|| default_kind(wire, error.status).to_owned());
    let body = error.body.clone().unwrap_or_else(|| {
        match wire {
            WireFormat::Anthropic => json!({"type": "error",
                                            "error": {"type": kind, "message": error.message}}),
            WireFormat::OpenAi => json!({"error": {"message": error.message, "type": kind,
                                                   "param": null, "code": null}}),
        }
        .to_string()
    });
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain(status, "application/json", body);
    if let Some(value) = error
        .retry_after
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn plain(status: StatusCode, content_type: &str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn json_response(body: &Value) -> Response {
    plain(StatusCode::OK, "application/json", body.to_string())
}

/// An event stream sent as separate body chunks, one per event.
fn sse(events: Vec<String>) -> Response {
    let stream = futures::stream::iter(
        events
            .into_iter()
            .map(|event| Ok::<_, Infallible>(Bytes::from(event))),
    );
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_script_parses() {
        let script = Script::from_json(
            r#"{"turns": [
                {"reply": {"text": "Let me look.", "tool_calls": [
                    {"name": "expenses__list", "arguments": {"month": "2026-01"}},
                    {"name": "bookmarks__search", "arguments": {"query": "rust"}, "id": "call_7"}],
                    "usage": {"input_tokens": 120, "output_tokens": 30}}},
                {"error": {"status": 429, "message": "slow down", "retry_after": "0"}},
                {"reply": {"text": "You spent {last_tool_result}.", "stop": "end_turn"}},
                {"raw": {"body": "data: {"}}
            ]}"#,
        )
        .expect("the documented format parses");
        assert_eq!(script.turns.len(), 4);
        assert_eq!(
            script.turns[1],
            Turn::Error(ErrorTurn::new(429, "slow down").with_retry_after("0"))
        );
        assert_eq!(script.turns[3], Turn::Raw(RawTurn::sse("data: {")));
    }

    #[test]
    fn a_misspelled_field_is_refused() {
        assert!(Script::from_json(r#"{"turns": [{"reply": {"txt": "hi"}}]}"#).is_err());
    }

    #[test]
    fn the_last_tool_result_is_found_in_both_formats() {
        let anthropic = json!({"messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42"}]}
        ]});
        assert_eq!(last_tool_result(&anthropic).as_deref(), Some("42"));
        let openai = json!({"messages": [
            {"role": "tool", "tool_call_id": "c", "content": "7"},
            {"role": "user", "content": "and?"}
        ]});
        assert_eq!(last_tool_result(&openai).as_deref(), Some("7"));
    }
}
