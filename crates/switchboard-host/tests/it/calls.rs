//! Calling tools: arguments are checked against the tool's input schema before they leave.

use serde_json::json;
use switchboard_client::CallOptions;
use switchboard_host::{Host, HostError, HostOptions};

use crate::{fixture, legacy, sent_methods};

#[tokio::test]
async fn arguments_that_break_the_schema_are_rejected_before_the_call_is_sent() {
    let tap = sent_methods();
    let options = switchboard_client::ConnectOptions {
        tap: Some(tap.clone()),
        ..legacy()
    };
    let host = Host::from_connections(
        vec![fixture("alpha", &options).await],
        HostOptions::default(),
    );
    let add = host.resolve_tool("alpha/add").await.unwrap();

    let error = host
        .call_tool(&add, json!({"a": "x"}), CallOptions::default())
        .await
        .unwrap_err();

    match &error {
        HostError::InvalidArguments {
            server,
            tool,
            violations,
        } => {
            assert_eq!(server.as_str(), "alpha");
            assert_eq!(tool, "add");
            let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
            assert!(pointers.contains(&"/a"), "{violations:?}");
            assert!(
                violations
                    .iter()
                    .any(|v| v.message.contains("\"b\" is a required property")),
                "{violations:?}"
            );
        }
        other => panic!("expected InvalidArguments, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("the arguments for alpha/add do not match its input schema: "),
        "{error}"
    );
    let sent = tap.methods();
    assert!(sent.contains(&"tools/list".to_owned()), "{sent:?}");
    assert!(
        !sent.contains(&"tools/call".to_owned()),
        "the invalid call reached the server: {sent:?}"
    );
}

#[tokio::test]
async fn arguments_that_are_not_an_object_are_rejected() {
    let host = crate::host_of(&["alpha"]).await;
    let add = host.resolve_tool("alpha/add").await.unwrap();

    let error = host
        .call_tool(&add, json!([1]), CallOptions::default())
        .await
        .unwrap_err();

    assert!(
        matches!(error, HostError::ArgumentsNotAnObject { found: "an array" }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the arguments must be a JSON object, not an array"
    );
}

#[tokio::test]
async fn no_arguments_are_checked_as_an_empty_object() {
    let host = crate::host_of(&["alpha"]).await;
    let add = host.resolve_tool("alpha/add").await.unwrap();

    let error = host
        .call_tool(&add, serde_json::Value::Null, CallOptions::default())
        .await
        .unwrap_err();

    match &error {
        HostError::InvalidArguments { violations, .. } => assert!(
            violations
                .iter()
                .any(|v| v.message.contains("\"a\" is a required property")),
            "{violations:?}"
        ),
        other => panic!("expected InvalidArguments, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_call_returns_the_structured_result() {
    let host = crate::host_of(&["alpha", "beta"]).await;
    let add = host.resolve_tool("beta__add").await.unwrap();

    let result = host
        .call_tool(&add, json!({"a": 2, "b": 40}), CallOptions::default())
        .await
        .unwrap();

    assert!(!result.is_error);
    assert_eq!(result.structured_content, Some(json!({"sum": 42})));
}
