//! OpenAI-compatible Chat Completions: `POST {base}/chat/completions`.
//!
//! One wire format for OpenAI, Ollama (`/v1`), vLLM, llama.cpp's server and LM Studio. Tools are
//! `{"type": "function", "function": {name, description, parameters}}`; the model's calls come
//! back as the assistant's `tool_calls`, and each [`Block::ToolResult`] goes back as its own
//! `role: "tool"` message with the call's `tool_call_id` (an error result's content starts with
//! `Error: `, since the format has no error flag). Streams are `data:` chunks ending with
//! `data: [DONE]`, with `delta.content` text and `delta.tool_calls[i]` fragments.
//!
//! The servers differ, so parsing is lenient: usage may be missing, tool call ids may be missing
//! (ids are generated), `arguments` may be an object instead of a JSON string, a server may
//! say `finish_reason: "stop"` after calling tools, or omit `[DONE]` after a finish reason.

use std::{
    borrow::Cow,
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_config::Secret;
use url::Url;

use crate::{
    http::{
        AttemptError, AttemptFuture, ClientOptions, SinkTracker, Transport, Wire,
        complete_with_retries, join_path,
    },
    model::{
        Block, ChatModel, ChatRequest, ChatResponse, ModelError, ModelFuture, Role, StopReason,
        TextSink, Usage,
    },
};

/// Where the OpenAI API is when no base URL is configured.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// What an error tool result's content starts with on this wire (it has no `is_error`).
pub const TOOL_ERROR_PREFIX: &str = "Error: ";
/// Tool calls accepted in one answer (a bound on what a broken stream can make us keep).
const MAX_TOOL_CALLS: usize = 1024;

/// Which server speaks the format; it decides a few request details and the error wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiFlavor {
    /// api.openai.com: `max_completion_tokens` (newer models refuse `max_tokens`).
    OpenAi,
    /// Ollama's `/v1` endpoint.
    Ollama,
    /// vLLM, llama.cpp's server, LM Studio and others: `max_tokens`.
    Compatible,
}

impl OpenAiFlavor {
    fn provider(self) -> &'static str {
        match self {
            OpenAiFlavor::OpenAi => "OpenAI",
            OpenAiFlavor::Ollama => "Ollama",
            OpenAiFlavor::Compatible => "the OpenAI-compatible server",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            OpenAiFlavor::OpenAi => "openai",
            OpenAiFlavor::Ollama => "ollama",
            OpenAiFlavor::Compatible => "openai-compatible",
        }
    }
}

