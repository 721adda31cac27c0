//! Client against the fixture server over an in-memory duplex.

use std::time::Duration;

use serde_json::json;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, EraPreference,
    model::{Content, Direction, Era},
};
use test_support::fixture::{FixtureOptions, GREETING, serve_in_memory};

use crate::{name, tap};

async fn connect(options: ConnectOptions, fixture: FixtureOptions) -> Connection {
    let (reader, writer) = serve_in_memory(fixture);
    Connection::connect_io(name("fixture"), reader, writer, &options)
        .await
        .unwrap()
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn auto_era_speaks_the_modern_revision_to_a_modern_server() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let description = connection.description();
    assert_eq!(description.era, Era::Modern);
    assert_eq!(description.protocol_version, "2026-07-28");
    assert!(description.capabilities.tools);
    assert!(description.capabilities.tools_list_changed);
}

#[tokio::test]
async fn legacy_preference_uses_the_initialize_handshake() {
    let options = ConnectOptions {
        era: EraPreference::Legacy,
        ..ConnectOptions::default()
    };
    let connection = connect(options, FixtureOptions::default()).await;
    assert_eq!(connection.description().era, Era::Legacy);
    assert_eq!(connection.description().protocol_version, "2025-11-25");
    let implementation = connection.description().implementation.clone().unwrap();
    assert_eq!(implementation.name, "switchboard-fixture");
}

#[tokio::test]
async fn tools_are_listed_with_schemas_and_annotations() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let tools = connection.list_tools(T).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["add", "echo", "enable_extra", "fail", "pixel", "slow"]
    );
    let add = tools.iter().find(|t| t.name == "add").unwrap();
    assert!(add.is_read_only());
    assert_eq!(add.input_schema["required"], json!(["a", "b"]));
}

#[tokio::test]
async fn a_call_returns_content_and_structured_content() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let result = connection
        .call_tool(
            "add",
            json!({"a": 2, "b": 40}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(!result.is_error);
    assert_eq!(result.content, vec![Content::Text { text: "42".into() }]);
    assert_eq!(result.structured_content, Some(json!({"sum": 42})));
    assert_eq!(result.raw["structuredContent"], json!({"sum": 42}));
}

#[tokio::test]
async fn a_tool_that_fails_is_a_result_with_is_error_not_an_err() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let result = connection
        .call_tool("fail", None, CallOptions::default())
        .await
        .unwrap();
    assert!(result.is_error);
    assert_eq!(
        result.content,
        vec![Content::Text {
            text: "this tool always fails".into()
        }]
    );
}

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_error_from_the_server() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let error = connection
        .call_tool("nope", None, CallOptions::default())
        .await
        .unwrap_err();
    match error {
        ClientError::Rpc { code, method, .. } => {
            assert_eq!(code, -32602);
            assert_eq!(method, "tools/call");
        }
        other => panic!("expected an Rpc error, got {other}"),
    }
}

#[tokio::test]
async fn progress_notifications_reach_the_caller() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
    let options = CallOptions {
        progress: Some(sender),
        ..CallOptions::default()
    };
    let result = connection
        .call_tool(
            "slow",
            json!({"ms": 40, "steps": 4}).as_object().cloned(),
            options,
        )
        .await
        .unwrap();
    assert_eq!(
        result.content,
        vec![Content::Text {
            text: "done after 40 ms".into()
        }]
    );
    let mut seen = Vec::new();
    while let Ok(update) = receiver.try_recv() {
        seen.push((update.progress, update.total));
    }
    assert_eq!(
        seen,
        vec![
            (1.0, Some(4.0)),
            (2.0, Some(4.0)),
            (3.0, Some(4.0)),
            (4.0, Some(4.0))
        ]
    );
}

