//! OpenAI-compatible Chat Completions against the fake, streamed and not.

use serde_json::json;
use switchboard_llm::{
    Block, ChatModel, Message, ModelError, ModelSettings, Role, StopReason, Streaming, Usage,
    build_model,
};
use test_support::fake_llm::{FakeLlm, RawTurn, Reply, Script};

use crate::{BOTH, KEY, Sink, openai, options, question};

#[tokio::test]
async fn a_text_reply_streams_to_the_sink_and_reports_usage() {
    for streaming in BOTH {
        let fake = FakeLlm::start(
            Script::new().reply(Reply::text("Hello from the fake model.").with_usage(42, 7)),
        )
        .await
        .expect("the fake starts");
        let model = openai(&fake, streaming);
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
        assert_eq!(response.model, "gpt-test");
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
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(
            sent.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(sent.streamed(), streaming == Streaming::On);
        if streaming == Streaming::On {
            assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
        }
        assert_eq!(sent.body["max_completion_tokens"], 256);
        assert_eq!(
            sent.body["messages"],
            json!([
                {"role": "system", "content": "You are a test."},
                {"role": "user", "content": "hi"}
            ])
        );
        assert_eq!(
            sent.body["tools"][0],
            json!({"type": "function", "function": {
                "name": "expenses__list", "description": "List expenses",
                "parameters": {"type": "object", "properties": {"month": {"type": "string"}}}
            }})
        );
    }
}

#[tokio::test]
async fn two_tool_calls_in_one_turn_are_assembled_from_fragments() {
    for streaming in BOTH {
        let fake = FakeLlm::start(
            Script::new().reply(
                Reply::text("Checking.")
                    .with_tool_call("expenses__list", json!({"month": "2026-01", "limit": 5}))
                    .with_tool_call_id("call_b", "bookmarks__search", json!({"query": "rust"})),
            ),
        )
        .await
        .expect("the fake starts");
        let model = openai(&fake, streaming);
        let response = model
            .complete(&question("what did I spend?"), &|_| {})
            .await
            .expect("the turn succeeds");

        assert_eq!(response.stop, StopReason::ToolUse);
        assert_eq!(
            response.content,
            vec![
                Block::text("Checking."),
                Block::ToolUse {
                    id: "call_fake_1_0".into(),
                    name: "expenses__list".into(),
                    input: json!({"month": "2026-01", "limit": 5}),
                },
                Block::ToolUse {
                    id: "call_b".into(),
                    name: "bookmarks__search".into(),
                    input: json!({"query": "rust"}),
                },
            ]
        );
    }
}

#[tokio::test]
async fn tool_results_go_back_as_tool_messages_with_errors_marked() {
    for streaming in BOTH {
        let fake =
            FakeLlm::start(Script::new().reply(Reply::text("The total is {last_tool_result}.")))
                .await
                .expect("the fake starts");
        let model = openai(&fake, streaming);
        let mut request = question("what did I spend?");
        request.messages.push(Message {
            role: Role::Assistant,
            content: vec![
                Block::text("Checking."),
                Block::ToolUse {
                    id: "call_1".into(),
                    name: "expenses__list".into(),
                    input: json!({"month": "2026-01"}),
                },
                Block::ToolUse {
                    id: "call_2".into(),
                    name: "bookmarks__search".into(),
                    input: json!({"query": "x"}),
                },
            ],
        });
        request.messages.push(Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    tool_use_id: "call_2".into(),
                    content: "no bookmarks server".into(),
                    is_error: true,
                },
                Block::ToolResult {
                    tool_use_id: "call_1".into(),
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
        let messages = sent.body["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert_eq!(
            messages[2],
            json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "expenses__list", "arguments": "{\"month\":\"2026-01\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "bookmarks__search", "arguments": "{\"query\":\"x\"}"}}
            ]})
        );
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "call_2", "content": "Error: no bookmarks server"})
        );
        assert_eq!(
            messages[4],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "EUR 12.50"})
        );
    }
}

#[tokio::test]
async fn ollama_needs_no_key_and_sends_no_authorization() {
    let fake = FakeLlm::start(Script::new().reply(Reply::text("local answer")))
        .await
        .expect("the fake starts");
    let host = fake.base_url().to_owned();
    let settings = ModelSettings {
        options: options(Streaming::On),
        ..ModelSettings::new("ollama/qwen2.5:7b")
    };
    let model = build_model(&settings, |name| {
        (name == "OLLAMA_HOST").then(|| host.clone())
    })
    .expect("ollama needs no key");
    assert_eq!(model.id(), "ollama/qwen2.5:7b");
    let response = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect("the turn succeeds");
    assert_eq!(response.content, vec![Block::text("local answer")]);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["model"], "qwen2.5:7b");
    assert_eq!(
        sent.body["max_tokens"], 256,
        "compatible servers get max_tokens"
    );
}