/// A model behind an OpenAI-compatible Chat Completions endpoint.
pub struct OpenAiModel {
    name: String,
    flavor: OpenAiFlavor,
    api_key: Option<Secret>,
    transport: Transport,
    /// Numbers the ids made up for tool calls that came without one.
    generated_ids: AtomicU64,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("id", &self.transport.id)
            .field("endpoint", &self.transport.shown_endpoint)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl OpenAiModel {
    /// A model called `name` at `base_url` (which includes `/v1`; `chat/completions` is
    /// appended). Without a key no `Authorization` header is sent.
    pub fn new(
        flavor: OpenAiFlavor,
        name: impl Into<String>,
        base_url: &Url,
        api_key: Option<Secret>,
        options: ClientOptions,
    ) -> Result<OpenAiModel, ModelError> {
        let name = name.into();
        let transport = Transport::new(
            flavor.provider(),
            format!("{}/{name}", flavor.prefix()),
            join_path(base_url, "chat/completions"),
            options,
            api_key.clone(),
        )?;
        Ok(OpenAiModel {
            name,
            flavor,
            api_key,
            transport,
            generated_ids: AtomicU64::new(0),
        })
    }

    fn headers(&self) -> Result<HeaderMap, ModelError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = self.api_key.as_ref().filter(|key| !key.expose().is_empty()) {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    ModelError::NotConfigured(format!(
                        "the API key for {} contains characters that cannot be sent in a header",
                        self.flavor.provider()
                    ))
                })?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        Ok(headers)
    }

    fn generated_id(&self) -> String {
        let n = self.generated_ids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("call_sb{n}")
    }

    async fn attempt_once(
        &self,
        request: &ChatRequest,
        sink: &SinkTracker<'_>,
    ) -> Result<ChatResponse, AttemptError> {
        let body = wire_request(&self.name, self.flavor, request, self.transport.streaming());
        let response = self.transport.post(self.headers()?, &body).await?;
        if self.transport.streaming() && Transport::is_event_stream(&response) {
            return self.read_stream(response, sink).await;
        }
        let body = self.transport.read_body(response).await?;
        let completion: Completion = self.transport.parse("the answer", &body)?;
        if let Some(error) = completion.error.filter(|error| !error.is_null()) {
            return Err(self.transport.reported(error_status(&error), &error));
        }
        let Some(choice) = completion
            .choices
            .and_then(|choices| choices.into_iter().next())
        else {
            return Err(self.transport.invalid("the answer has no choices").into());
        };
        let mut calls = ToolCalls::default();
        let text = choice
            .message
            .as_ref()
            .and_then(|message| message.content.as_ref())
            .map(content_text)
            .unwrap_or_default();
        for (position, call) in choice
            .message
            .and_then(|message| message.tool_calls)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let (name, arguments) = match call.function {
                Some(function) => (function.name, function.arguments),
                None => (None, None),
            };
            calls.add(
                &self.transport,
                Some(position),
                call.id,
                name.as_deref(),
                arguments,
            )?;
        }
        sink.emit(&text);
        let turn = Turn {
            model: completion.model.unwrap_or_else(|| self.name.clone()),
            text,
            calls,
            finish: choice.finish_reason,
            usage: completion.usage,
        };
        turn.finish(self).map_err(Into::into)
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        sink: &SinkTracker<'_>,
    ) -> Result<ChatResponse, AttemptError> {
        let transport = &self.transport;
        let mut events = transport.events(response);
        let mut turn = Turn {
            model: self.name.clone(),
            text: String::new(),
            calls: ToolCalls::default(),
            finish: None,
            usage: None,
        };
        let mut done = false;
        while let Some(event) = events.next(transport).await? {
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Chunk = transport.parse("a stream chunk", data.as_bytes())?;
            if let Some(error) = chunk.error.filter(|error| !error.is_null()) {
                return Err(transport.reported(error_status(&error), &error));
            }
            if let Some(model) = chunk.model.filter(|model| !model.is_empty()) {
                turn.model = model;
            }
            if let Some(usage) = chunk.usage {
                turn.usage = Some(usage);
            }
            for choice in chunk.choices.unwrap_or_default() {
                if choice.index.unwrap_or(0) != 0 {
                    continue; // We ask for one choice; ignore any other.
                }
                if let Some(delta) = choice.delta {
                    if let Some(piece) = delta.content {
                        sink.emit(&piece);
                        turn.text.push_str(&piece);
                    }
                    for call in delta.tool_calls.unwrap_or_default() {
                        let (name, arguments) = match call.function {
                            Some(function) => (function.name, function.arguments),
                            None => (None, None),
                        };
                        turn.calls.add(
                            transport,
                            call.index,
                            call.id,
                            name.as_deref(),
                            arguments,
                        )?;
                    }
                }
                if let Some(finish) = choice.finish_reason {
                    turn.finish = Some(finish);
                }
            }
        }
        // Some servers end the stream without `[DONE]`; a finish reason says the answer is whole.
        if !done && turn.finish.is_none() {
            return Err(transport
                .invalid("the stream ended before `[DONE]` (the answer is incomplete)")
                .into());
        }
        turn.finish(self).map_err(Into::into)
    }
}

impl ChatModel for OpenAiModel {
    fn id(&self) -> &str {
        &self.transport.id
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest, on_text: TextSink<'a>) -> ModelFuture<'a> {
        Box::pin(complete_with_retries(self, request, on_text))
    }
}

impl Wire for OpenAiModel {
    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn attempt<'a>(
        &'a self,
        request: &'a ChatRequest,
        sink: &'a SinkTracker<'a>,
    ) -> AttemptFuture<'a> {
        Box::pin(self.attempt_once(request, sink))
    }
}

