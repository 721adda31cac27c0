//! Chat models for the agent loop, behind one [`ChatModel`] trait: the Anthropic Messages API
//! ([`anthropic`]) and OpenAI-compatible Chat Completions ([`openai`]: OpenAI, Ollama, vLLM,
//! llama.cpp's server, LM Studio), both streaming.
//!
//! - [`model`]: the provider-neutral conversation ([`ChatRequest`], [`ChatResponse`], [`Block`])
//!   and [`ModelError`], whose every variant reads as one sentence and never contains a key.
//! - [`select`]: `--model provider/name` plus key and base URL (settings first, then the
//!   environment through a lookup function) into a `Box<dyn ChatModel>`.
//! - Retries ([`RetryPolicy`]): 429, 5xx and failed connections are retried inside
//!   [`ChatModel::complete`] with exponential backoff and full jitter, honouring `retry-after`,
//!   but never once text has reached the sink.
//! - Bounds: an answer or event stream longer than [`MAX_RESPONSE_BYTES`], an over-long line,
//!   a truncated stream or JSON of the wrong shape is a [`ModelError::InvalidResponse`].
//!
//! Keys are [`Secret`]s: `Debug` and `Display` print `<redacted>`, they are sent as sensitive
//! headers, and any echo of the key in a provider's error message is replaced.
//!
//! ```
//! use switchboard_llm::{ModelError, ModelSettings, build_model};
//!
//! // The CLI passes `|name| std::env::var(name).ok()`; here the environment is a closure.
//! let env = |name: &str| (name == "ANTHROPIC_API_KEY").then(|| "sk-ant-example".to_owned());
//! let model = build_model(&ModelSettings::new("anthropic/claude-sonnet-4-5"), env)?;
//! assert_eq!(model.id(), "anthropic/claude-sonnet-4-5");
//! assert!(!format!("{model:?}").contains("sk-ant-example"));
//!
//! // Without a key, the error says how to configure one.
//! let error = build_model(&ModelSettings::new("openai/gpt-4.1-mini"), |_| None).unwrap_err();
//! assert!(error.to_string().contains("OPENAI_API_KEY"));
//! # Ok::<(), ModelError>(())
//! ```
//!
//! Then `model.complete(&request, &|text| print!("{text}")).await` runs one turn.

pub mod anthropic;
mod http;
pub mod model;
pub mod openai;
mod retry;
pub mod select;
mod sse;

pub use anthropic::AnthropicModel;
pub use http::{ClientOptions, Streaming};
pub use model::{
    Block, ChatModel, ChatRequest, ChatResponse, Message, ModelError, ModelFuture, Role,
    StopReason, TextSink, ToolSpec, Usage,
};
pub use openai::{OpenAiFlavor, OpenAiModel};
pub use retry::RetryPolicy;
pub use select::{ModelSettings, ModelSpec, Provider, ResolvedModel, Source, build_model, resolve};
pub use sse::MAX_SSE_LINE_BYTES;
pub use switchboard_config::Secret;

/// Largest answer we read from a provider, streamed or not.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