#[tokio::test]
async fn a_call_without_an_answer_times_out_and_the_connection_keeps_working() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let options = CallOptions {
        timeout: Duration::from_millis(100),
        ..CallOptions::default()
    };
    let error = connection
        .call_tool(
            "slow",
            json!({"ms": 5000, "steps": 1}).as_object().cloned(),
            options,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::RequestTimeout {
                method: "tools/call",
                ..
            }
        ),
        "{error}"
    );
    let result = connection
        .call_tool(
            "echo",
            json!({"text": "still here"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        result.content,
        vec![Content::Text {
            text: "still here".into()
        }]
    );
}

#[tokio::test]
async fn resources_templates_and_prompts() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let resources = connection.list_resources(T).await.unwrap();
    assert_eq!(resources.len(), 2);
    let templates = connection.list_resource_templates(T).await.unwrap();
    assert_eq!(templates[0].uri_template, "fixture://items/{id}");
    let read = connection
        .read_resource("fixture://greeting", T)
        .await
        .unwrap();
    assert_eq!(read.contents[0].text.as_deref(), Some(GREETING));
    let item = connection
        .read_resource("fixture://items/7", T)
        .await
        .unwrap();
    assert_eq!(item.contents[0].text.as_deref(), Some("{\"id\":\"7\"}"));
    let prompts = connection.list_prompts(T).await.unwrap();
    assert_eq!(prompts[0].name, "greet");
    assert!(prompts[0].arguments[0].required);
    let mut args = serde_json::Map::new();
    args.insert("name".into(), json!("Ada"));
    let prompt = connection.get_prompt("greet", args, T).await.unwrap();
    assert_eq!(prompt.messages[0].role, "user");
    assert_eq!(
        prompt.messages[0].content,
        Content::Text {
            text: "Please greet Ada warmly.".into()
        }
    );
}

#[tokio::test]
async fn reading_an_unknown_resource_is_an_error_naming_it() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    let error = connection
        .read_resource("fixture://missing", T)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("unknown resource fixture://missing"),
        "{error}"
    );
}

#[tokio::test]
async fn the_wire_tap_sees_both_directions() {
    let recorder = tap();
    let options = ConnectOptions {
        tap: Some(recorder.clone()),
        ..ConnectOptions::default()
    };
    let connection = connect(options, FixtureOptions::default()).await;
    connection
        .call_tool(
            "echo",
            json!({"text": "tapped"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let lines = recorder.lines.lock().unwrap().clone();
    let first = &lines[0];
    assert_eq!(first.1, Direction::Outgoing);
    assert!(first.2.contains("\"server/discover\""), "{}", first.2);
    assert!(
        lines
            .iter()
            .any(|(_, d, json)| *d == Direction::Outgoing && json.contains("\"tools/call\""))
    );
    assert!(
        lines
            .iter()
            .any(|(_, d, json)| *d == Direction::Incoming && json.contains("tapped"))
    );
    assert!(lines.iter().all(|(server, _, _)| server == "fixture"));
}

#[tokio::test]
async fn server_events_report_list_changes() {
    // In the legacy era a server sends list_changed on its own; the modern era needs a
    // subscriptions/listen stream, which the client does not open yet.
    let options = ConnectOptions {
        era: EraPreference::Legacy,
        ..ConnectOptions::default()
    };
    let connection = connect(options, FixtureOptions::default()).await;
    let mut events = connection.take_events().unwrap();
    assert!(
        connection.take_events().is_none(),
        "events can be taken once"
    );
    connection
        .call_tool("enable_extra", None, CallOptions::default())
        .await
        .unwrap();
    let event = tokio::time::timeout(T, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, switchboard_client::model::ServerEvent::ToolsChanged),
        "{event:?}"
    );
    let tools = connection.list_tools(T).await.unwrap();
    assert!(tools.iter().any(|t| t.name == "extra"));
}

#[tokio::test]
async fn modern_list_changes_arrive_through_a_subscription() {
    let connection = connect(ConnectOptions::default(), FixtureOptions::default()).await;
    assert_eq!(connection.description().era, Era::Modern);
    let mut events = connection.take_events().unwrap();
    // Give the subscriptions/listen request time to be acknowledged before the change.
    let mut subscribed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        connection
            .call_tool("enable_extra", None, CallOptions::default())
            .await
            .unwrap();
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            assert!(
                matches!(event, switchboard_client::model::ServerEvent::ToolsChanged),
                "{event:?}"
            );
            subscribed = true;
            break;
        }
    }
    assert!(
        subscribed,
        "no tools/list_changed arrived in the modern era"
    );
}

#[tokio::test]
async fn completing_on_a_server_without_completions_is_empty_and_sends_nothing() {
    let recorder = tap();
    let options = ConnectOptions {
        tap: Some(recorder.clone()),
        ..ConnectOptions::default()
    };
    let connection = connect(options, FixtureOptions::default()).await;
    assert!(!connection.description().capabilities.completions);
    let target = switchboard_client::model::CompletionTarget::Prompt("greeting".into());
    let completion = connection.complete(&target, "name", "a", T).await.unwrap();
    assert_eq!(completion, switchboard_client::model::Completion::default());
    let sent = recorder.lines.lock().unwrap();
    assert!(
        !sent
            .iter()
            .any(|(_, direction, json)| *direction == Direction::Outgoing
                && json.contains("completion/complete"))
    );
}