/// The status an in-band error stands for: its numeric `code` when it has one, else 500.
fn error_status(error: &Value) -> StatusCode {
    error
        .get("code")
        .and_then(|code| {
            code.as_u64()
                .or_else(|| code.as_str().and_then(|code| code.parse().ok()))
        })
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|status| status.is_client_error() || status.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Content as a string, or as an array of `{type: "text", text}` parts (some servers).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// One turn's answer while it arrives.
struct Turn {
    model: String,
    text: String,
    calls: ToolCalls,
    finish: Option<String>,
    usage: Option<WireUsage>,
}

impl Turn {
    fn finish(self, model: &OpenAiModel) -> Result<ChatResponse, ModelError> {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Block::Text { text: self.text });
        }
        let has_calls = !self.calls.calls.is_empty();
        for call in self.calls.calls {
            content.push(call.finish(model)?);
        }
        let stop = match self.finish.as_deref() {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            // Ollama and some llama.cpp versions say "stop" after calling tools.
            _ if has_calls => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some(_) => StopReason::Other,
        };
        let usage = self.usage.map_or_else(Usage::default, |usage| Usage {
            input_tokens: usage.prompt_tokens.unwrap_or(0),
            output_tokens: usage.completion_tokens.unwrap_or(0),
        });
        Ok(ChatResponse {
            content,
            stop,
            usage,
            model: self.model,
        })
    }
}

#[derive(Default)]
struct ToolCalls {
    calls: Vec<CallBuilder>,
}

#[derive(Default)]
struct CallBuilder {
    id: Option<String>,
    name: String,
    arguments: Arguments,
}

#[derive(Default)]
enum Arguments {
    #[default]
    None,
    /// JSON text, in fragments.
    Text(String),
    /// Some servers send the arguments as an object.
    Object(Value),
}

impl ToolCalls {
    /// Add a call or a fragment of one. Calls are keyed by `index`; without one, a new `id`
    /// starts a new call and anything else continues the last.
    fn add(
        &mut self,
        transport: &Transport,
        index: Option<usize>,
        id: Option<String>,
        name: Option<&str>,
        arguments: Option<Value>,
    ) -> Result<(), ModelError> {
        let id = id.filter(|id| !id.is_empty());
        let slot = match index {
            Some(index) => index,
            None => match &id {
                Some(id) if !self.calls.iter().any(|call| call.id.as_ref() == Some(id)) => {
                    self.calls.len()
                }
                Some(id) => self
                    .calls
                    .iter()
                    .position(|call| call.id.as_ref() == Some(id))
                    .unwrap_or(0),
                None => self.calls.len().saturating_sub(1),
            },
        };
        if slot >= MAX_TOOL_CALLS {
            return Err(transport.invalid(format!(
                "the answer has more than {MAX_TOOL_CALLS} tool calls"
            )));
        }
        if self.calls.len() <= slot {
            self.calls.resize_with(slot + 1, CallBuilder::default);
        }
        let call = &mut self.calls[slot];
        if call.id.is_none() {
            call.id = id;
        }
        if let Some(name) = name.filter(|name| !name.is_empty()) {
            // Names arrive whole in practice; some servers repeat them in every fragment.
            if call.name.is_empty() {
                call.name = name.to_owned();
            } else if call.name != name {
                call.name.push_str(name);
            }
        }
        match (arguments, &mut call.arguments) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::String(piece)), Arguments::Text(text)) => text.push_str(&piece),
            (Some(Value::String(piece)), arguments) => *arguments = Arguments::Text(piece),
            (Some(object), arguments) => *arguments = Arguments::Object(object),
        }
        Ok(())
    }
}

impl CallBuilder {
    fn finish(self, model: &OpenAiModel) -> Result<Block, ModelError> {
        if self.name.is_empty() {
            return Err(model
                .transport
                .invalid("a tool call in the answer has no function name"));
        }
        let input = match self.arguments {
            Arguments::None => Value::Object(Default::default()),
            Arguments::Text(text) if text.trim().is_empty() => Value::Object(Default::default()),
            Arguments::Text(text) => serde_json::from_str(&text).map_err(|error| {
                model.transport.invalid(format!(
                    "the arguments of tool call `{}` are not valid JSON ({error})",
                    self.name
                ))
            })?,
            Arguments::Object(object) => object,
        };
        Ok(Block::ToolUse {
            id: self.id.unwrap_or_else(|| model.generated_id()),
            name: self.name,
            input,
        })
    }
}

// The request, borrowed from the caller's `ChatRequest`.

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: String,
    },
    Assistant {
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: Cow<'a, str>,
    },
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    /// A JSON document as a string, as the format wants it.
    arguments: String,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

