//! Resource subscriptions in a legacy session, against our server kit: over an in-memory
//! stdio stream and over Streamable HTTP (where updates come on the session's GET stream).

use std::time::Duration;

use switchboard_client::{
    ClientError, ConnectOptions, Connection, EraPreference,
    model::{Era, ServerEvent},
};
use switchboard_config::{ServerEntry, Transport};
use switchboard_server::{Resource, ResourceContents, Server};
use tokio::sync::mpsc;

use crate::name;

const T: Duration = Duration::from_secs(5);

fn resource(uri: &'static str) -> Resource {
    Resource::new(uri, uri, "text/plain", move |_| async move {
        Ok(vec![ResourceContents::text(uri, "text/plain", "now")])
    })
}

/// Two resources clients may subscribe to.
fn server() -> Server {
    Server::builder("watched", "1")
        .resource(resource("kit://a"))
        .resource(resource("kit://b"))
        .resource_subscriptions()
        .build()
        .unwrap()
}

fn legacy() -> ConnectOptions {
    ConnectOptions {
        era: EraPreference::Legacy,
        ..ConnectOptions::default()
    }
}

async fn next_update(events: &mut mpsc::Receiver<ServerEvent>) -> String {
    loop {
        match tokio::time::timeout(T, events.recv()).await {
            Ok(Some(ServerEvent::ResourceUpdated { uri })) => return uri,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the events ended"),
            Err(_) => panic!("no resource update within {T:?}"),
        }
    }
}

/// Subscribe to `a`, and see only `a`'s updates; unsubscribe, and see none of it.
async fn only_subscribed_updates_arrive(server: &Server, connection: &Connection) {
    assert_eq!(connection.description().era, Era::Legacy);
    assert!(connection.description().capabilities.resource_subscribe);
    let mut events = connection.take_events().unwrap();
    connection.subscribe_resource("kit://a", T).await.unwrap();
    // Updates keep their order, so an update of b that leaked would come first.
    server.notify_resource_updated("kit://b");
    server.notify_resource_updated("kit://a");
    assert_eq!(next_update(&mut events).await, "kit://a");

    connection.unsubscribe_resource("kit://a", T).await.unwrap();
    connection.subscribe_resource("kit://b", T).await.unwrap();
    server.notify_resource_updated("kit://a");
    server.notify_resource_updated("kit://b");
    assert_eq!(next_update(&mut events).await, "kit://b");
}

#[tokio::test]
async fn a_stdio_session_hears_updates_of_what_it_subscribed_to() {
    let server = server();
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(
        server.clone(),
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client);
    let connection = Connection::connect_io(name("watched"), client_read, client_write, &legacy())
        .await
        .unwrap();
    only_subscribed_updates_arrive(&server, &connection).await;
}

#[tokio::test]
async fn an_http_session_hears_updates_on_its_event_stream() {
    let server = server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = tokio::spawn(switchboard_server::serve_listener(
        server.clone(),
        listener,
        switchboard_server::HttpConfig::default(),
    ));
    let entry = ServerEntry::new(
        name("watched"),
        Transport::StreamableHttp {
            url: format!("http://127.0.0.1:{port}/mcp").parse().unwrap(),
            headers: Default::default(),
        },
    );
    let connection = Connection::connect(&entry, &legacy()).await.unwrap();
    only_subscribed_updates_arrive(&server, &connection).await;
    serving.abort();
}

#[tokio::test]
async fn subscribing_needs_a_legacy_session_and_the_capability() {
    // 2026-07-28: not through resources/subscribe.
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(
        server(),
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client);
    let modern = Connection::connect_io(
        name("watched"),
        client_read,
        client_write,
        &ConnectOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(modern.description().era, Era::Modern);
    let error = modern.subscribe_resource("kit://a", T).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Protocol { detail, .. } if detail.contains("subscriptions/listen")),
        "{error}"
    );

    // A server that does not take subscriptions.
    let plain = Server::builder("plain", "1")
        .resource(resource("kit://a"))
        .build()
        .unwrap();
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(plain, server_read, server_write));
    let (client_read, client_write) = tokio::io::split(client);
    let connection = Connection::connect_io(name("plain"), client_read, client_write, &legacy())
        .await
        .unwrap();
    let error = connection
        .subscribe_resource("kit://a", T)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Protocol { detail, .. } if detail.contains("resources.subscribe")),
        "{error}"
    );
}