/// What llama.cpp, Ollama and older vLLM versions send: no ids, arguments as an object,
/// `finish_reason: "stop"` after tool calls, no usage and no `[DONE]`.
#[tokio::test]
async fn lenient_about_what_compatible_servers_leave_out() {
    let stream = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"function\":{\"name\":\"expenses__list\",\"arguments\":{\"month\":\"2026-01\"}}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"bookmarks__search\",\"arguments\":\"{\\\"query\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"\\\"rust\\\"}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    );
    let fake = FakeLlm::start(Script::new().raw(RawTurn::sse(stream)))
        .await
        .expect("the fake starts");
    let model = openai(&fake, Streaming::On);
    let response = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect("lenient parsing succeeds");
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(response.usage, Usage::default());
    let calls: Vec<_> = response
        .tool_uses()
        .map(|(id, name, input)| (id.to_owned(), name.to_owned(), input.clone()))
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                "call_sb1".into(),
                "expenses__list".into(),
                json!({"month": "2026-01"})
            ),
            (
                "call_sb2".into(),
                "bookmarks__search".into(),
                json!({"query": "rust"})
            ),
        ]
    );
}

#[tokio::test]
async fn a_non_streamed_answer_with_arguments_as_an_object_is_understood() {
    let body = json!({"model": "llama", "choices": [{"message": {"role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "expenses__list", "arguments": {"month": "2026-02"}}}]},
        "finish_reason": "tool_calls"}]});
    let fake = FakeLlm::start(Script::new().raw(RawTurn::json(body.to_string())))
        .await
        .expect("the fake starts");
    let model = openai(&fake, Streaming::Off);
    let response = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect("the turn succeeds");
    assert_eq!(
        response.content,
        vec![Block::ToolUse {
            id: "call_sb1".into(),
            name: "expenses__list".into(),
            input: json!({"month": "2026-02"}),
        }]
    );
    assert_eq!(response.model, "llama");
}

/// Some servers ignore `stream: true` and answer with one JSON document.
#[tokio::test]
async fn a_json_answer_to_a_stream_request_is_accepted() {
    let body = json!({"choices": [{"message": {"role": "assistant", "content": "whole answer"},
        "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}});
    let fake = FakeLlm::start(Script::new().raw(RawTurn::json(body.to_string())))
        .await
        .expect("the fake starts");
    let sink = Sink::default();
    let response = openai(&fake, Streaming::On)
        .complete(&question("hi"), &|text| sink.push(text))
        .await
        .expect("the turn succeeds");
    assert_eq!(response.content, vec![Block::text("whole answer")]);
    assert_eq!(sink.text(), "whole answer");
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 3,
            output_tokens: 2
        }
    );
}

async fn fails_with_invalid_response(raw: RawTurn) -> String {
    let fake = FakeLlm::start(Script::new().raw(raw).reply(Reply::text("unused")))
        .await
        .expect("the fake starts");
    let model = openai(&fake, Streaming::On);
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("a broken stream is an error");
    assert!(
        matches!(
            error,
            ModelError::InvalidResponse {
                provider: "OpenAI",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 1, "an invalid answer is not retried");
    error.to_string()
}

#[tokio::test]
async fn a_stream_cut_before_the_finish_is_an_error() {
    let error = fails_with_invalid_response(RawTurn::sse(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hal\"}}]}\n\n",
    ))
    .await;
    assert!(error.contains("before `[DONE]`"), "{error}");
}

#[tokio::test]
async fn malformed_chunk_json_is_an_error() {
    let error = fails_with_invalid_response(RawTurn::sse("data: {\"choices\": [\n\n")).await;
    assert!(
        error.contains("a stream chunk is not what was expected"),
        "{error}"
    );
}

#[tokio::test]
async fn tool_arguments_that_are_not_json_are_an_error() {
    let error = fails_with_invalid_response(RawTurn::sse(concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"expenses__list\",\"arguments\":\"{\\\"month\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    )))
    .await;
    assert!(
        error.contains("the arguments of tool call `expenses__list` are not valid JSON"),
        "{error}"
    );
}

#[tokio::test]
async fn an_error_inside_the_stream_is_reported() {
    let fake = FakeLlm::start(Script::new().raw(RawTurn::sse(concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hal\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"the model crashed\",\"code\":500}}\n\n",
    ))))
    .await
    .expect("the fake starts");
    let model = openai(&fake, Streaming::On);
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("the stream reported an error");
    assert_eq!(
        error.to_string(),
        "OpenAI answered HTTP 500: the model crashed (reported inside the answer)"
    );
    assert_eq!(fake.requests().len(), 1, "text was streamed, so no retry");
}