fn wire_request<'a>(
    model: &'a str,
    flavor: OpenAiFlavor,
    request: &'a ChatRequest,
    stream: bool,
) -> WireRequest<'a> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request
        .system
        .as_deref()
        .filter(|system| !system.is_empty())
    {
        messages.push(WireMessage::System { content: system });
    }
    for message in &request.messages {
        match message.role {
            Role::User => {
                // Tool results answer the previous assistant message, so they come first,
                // each as its own `tool` message; any text follows as a user message.
                let mut text = String::new();
                for block in &message.content {
                    match block {
                        Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => messages.push(WireMessage::Tool {
                            tool_call_id: tool_use_id,
                            content: if *is_error {
                                Cow::Owned(format!("{TOOL_ERROR_PREFIX}{content}"))
                            } else {
                                Cow::Borrowed(content)
                            },
                        }),
                        Block::Text { text: piece } => text.push_str(piece),
                        // A user message does not carry tool calls; nothing to send.
                        Block::ToolUse { .. } => {}
                    }
                }
                if !text.is_empty() {
                    messages.push(WireMessage::User { content: text });
                }
            }
            Role::Assistant => {
                let text = message.text();
                let tool_calls: Vec<WireToolCall<'_>> = message
                    .content
                    .iter()
                    .filter_map(|block| match block {
                        Block::ToolUse { id, name, input } => Some(WireToolCall {
                            id,
                            kind: "function",
                            function: WireFunctionCall {
                                name,
                                arguments: input.to_string(),
                            },
                        }),
                        _ => None,
                    })
                    .collect();
                messages.push(WireMessage::Assistant {
                    content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                    tool_calls,
                });
            }
        }
    }
    let max_tokens = (request.max_tokens > 0).then_some(request.max_tokens);
    let (max_tokens, max_completion_tokens) = match flavor {
        OpenAiFlavor::OpenAi => (None, max_tokens),
        OpenAiFlavor::Ollama | OpenAiFlavor::Compatible => (max_tokens, None),
    };
    WireRequest {
        model,
        messages,
        tools: request
            .tools
            .iter()
            .map(|tool| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.input_schema,
                },
            })
            .collect(),
        max_tokens,
        max_completion_tokens,
        temperature: request.temperature,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    }
}

// The answer, typed at the edge. Every field is optional: the servers disagree.

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<CompletionChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    #[serde(default)]
    message: Option<CompletionMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Option<Vec<CompletionToolCall>>,
}

#[derive(Deserialize)]
struct CompletionToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[derive(Deserialize)]
struct FunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ChunkToolCall>>,
}

#[derive(Deserialize)]
struct ChunkToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, ToolSpec};
    use serde_json::json;

    #[test]
    fn tool_results_become_tool_messages_and_errors_are_marked() {
        let request = ChatRequest {
            system: Some("Be brief.".into()),
            messages: vec![
                Message::user("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Block::ToolUse {
                            id: "call_1".into(),
                            name: "a".into(),
                            input: json!({"x": 1}),
                        },
                        Block::ToolUse {
                            id: "call_2".into(),
                            name: "b".into(),
                            input: json!({}),
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        Block::ToolResult {
                            tool_use_id: "call_1".into(),
                            content: "one".into(),
                            is_error: false,
                        },
                        Block::ToolResult {
                            tool_use_id: "call_2".into(),
                            content: "no such thing".into(),
                            is_error: true,
                        },
                    ],
                },
            ],
            tools: vec![ToolSpec {
                name: "a".into(),
                description: "A".into(),
                input_schema: json!({"type": "object"}),
            }],
            max_tokens: 100,
            temperature: None,
        };
        let wire = serde_json::to_value(wire_request("gpt", OpenAiFlavor::OpenAi, &request, false))
            .expect("the request encodes");
        assert_eq!(
            wire,
            json!({
                "model": "gpt",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{\"x\":1}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "one"},
                    {"role": "tool", "tool_call_id": "call_2", "content": "Error: no such thing"}
                ],
                "tools": [{"type": "function", "function": {"name": "a", "description": "A", "parameters": {"type": "object"}}}],
                "max_completion_tokens": 100
            })
        );
        let compatible =
            serde_json::to_value(wire_request("m", OpenAiFlavor::Compatible, &request, true))
                .expect("the request encodes");
        assert_eq!(compatible["max_tokens"], json!(100));
        assert_eq!(compatible["stream_options"], json!({"include_usage": true}));
    }
}
