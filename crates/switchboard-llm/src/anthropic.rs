//! The Anthropic Messages API: `POST {base}/v1/messages`, streamed as server-sent events.
//!
//! Requests carry `system`, `max_tokens`, `tools` (`name`, `description`, `input_schema`) and the
//! conversation as content blocks; [`Block`] is already Anthropic's shape. The stream is
//! `message_start`, then per content block `content_block_start`, `content_block_delta`s
//! (`text_delta` to the sink, `input_json_delta` fragments assembled into a tool call's input)
//! and `content_block_stop`, then `message_delta` (stop reason, output tokens) and
//! `message_stop`; `ping`s come in between and an `error` event can end it early.

use std::{collections::BTreeMap, fmt};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
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

/// The API version this client speaks (`anthropic-version`).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Where the API is when no base URL is configured.
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// `max_tokens` is required by the API; this is sent when the request leaves it at 0.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Content blocks accepted in one answer (a bound on what a broken stream can make us keep).
const MAX_BLOCKS: usize = 4096;
/// The provider's name in error sentences.
const PROVIDER: &str = "Anthropic";

/// A Claude model behind the Messages API.
pub struct AnthropicModel {
    name: String,
    api_key: Secret,
    transport: Transport,
}

impl fmt::Debug for AnthropicModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicModel")
            .field("id", &self.transport.id)
            .field("endpoint", &self.transport.shown_endpoint)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl AnthropicModel {
    /// A model called `name` (`claude-sonnet-4-5`) at `base_url` (without `/v1`).
    pub fn new(
        name: impl Into<String>,
        base_url: &Url,
        api_key: Secret,
        options: ClientOptions,
    ) -> Result<AnthropicModel, ModelError> {
        let name = name.into();
        let transport = Transport::new(
            PROVIDER,
            format!("anthropic/{name}"),
            join_path(base_url, "v1/messages"),
            options,
            Some(api_key.clone()),
        )?;
        Ok(AnthropicModel {
            name,
            api_key,
            transport,
        })
    }

    fn headers(&self) -> Result<HeaderMap, ModelError> {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(self.api_key.expose()).map_err(|_| {
            ModelError::NotConfigured(
                "the Anthropic API key contains characters that cannot be sent in a header"
                    .to_owned(),
            )
        })?;
        key.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-api-key"), key);
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        Ok(headers)
    }

    async fn attempt_once(
        &self,
        request: &ChatRequest,
        sink: &SinkTracker<'_>,
    ) -> Result<ChatResponse, AttemptError> {
        let body = wire_request(&self.name, request, self.transport.streaming());
        let response = self.transport.post(self.headers()?, &body).await?;
        if self.transport.streaming() && Transport::is_event_stream(&response) {
            return self.read_stream(response, sink).await;
        }
        let body = self.transport.read_body(response).await?;
        let message: WireResponse = self.transport.parse("the answer", &body)?;
        let response = message.into_response(&self.name);
        for block in &response.content {
            if let Block::Text { text } = block {
                sink.emit(text);
            }
        }
        Ok(response)
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        sink: &SinkTracker<'_>,
    ) -> Result<ChatResponse, AttemptError> {
        let transport = &self.transport;
        let mut events = transport.events(response);
        let mut turn = StreamedTurn::new(&self.name);
        while let Some(event) = events.next(transport).await? {
            let parsed: StreamEvent = transport.parse("a stream event", event.data.as_bytes())?;
            match parsed {
                StreamEvent::MessageStart { message } => {
                    if let Some(model) = message.model {
                        turn.model = model;
                    }
                    if let Some(usage) = message.usage {
                        turn.usage.input_tokens = usage.input_total();
                        turn.usage.output_tokens = usage.output_tokens.unwrap_or(0);
                    }
                }
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                } => {
                    if turn.blocks.len() >= MAX_BLOCKS && !turn.blocks.contains_key(&index) {
                        return Err(transport
                            .invalid(format!("the answer has more than {MAX_BLOCKS} blocks"))
                            .into());
                    }
                    let building = match content_block {
                        StartBlock::Text { text } => {
                            sink.emit(&text);
                            Building::Text(text)
                        }
                        StartBlock::ToolUse { id, name, input } => Building::Tool {
                            id,
                            name,
                            initial: input,
                            json: String::new(),
                        },
                        // Thinking and server-side tool blocks are not part of our conversation.
                        StartBlock::Other => Building::Skipped,
                    };
                    turn.blocks.insert(index, building);
                }
                StreamEvent::ContentBlockDelta { index, delta } => {
                    let Some(building) = turn.blocks.get_mut(&index) else {
                        return Err(transport
                            .invalid(format!(
                                "a delta arrived for block {index}, which never started"
                            ))
                            .into());
                    };
                    match (building, delta) {
                        (Building::Text(text), ContentDelta::TextDelta { text: piece }) => {
                            sink.emit(&piece);
                            text.push_str(&piece);
                        }
                        (
                            Building::Tool { json, .. },
                            ContentDelta::InputJsonDelta { partial_json },
                        ) => {
                            json.push_str(&partial_json);
                        }
                        (Building::Skipped, _) | (_, ContentDelta::Other) => {}
                        (_, _) => {
                            return Err(transport
                                .invalid(format!("block {index} got a delta of the wrong kind"))
                                .into());
                        }
                    }
                }
                StreamEvent::ContentBlockStop { .. } => {}
                StreamEvent::MessageDelta { delta, usage } => {
                    if let Some(reason) = delta.stop_reason {
                        turn.stop = Some(reason);
                    }
                    if let Some(usage) = usage {
                        if let Some(output) = usage.output_tokens {
                            turn.usage.output_tokens = output;
                        }
                        if usage.input_tokens.is_some() {
                            turn.usage.input_tokens = usage.input_total();
                        }
                    }
                }
                StreamEvent::MessageStop => return turn.finish(transport).map_err(Into::into),
                StreamEvent::Ping | StreamEvent::Unknown => {}
                StreamEvent::Error { error } => {
                    let status = error
                        .get("type")
                        .and_then(Value::as_str)
                        .map_or(StatusCode::INTERNAL_SERVER_ERROR, error_type_status);
                    return Err(transport.reported(status, &error));
                }
            }
        }
        Err(transport
            .invalid("the stream ended before `message_stop` (the answer is incomplete)")
            .into())
    }
}

