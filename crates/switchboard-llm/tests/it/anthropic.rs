//! The Anthropic Messages API against the fake, streamed and not.

use serde_json::json;
use switchboard_llm::{
    Block, ChatModel, ChatRequest, Message, ModelError, Role, StopReason, Streaming, Usage,
};
use test_support::fake_llm::{FakeLlm, RawTurn, Reply, Script};

use crate::{BOTH, KEY, Sink, anthropic, question};

#[tokio::test]
async fn a_text_reply_streams_to_the_sink_and_reports_usage() {
    for streaming in BOTH {
        let fake = FakeLlm::start(
            Script::new().reply(Reply::text("Hello from the fake model.").with_usage(42, 7)),
        )
        .await
        .expect("the fake starts");
        let model = anthropic(&fake, streaming);
        let sink = Sink::default();
        let response = model
            .complete(&question("hi"), &|text| sink.push(text))
            .await
            .expect("the turn succeeds");

        assert_eq!(
            response.content,
            vec![Block::text("Hello from the fake model.")]
        );
        assert_eq!(response.stop, StopReason::EndTurn);
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 42,
                output_tokens: 7
            }
        );
        assert_eq!(response.model, "claude-test");
        assert_eq!(sink.text(), "Hello from the fake model.");
        if streaming == Streaming::On {
            assert!(
                sink.pieces().len() > 1,
                "deltas arrive one by one: {:?}",
                sink.pieces()
            );
        }

        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        let sent = &requests[0];
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some(KEY));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(sent.header("authorization"), None);
        assert_eq!(sent.streamed(), streaming == Streaming::On);
        assert_eq!(sent.body["model"], "claude-test");
        assert_eq!(sent.body["system"], "You are a test.");
        assert_eq!(sent.body["max_tokens"], 256);
        assert_eq!(
            sent.body["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
        );
        assert_eq!(sent.body["tools"][0]["name"], "expenses__list");
        assert_eq!(
            sent.body["tools"][1]["input_schema"]["properties"]["query"]["type"],
            "string"
        );
    }
}

#[tokio::test]
async fn two_tool_calls_in_one_turn_are_assembled_from_fragments() {
    for streaming in BOTH {
        let fake = FakeLlm::start(
            Script::new().reply(
                Reply::text("Let me check both.")
                    .with_tool_call("expenses__list", json!({"month": "2026-01", "limit": 5}))
                    .with_tool_call_id("toolu_b", "bookmarks__search", json!({"query": "rust"})),
            ),
        )
        .await
        .expect("the fake starts");
        let model = anthropic(&fake, streaming);
        let response = model
            .complete(&question("what did I spend?"), &|_| {})
            .await
            .expect("the turn succeeds");

        assert_eq!(response.stop, StopReason::ToolUse);
        assert_eq!(
            response.content,
            vec![
                Block::text("Let me check both."),
                Block::ToolUse {
                    id: "toolu_fake_1_0".into(),
                    name: "expenses__list".into(),
                    input: json!({"month": "2026-01", "limit": 5}),
                },
                Block::ToolUse {
                    id: "toolu_b".into(),
                    name: "bookmarks__search".into(),
                    input: json!({"query": "rust"}),
                },
            ]
        );
        assert_eq!(response.tool_uses().count(), 2);
    }
}

#[tokio::test]
async fn tool_results_go_back_as_tool_result_blocks() {
    for streaming in BOTH {
        let fake =
            FakeLlm::start(Script::new().reply(Reply::text("The total is {last_tool_result}.")))
                .await
                .expect("the fake starts");
        let model = anthropic(&fake, streaming);
        let mut request = question("what did I spend?");
        request.messages.push(Message {
            role: Role::Assistant,
            content: vec![
                Block::ToolUse {
                    id: "toolu_1".into(),
                    name: "expenses__list".into(),
                    input: json!({"month": "2026-01"}),
                },
                Block::ToolUse {
                    id: "toolu_2".into(),
                    name: "bookmarks__search".into(),
                    input: json!({"query": "x"}),
                },
            ],
        });
        request.messages.push(Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    tool_use_id: "toolu_2".into(),
                    content: "no bookmarks server".into(),
                    is_error: true,
                },
                Block::ToolResult {
                    tool_use_id: "toolu_1".into(),
                    content: "EUR 12.50".into(),
                    is_error: false,
                },
            ],
        });
        let response = model
            .complete(&request, &|_| {})
            .await
            .expect("the turn succeeds");
        assert_eq!(
            response.content,
            vec![Block::text("The total is EUR 12.50.")]
        );

        let sent = &fake.requests()[0];
        assert_eq!(
            sent.body["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "expenses__list", "input": {"month": "2026-01"}},
                {"type": "tool_use", "id": "toolu_2", "name": "bookmarks__search", "input": {"query": "x"}}
            ]})
        );
        assert_eq!(
            sent.body["messages"][2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no bookmarks server", "is_error": true},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "EUR 12.50"}
            ]})
        );
    }
}

