//! List caching: lists are fetched once and kept until the server says they changed.

use std::sync::{Arc, Mutex};

use serde_json::json;
use switchboard_client::{CallOptions, ConnectOptions, Connection, model::ServerEvent};
use switchboard_host::{EventObserver, Host, HostOptions};
use tokio::sync::Notify;

use crate::{eventually, fixture, host_of, host_with, legacy, name, scripted, sent_methods};

fn has_tool(tools: &[switchboard_host::HostTool], tool: &str) -> bool {
    tools.iter().any(|t| t.tool.name == tool)
}

#[tokio::test]
async fn a_second_listing_comes_from_the_cache() {
    let tap = sent_methods();
    let options = ConnectOptions {
        tap: Some(tap.clone()),
        ..legacy()
    };
    let host = Host::from_connections(
        vec![fixture("alpha", &options).await],
        HostOptions::default(),
    );

    let first = host.server_tools("alpha").await.unwrap();
    let second = host.server_tools("alpha").await.unwrap();
    let (listed, _) = host.tools(None).await.unwrap();

    assert!(
        Arc::ptr_eq(&first, &second),
        "the second listing made a new list"
    );
    assert_eq!(listed.len(), first.len());
    let lists_sent = tap.methods().iter().filter(|m| *m == "tools/list").count();
    assert_eq!(lists_sent, 1, "{:?}", tap.methods());
}

#[tokio::test]
async fn tools_list_changed_makes_the_next_listing_fresh() {
    let host = host_of(&["alpha"]).await;
    let (before, _) = host.tools(Some("alpha")).await.unwrap();
    assert!(has_tool(&before, "enable_extra"), "{before:?}");
    assert!(!has_tool(&before, "extra"), "{before:?}");
    let cached = host.server_tools("alpha").await.unwrap();
    let enable = host.resolve_tool("alpha/enable_extra").await.unwrap();

    host.call_tool(&enable, json!({}), CallOptions::default())
        .await
        .unwrap();

    let after = eventually("the extra tool to be listed", || async {
        let (tools, _) = host.tools(Some("alpha")).await.unwrap();
        has_tool(&tools, "extra").then_some(tools)
    })
    .await;
    assert_eq!(after.len(), before.len() + 1);
    let fresh = host.server_tools("alpha").await.unwrap();
    assert!(!Arc::ptr_eq(&cached, &fresh));
    let extra = host.resolve_tool("extra").await.unwrap();
    assert_eq!(extra.qualified, "alpha__extra");
}

#[tokio::test]
async fn the_event_observer_hears_which_server_changed_its_tools() {
    let seen: Arc<Mutex<Vec<(String, ServerEvent)>>> = Arc::default();
    let record = seen.clone();
    let observer: EventObserver = Arc::new(move |server, event| {
        record
            .lock()
            .unwrap()
            .push((server.as_str().to_owned(), event.clone()));
    });
    let host = host_with(
        &["alpha", "beta"],
        HostOptions {
            on_event: Some(observer),
            ..HostOptions::default()
        },
    )
    .await;
    let enable = host.resolve_tool("beta/enable_extra").await.unwrap();

    host.call_tool(&enable, json!({}), CallOptions::default())
        .await
        .unwrap();

    eventually("beta's ToolsChanged event", || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(server, event)| server == "beta" && matches!(event, ServerEvent::ToolsChanged))
            .then_some(())
    })
    .await;
    let seen = seen.lock().unwrap();
    assert!(
        !seen.iter().any(|(server, _)| server == "alpha"),
        "alpha changed nothing: {seen:?}"
    );
}

#[tokio::test]
async fn a_list_change_during_a_listing_is_not_lost() {
    let go_ahead = Arc::new(Notify::new());
    let release = go_ahead.clone();
    // The observer runs after the host has applied the event to its cache; only then may the
    // server answer the listing that the change overtook.
    let observer: EventObserver = Arc::new(move |_, event| {
        if matches!(event, ServerEvent::ToolsChanged) {
            release.notify_one();
        }
    });
    let (reader, writer) = scripted::serve_list_change_during_first_listing(go_ahead);
    let connection = Connection::connect_io(name("racy"), reader, writer, &legacy())
        .await
        .unwrap();
    let host = Host::from_connections(
        vec![connection],
        HostOptions {
            on_event: Some(observer),
            ..HostOptions::default()
        },
    );

    let (first, _) = host.tools(Some("racy")).await.unwrap();
    assert!(
        !has_tool(&first, "extra"),
        "the scripted server answers the old list first"
    );
    let (second, _) = host.tools(Some("racy")).await.unwrap();

    assert!(
        has_tool(&second, "extra"),
        "the list changed after the first listing was requested, yet the host kept it: {second:?}"
    );
}