impl ChatModel for AnthropicModel {
    fn id(&self) -> &str {
        &self.transport.id
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest, on_text: TextSink<'a>) -> ModelFuture<'a> {
        Box::pin(complete_with_retries(self, request, on_text))
    }
}

impl Wire for AnthropicModel {
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

/// The HTTP status an Anthropic error type stands for (their error docs), for errors that
/// arrive inside a stream.
fn error_type_status(kind: &str) -> StatusCode {
    match kind {
        "invalid_request_error" => StatusCode::BAD_REQUEST,
        "authentication_error" => StatusCode::UNAUTHORIZED,
        "permission_error" => StatusCode::FORBIDDEN,
        "not_found_error" => StatusCode::NOT_FOUND,
        "request_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "rate_limit_error" => StatusCode::TOO_MANY_REQUESTS,
        // 529 is Anthropic's own "overloaded".
        "overloaded_error" => StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn stop_reason(reason: Option<&str>, has_tool_use: bool) -> StopReason {
    match reason {
        Some("end_turn") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(_) => StopReason::Other,
        None if has_tool_use => StopReason::ToolUse,
        None => StopReason::EndTurn,
    }
}

/// A block while its deltas arrive.
enum Building {
    Text(String),
    Tool {
        id: String,
        name: String,
        /// The `input` of `content_block_start` (`{}` when deltas follow).
        initial: Value,
        /// The `partial_json` fragments so far.
        json: String,
    },
    Skipped,
}

struct StreamedTurn {
    model: String,
    blocks: BTreeMap<u64, Building>,
    stop: Option<String>,
    usage: Usage,
}

impl StreamedTurn {
    fn new(model: &str) -> StreamedTurn {
        StreamedTurn {
            model: model.to_owned(),
            blocks: BTreeMap::new(),
            stop: None,
            usage: Usage::default(),
        }
    }

    fn finish(self, transport: &Transport) -> Result<ChatResponse, ModelError> {
        let mut content = Vec::with_capacity(self.blocks.len());
        for building in self.blocks.into_values() {
            match building {
                Building::Text(text) if text.is_empty() => {}
                Building::Text(text) => content.push(Block::Text { text }),
                Building::Tool {
                    id,
                    name,
                    initial,
                    json,
                } => {
                    let input = if json.trim().is_empty() {
                        initial
                    } else {
                        serde_json::from_str(&json).map_err(|error| {
                            transport.invalid(format!(
                                "the input of tool call `{name}` is not valid JSON ({error})"
                            ))
                        })?
                    };
                    content.push(Block::ToolUse { id, name, input });
                }
                Building::Skipped => {}
            }
        }
        let has_tool_use = content
            .iter()
            .any(|block| matches!(block, Block::ToolUse { .. }));
        Ok(ChatResponse {
            stop: stop_reason(self.stop.as_deref(), has_tool_use),
            content,
            usage: self.usage,
            model: self.model,
        })
    }
}

// The request, borrowed from the caller's `ChatRequest`.

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: Vec<WireBlock<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

fn wire_request<'a>(model: &'a str, request: &'a ChatRequest, stream: bool) -> WireRequest<'a> {
    let messages = request
        .messages
        .iter()
        .map(|message| WireMessage {
            role: message.role,
            content: message
                .content
                .iter()
                .filter_map(|block| match block {
                    // The API refuses empty text blocks.
                    Block::Text { text } if text.is_empty() => None,
                    Block::Text { text } => Some(WireBlock::Text { text }),
                    Block::ToolUse { id, name, input } => {
                        Some(WireBlock::ToolUse { id, name, input })
                    }
                    Block::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } => Some(WireBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error: *is_error,
                    }),
                })
                .collect(),
        })
        .collect();
    WireRequest {
        model,
        max_tokens: if request.max_tokens == 0 {
            DEFAULT_MAX_TOKENS
        } else {
            request.max_tokens
        },
        system: request
            .system
            .as_deref()
            .filter(|system| !system.is_empty()),
        messages,
        tools: request
            .tools
            .iter()
            .map(|tool| WireTool {
                name: &tool.name,
                description: &tool.description,
                input_schema: &tool.input_schema,
            })
            .collect(),
        temperature: request.temperature,
        stream,
    }
}

// The answer, typed at the edge.

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    content: Vec<ResponseBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

impl WireResponse {
    fn into_response(self, requested_model: &str) -> ChatResponse {
        let content: Vec<Block> = self
            .content
            .into_iter()
            .filter_map(|block| match block {
                ResponseBlock::Text { text } if text.is_empty() => None,
                ResponseBlock::Text { text } => Some(Block::Text { text }),
                ResponseBlock::ToolUse { id, name, input } => {
                    Some(Block::ToolUse { id, name, input })
                }
                ResponseBlock::Other => None,
            })
            .collect();
        let has_tool_use = content
            .iter()
            .any(|block| matches!(block, Block::ToolUse { .. }));
        let usage = self.usage.map_or_else(Usage::default, |usage| Usage {
            input_tokens: usage.input_total(),
            output_tokens: usage.output_tokens.unwrap_or(0),
        });
        ChatResponse {
            stop: stop_reason(self.stop_reason.as_deref(), has_tool_use),
            content,
            usage,
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Input tokens including the cached ones, which `input_tokens` leaves out.
    fn input_total(&self) -> u64 {
        [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ]
        .into_iter()
        .flatten()
        .fold(0, u64::saturating_add)
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: ContentDelta,
    },
    ContentBlockStop {
        #[allow(dead_code)]
        index: u64,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: Value,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, ToolSpec};
    use serde_json::json;

    #[test]
    fn requests_use_anthropic_blocks_and_drop_empty_text() {
        let request = ChatRequest {
            system: Some("Be brief.".into()),
            messages: vec![
                Message::user("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Block::text(""),
                        Block::ToolUse {
                            id: "toolu_1".into(),
                            name: "echo".into(),
                            input: json!({"text": "x"}),
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![Block::ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: "no".into(),
                        is_error: true,
                    }],
                },
            ],
            tools: vec![ToolSpec {
                name: "echo".into(),
                description: "Echo".into(),
                input_schema: json!({"type": "object"}),
            }],
            max_tokens: 0,
            temperature: None,
        };
        let wire = serde_json::to_value(wire_request("claude", &request, true))
            .expect("the request encodes");
        assert_eq!(
            wire,
            json!({
                "model": "claude",
                "max_tokens": DEFAULT_MAX_TOKENS,
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "echo", "input": {"text": "x"}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no", "is_error": true}
                    ]}
                ],
                "tools": [{"name": "echo", "description": "Echo", "input_schema": {"type": "object"}}],
                "stream": true
            })
        );
    }
}