const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-test\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";

fn text_block(text: &str) -> String {
    format!(
        "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
         event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
    )
}

async fn fails_with_invalid_response(raw: RawTurn) -> (String, usize) {
    let fake = FakeLlm::start(Script::new().raw(raw).reply(Reply::text("unused")))
        .await
        .expect("the fake starts");
    let model = anthropic(&fake, Streaming::On);
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("a broken stream is an error");
    assert!(
        matches!(
            error,
            ModelError::InvalidResponse {
                provider: "Anthropic",
                ..
            }
        ),
        "{error:?}"
    );
    (error.to_string(), fake.requests().len())
}

#[tokio::test]
async fn a_stream_that_ends_before_message_stop_is_an_error_and_not_retried_after_text() {
    let (error, requests) =
        fails_with_invalid_response(RawTurn::sse(format!("{START}{}", text_block("Hal")))).await;
    assert!(error.contains("before `message_stop`"), "{error}");
    assert_eq!(requests, 1, "text reached the sink, so no retry");
}

#[tokio::test]
async fn malformed_event_json_is_an_error() {
    let (error, _) = fails_with_invalid_response(RawTurn::sse(format!(
        "{START}event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\n\n"
    )))
    .await;
    assert!(
        error.contains("a stream event is not what was expected"),
        "{error}"
    );
}

#[tokio::test]
async fn tool_input_that_is_not_json_is_an_error() {
    let body = format!(
        "{START}event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"expenses__list\",\"input\":{{}}}}}}\n\n\
         event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":\"{{\\\"month\\\": \"}}}}\n\n\
         event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
         event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
    );
    let (error, _) = fails_with_invalid_response(RawTurn::sse(body)).await;
    assert!(
        error.contains("the input of tool call `expenses__list` is not valid JSON"),
        "{error}"
    );
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_an_error() {
    let (error, _) =
        fails_with_invalid_response(RawTurn::json("<html>502 Bad Gateway</html>")).await;
    assert!(error.contains("<html>502 Bad Gateway</html>"), "{error}");
}

#[tokio::test]
async fn an_overloaded_error_event_before_any_text_is_retried() {
    let fake = FakeLlm::start(
        Script::new()
            .raw(RawTurn::sse(format!(
                "{START}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n"
            )))
            .reply(Reply::text("Second time lucky.")),
    )
    .await
    .expect("the fake starts");
    let model = anthropic(&fake, Streaming::On);
    let response = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect("the retry succeeds");
    assert_eq!(response.content, vec![Block::text("Second time lucky.")]);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn an_error_event_after_text_is_final() {
    let fake = FakeLlm::start(
        Script::new()
            .raw(RawTurn::sse(format!(
                "{START}{}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n",
                text_block("Half an ans")
            )))
            .reply(Reply::text("never sent")),
    )
    .await
    .expect("the fake starts");
    let model = anthropic(&fake, Streaming::On);
    let sink = crate::Sink::default();
    let error = model
        .complete(&question("hi"), &|text| sink.push(text))
        .await
        .expect_err("the stream broke off");
    assert_eq!(sink.text(), "Half an ans");
    assert_eq!(
        error.to_string(),
        "Anthropic answered HTTP 529: Overloaded (reported inside the answer)"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_empty_request_still_sends_the_required_max_tokens() {
    let fake = FakeLlm::start(Script::new().reply(Reply::text("ok")))
        .await
        .expect("the fake starts");
    let model = anthropic(&fake, Streaming::On);
    let request = ChatRequest {
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    };
    model
        .complete(&request, &|_| {})
        .await
        .expect("the turn succeeds");
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["max_tokens"], 4096);
    assert!(sent.body.get("tools").is_none());
    assert!(sent.body.get("system").is_none());
}
