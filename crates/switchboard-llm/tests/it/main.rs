//! Both providers against the scripted fake LLM on loopback (`test_support::fake_llm`).

mod anthropic;
mod errors;
mod openai;
mod select;

use std::{sync::Mutex, time::Duration};

use serde_json::json;
use switchboard_llm::{
    AnthropicModel, ChatRequest, ClientOptions, Message, OpenAiFlavor, OpenAiModel, RetryPolicy,
    Secret, Streaming, ToolSpec,
};
use test_support::fake_llm::FakeLlm;
use url::Url;

/// The key every test model sends; it must never show up in an error or in Debug output.
pub const KEY: &str = "sk-test-0123456789-SECRET";

/// Retries with delays small enough for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(20))
}

pub fn options(streaming: Streaming) -> ClientOptions {
    ClientOptions {
        retry: fast_retry(),
        streaming,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
    }
}

pub fn url(text: &str) -> Url {
    Url::parse(text).expect("a valid URL")
}

pub fn anthropic(fake: &FakeLlm, streaming: Streaming) -> AnthropicModel {
    AnthropicModel::new(
        "claude-test",
        &url(fake.base_url()),
        Secret::new(KEY),
        options(streaming),
    )
    .expect("the model builds")
}

pub fn openai(fake: &FakeLlm, streaming: Streaming) -> OpenAiModel {
    OpenAiModel::new(
        OpenAiFlavor::OpenAi,
        "gpt-test",
        &url(&fake.openai_base_url()),
        Some(Secret::new(KEY)),
        options(streaming),
    )
    .expect("the model builds")
}

pub const BOTH: [Streaming; 2] = [Streaming::On, Streaming::Off];

/// Collects what a model streams to its sink, piece by piece.
#[derive(Debug, Default)]
pub struct Sink(Mutex<Vec<String>>);

impl Sink {
    pub fn push(&self, text: &str) {
        self.0.lock().expect("sink lock").push(text.to_owned());
    }

    pub fn pieces(&self) -> Vec<String> {
        self.0.lock().expect("sink lock").clone()
    }

    pub fn text(&self) -> String {
        self.pieces().concat()
    }
}

pub fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "expenses__list".into(),
            description: "List expenses".into(),
            input_schema: json!({"type": "object", "properties": {"month": {"type": "string"}}}),
        },
        ToolSpec {
            name: "bookmarks__search".into(),
            description: "Search bookmarks".into(),
            input_schema: json!({"type": "object", "properties": {"query": {"type": "string"}}}),
        },
    ]
}

pub fn question(text: &str) -> ChatRequest {
    ChatRequest {
        system: Some("You are a test.".into()),
        messages: vec![Message::user(text)],
        tools: tools(),
        max_tokens: 256,
        temperature: None,
    }
}
