//! Answering a server's sampling request (`sampling/createMessage`, legacy or as a 2026-07-28
//! `input_required` round) with the configured chat model.

use serde_json::Value;
use switchboard_client::callbacks::{SamplingRequest, SamplingResponse};
use switchboard_llm::{Block, ChatModel, ChatRequest, Message, ModelError, Role};

/// The most output tokens a server may ask for in one sampling request.
pub const MAX_SAMPLING_TOKENS: u32 = 8192;

/// The text of one sampling content block; other kinds are described, since the chat models
/// here take text.
fn block_text(block: &Value) -> String {
    match block.get("type").and_then(Value::as_str) {
        Some("text") => block
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        Some("image") => "[an image the server sent, not shown to this model]".to_owned(),
        Some("audio") => "[audio the server sent, not shown to this model]".to_owned(),
        Some(other) => format!("[{other} content, not shown to this model]"),
        None => String::new(),
    }
}

/// A sampling request as a chat request: text content kept, the rest described, tools not
/// offered (the server asked for a completion, not for the user's tools).
pub fn chat_request(request: &SamplingRequest) -> ChatRequest {
    let messages = request
        .messages
        .iter()
        .map(|message| {
            let text = match &message.content {
                Value::Array(blocks) => {
                    blocks.iter().map(block_text).collect::<Vec<_>>().join("\n")
                }
                block => block_text(block),
            };
            Message {
                role: if message.role == "assistant" {
                    Role::Assistant
                } else {
                    Role::User
                },
                content: vec![Block::text(text)],
            }
        })
        .collect();
    let temperature = request
        .raw
        .get("temperature")
        .and_then(Value::as_f64)
        .map(|t| t as f32);
    ChatRequest {
        system: request.system_prompt.clone(),
        messages,
        tools: Vec::new(),
        max_tokens: u32::try_from(request.max_tokens)
            .unwrap_or(MAX_SAMPLING_TOKENS)
            .clamp(1, MAX_SAMPLING_TOKENS),
        temperature,
    }
}

/// Ask `model` for the sampling request's message.
pub async fn sample(
    model: &dyn ChatModel,
    request: &SamplingRequest,
) -> Result<SamplingResponse, ModelError> {
    let chat = chat_request(request);
    let response = model.complete(&chat, &|_| {}).await?;
    let text = Message {
        role: Role::Assistant,
        content: response.content,
    }
    .text();
    Ok(SamplingResponse::text(response.model, text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sampling_messages_become_chat_messages() {
        let request = SamplingRequest::from_json(json!({
            "messages": [
                {"role": "user", "content": {"type": "text", "text": "Summarise"}},
                {"role": "assistant", "content": [{"type": "text", "text": "Sure"}, {"type": "image", "data": "AA", "mimeType": "image/png"}]},
            ],
            "maxTokens": 100000,
            "systemPrompt": "Be brief",
            "temperature": 0.5,
        }))
        .expect("a sampling request");
        let chat = chat_request(&request);
        assert_eq!(chat.system.as_deref(), Some("Be brief"));
        assert_eq!(chat.max_tokens, MAX_SAMPLING_TOKENS);
        assert_eq!(chat.temperature, Some(0.5));
        assert_eq!(chat.messages[0], Message::user("Summarise"));
        assert_eq!(chat.messages[1].role, Role::Assistant);
        assert_eq!(
            chat.messages[1].text(),
            "Sure\n[an image the server sent, not shown to this model]"
        );
        assert!(chat.tools.is_empty());
    }
}
