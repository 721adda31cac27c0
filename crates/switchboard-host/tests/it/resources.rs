//! Resources and prompts: finding the server that has them.

use std::sync::Arc;

use serde_json::{Map, json};
use switchboard_client::{Connection, model::Content};
use switchboard_host::{Host, HostError, HostOptions};
use test_support::fixture::GREETING;
use tokio::sync::Notify;

use crate::{fixture, host_of, legacy, name, scripted};

#[tokio::test]
async fn a_uri_listed_by_one_server_is_read_from_that_server() {
    // Two servers are connected, so the host cannot fall back to "the only server": it has to
    // find the one that lists the URI. The scripted server has no resources at all.
    let (reader, writer) =
        scripted::serve_list_change_during_first_listing(Arc::new(Notify::new()));
    let tools_only = Connection::connect_io(name("tools-only"), reader, writer, &legacy())
        .await
        .unwrap();
    let host = Host::from_connections(
        vec![tools_only, fixture("alpha", &legacy()).await],
        HostOptions::default(),
    );

    let (server, read) = host
        .read_resource("fixture://greeting", None)
        .await
        .unwrap();

    assert_eq!(server.as_str(), "alpha");
    assert_eq!(read.contents.len(), 1);
    assert_eq!(read.contents[0].uri, "fixture://greeting");
    assert_eq!(read.contents[0].text.as_deref(), Some(GREETING));
}

#[tokio::test]
async fn a_template_uri_is_read_from_the_only_server() {
    let host = host_of(&["alpha"]).await;

    let (server, read) = host.read_resource("fixture://items/9", None).await.unwrap();

    assert_eq!(server.as_str(), "alpha");
    let text = read.contents[0].text.as_deref().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap(),
        json!({"id": "9"})
    );
}

#[tokio::test]
async fn an_unlisted_uri_with_several_servers_needs_a_server_name() {
    let host = host_of(&["alpha", "beta"]).await;

    let error = host
        .read_resource("fixture://items/9", None)
        .await
        .unwrap_err();

    match &error {
        HostError::UnknownResource { uri } => assert_eq!(uri, "fixture://items/9"),
        other => panic!("expected UnknownResource, got {other:?}"),
    }
    assert!(error.to_string().contains("--server"), "{error}");
    let (server, read) = host
        .read_resource("fixture://items/9", Some("beta"))
        .await
        .unwrap();
    assert_eq!(server.as_str(), "beta");
    assert_eq!(read.contents[0].uri, "fixture://items/9");
}

#[tokio::test]
async fn a_prompt_named_with_its_server_is_rendered_by_that_server() {
    let host = host_of(&["alpha", "beta"]).await;

    let (server, prompt) = host.resolve_prompt("alpha/greet").await.unwrap();
    let mut arguments = Map::new();
    arguments.insert("name".to_owned(), json!("Ada"));
    let result = host
        .get_prompt(&server, &prompt.name, arguments)
        .await
        .unwrap();

    assert_eq!(server.as_str(), "alpha");
    assert_eq!(prompt.name, "greet");
    assert_eq!(result.messages.len(), 1);
    assert_eq!(result.messages[0].role, "user");
    assert_eq!(
        result.messages[0].content,
        Content::Text {
            text: "Please greet Ada warmly.".to_owned()
        }
    );
}

#[tokio::test]
async fn one_prompt_is_found_by_its_qualified_or_its_own_name() {
    let host = host_of(&["alpha", "beta"]).await;

    let (server, prompt) = host.qualified_prompt("beta__greet").await.unwrap().unwrap();
    assert_eq!((server.as_str(), prompt.name.as_str()), ("beta", "greet"));
    let (server, prompt) = host.server_prompt("alpha", "greet").await.unwrap().unwrap();
    assert_eq!((server.as_str(), prompt.name.as_str()), ("alpha", "greet"));

    // Names that are not quite right find nothing.
    for qualified in ["beta__nope", "gamma__greet", "greet", "beta_greet"] {
        assert!(
            host.qualified_prompt(qualified).await.unwrap().is_none(),
            "{qualified}"
        );
    }
    assert!(
        host.server_prompt("alpha", "alpha__greet")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        host.server_prompt("gamma", "greet").await,
        Err(HostError::UnknownServer { .. })
    ));
}

#[tokio::test]
async fn an_ambiguous_prompt_is_reported_as_a_prompt() {
    let host = host_of(&["alpha", "beta"]).await;

    let error = host.resolve_prompt("greet").await.unwrap_err();

    let message = error.to_string();
    assert!(
        matches!(error, HostError::AmbiguousPrompt { ref candidates, .. } if candidates == &["alpha/greet", "beta/greet"]),
        "{message}"
    );
    assert!(message.contains("write it as SERVER/PROMPT"), "{message}");
    assert!(!message.contains("tool"), "{message}");
}

#[tokio::test]
async fn a_uri_listed_by_several_servers_needs_a_server_name() {
    let host = host_of(&["alpha", "beta"]).await;
    let error = host
        .read_resource("fixture://greeting", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, HostError::AmbiguousResource { servers, .. } if servers == &["alpha", "beta"]),
        "{error}"
    );
    assert!(
        error.to_string().contains("name one with --server"),
        "{error}"
    );
    let (server, read) = host
        .read_resource("fixture://greeting", Some("beta"))
        .await
        .unwrap();
    assert_eq!(server.as_str(), "beta");
    assert_eq!(read.contents[0].text.as_deref(), Some(GREETING));
}
