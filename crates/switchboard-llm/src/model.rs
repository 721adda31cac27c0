//! The provider-neutral conversation: what the agent loop sends a model and what it gets back.
//!
//! Both wire formats (Anthropic `tool_use`/`tool_result` blocks and OpenAI `tool_calls` with
//! `role: "tool"` messages) are mapped onto these types by the providers in
//! [`crate::anthropic`] and [`crate::openai`], so the loop never sees a provider's JSON.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message. Tool results travel in a `User` message, as Anthropic has them; the
/// OpenAI provider turns each into its own `role: "tool"` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    /// The model asks for a tool call. `id` is the provider's call id, echoed in the result.
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// The answer to a [`Block::ToolUse`] with the same id.
    ToolResult {
        tool_use_id: String,
        content: String,
        is_error: bool,
    },
}

impl Block {
    pub fn text(text: impl Into<String>) -> Block {
        Block::Text { text: text.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::text(text)],
        }
    }

    /// The text blocks of the message, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|block| match block {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A tool as offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The qualified name (`server__tool`): valid for both providers (`^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    pub description: String,
    /// A JSON Schema object.
    pub input_schema: Value,
}

/// One model turn's input.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    /// The most output tokens this turn may produce.
    pub max_tokens: u32,
    pub temperature: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model is done with its answer.
    EndTurn,
    /// The model wants the tool calls in its content answered.
    ToolUse,
    /// The turn hit `max_tokens`.
    MaxTokens,
    /// The provider stopped for another reason (a stop sequence, a content filter, ...).
    Other,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One model turn's output: text and tool-use blocks, in the order the model produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: Vec<Block>,
    pub stop: StopReason,
    pub usage: Usage,
    /// The model that answered, as the provider named it.
    pub model: String,
}

impl ChatResponse {
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|block| match block {
            Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// Where streamed text goes as it arrives (the terminal, in `chat`).
pub type TextSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

pub type ModelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChatResponse, ModelError>> + Send + 'a>>;

/// A chat model behind one provider's API.
pub trait ChatModel: Send + Sync + fmt::Debug {
    /// `provider/name`, as the user chose it.
    fn id(&self) -> &str;

    /// Run one turn. Text is passed to `on_text` as it streams in; the full response is
    /// returned at the end. Retries of 429 and 5xx happen inside, before any text was streamed.
    fn complete<'a>(&'a self, request: &'a ChatRequest, on_text: TextSink<'a>) -> ModelFuture<'a>;
}

/// A provider failure, as one readable sentence. Never contains an API key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    /// No model, or no key or endpoint for it.
    #[error("{0}")]
    NotConfigured(String),
    /// 401/403: the key is missing, wrong or lacks access.
    #[error("{provider} refused the API key ({status}): {message}")]
    Unauthorized {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// 429 after the retries ran out.
    #[error("{provider} is rate limiting this key: {message}{}", retry_hint(*.retry_after))]
    RateLimited {
        provider: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Another HTTP error status (after retries for 5xx).
    #[error("{provider} answered HTTP {status}: {message}")]
    Status {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// The endpoint could not be reached, or the connection broke.
    #[error("could not reach {provider} at {endpoint}: {message}")]
    Unreachable {
        provider: &'static str,
        endpoint: String,
        message: String,
    },
    /// The provider's answer did not have the expected shape.
    #[error("{provider} sent an answer this client does not understand: {message}")]
    InvalidResponse {
        provider: &'static str,
        message: String,
    },
}

fn retry_hint(after: Option<Duration>) -> String {
    match after {
        Some(after) => format!(" (it asks to wait {} s)", after.as_secs().max(1)),
        None => String::new(),
    }
}
