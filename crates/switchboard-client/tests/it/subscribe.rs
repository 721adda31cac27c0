//! Resource subscriptions against our server kit, in both eras, over an in-memory stdio stream
//! and over Streamable HTTP. A legacy session subscribes with `resources/subscribe` (over HTTP
//! its updates come on the session's GET stream); a 2026-07-28 client opens a
//! `subscriptions/listen` stream naming the resources.

use std::time::Duration;

use switchboard_client::{
    ClientError, ConnectOptions, Connection, EraPreference,
    model::{Era, ServerEvent},
};
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

fn options(era: EraPreference) -> ConnectOptions {
    ConnectOptions {
        era,
        ..ConnectOptions::default()
    }
}

const ERAS: [(EraPreference, Era); 2] = [
    (EraPreference::Legacy, Era::Legacy),
    (EraPreference::Modern, Era::Modern),
];

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
async fn only_subscribed_updates_arrive(server: &Server, connection: &Connection, era: Era) {
    assert_eq!(connection.description().era, era);
    assert!(connection.description().capabilities.resource_subscribe);
    let mut events = connection.take_events().unwrap();
    connection.subscribe_resource("kit://a", T).await.unwrap();
    connection.subscribe_resource("kit://a", T).await.unwrap();
    // Updates keep their order, so an update of b that leaked would come first.
    server.notify_resource_updated("kit://b");
    server.notify_resource_updated("kit://a");
    assert_eq!(next_update(&mut events).await, "kit://a", "{era:?}");

    connection.unsubscribe_resource("kit://a", T).await.unwrap();
    connection.subscribe_resource("kit://b", T).await.unwrap();
    server.notify_resource_updated("kit://a");
    server.notify_resource_updated("kit://b");
    assert_eq!(next_update(&mut events).await, "kit://b", "{era:?}");

    // Both, then neither.
    connection.subscribe_resource("kit://a", T).await.unwrap();
    server.notify_resource_updated("kit://a");
    server.notify_resource_updated("kit://b");
    let mut heard = [
        next_update(&mut events).await,
        next_update(&mut events).await,
    ];
    heard.sort();
    assert_eq!(heard, ["kit://a", "kit://b"], "{era:?}");
    for uri in ["kit://a", "kit://b", "kit://b"] {
        connection.unsubscribe_resource(uri, T).await.unwrap();
    }
    server.notify_resource_updated("kit://a");
    server.notify_resource_updated("kit://b");
    let quiet = tokio::time::timeout(Duration::from_millis(200), next_update(&mut events)).await;
    assert!(quiet.is_err(), "{era:?}: {quiet:?}");
}

#[tokio::test]
async fn stdio_clients_of_both_eras_hear_updates_of_what_they_subscribed_to() {
    for (preference, era) in ERAS {
        let server = server();
        let (client, server_side) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_side);
        tokio::spawn(switchboard_server::serve(
            server.clone(),
            server_read,
            server_write,
        ));
        let (client_read, client_write) = tokio::io::split(client);
        let connection = Connection::connect_io(
            name("watched"),
            client_read,
            client_write,
            &options(preference),
        )
        .await
        .unwrap();
        only_subscribed_updates_arrive(&server, &connection, era).await;
    }
}

#[tokio::test]
async fn http_clients_of_both_eras_hear_updates_of_what_they_subscribed_to() {
    for (preference, era) in ERAS {
        let server = server();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = tokio::spawn(switchboard_server::serve_listener(
            server.clone(),
            listener,
            switchboard_server::HttpConfig::default(),
        ));
        let entry = crate::http_entry("watched", &format!("http://127.0.0.1:{port}/mcp"));
        let connection = Connection::connect(&entry, &options(preference))
            .await
            .unwrap();
        only_subscribed_updates_arrive(&server, &connection, era).await;
        serving.abort();
    }
}

#[tokio::test]
async fn subscribing_needs_the_capability_in_both_eras() {
    // A server that does not take subscriptions.
    let plain = Server::builder("plain", "1")
        .resource(resource("kit://a"))
        .build()
        .unwrap();
    for (preference, era) in ERAS {
        let (client, server_side) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_side);
        tokio::spawn(switchboard_server::serve(
            plain.clone(),
            server_read,
            server_write,
        ));
        let (client_read, client_write) = tokio::io::split(client);
        let connection = Connection::connect_io(
            name("plain"),
            client_read,
            client_write,
            &options(preference),
        )
        .await
        .unwrap();
        assert_eq!(connection.description().era, era);
        for error in [
            connection
                .subscribe_resource("kit://a", T)
                .await
                .unwrap_err(),
            connection
                .unsubscribe_resource("kit://a", T)
                .await
                .unwrap_err(),
        ] {
            assert!(
                matches!(&error, ClientError::Protocol { detail, .. } if detail.contains("resources.subscribe")),
                "{era:?}: {error}"
            );
        }
    }
}

/// The serving tasks of the sessions a connector opened.
type Sessions = std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<std::io::Result<()>>>>>;

/// A server behind the resilience policies whose every connection is a new in-memory stdio
/// session with `server`; the sessions' serving tasks, to end one.
fn resilient(
    server: &Server,
    era: EraPreference,
) -> (switchboard_client::resilience::Resilient, Sessions) {
    let sessions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let connector: switchboard_client::resilience::Connector = {
        let server = server.clone();
        let sessions = sessions.clone();
        std::sync::Arc::new(move || {
            let (client, server_side) = tokio::io::duplex(1 << 16);
            let (server_read, server_write) = tokio::io::split(server_side);
            sessions
                .lock()
                .unwrap()
                .push(tokio::spawn(switchboard_server::serve(
                    server.clone(),
                    server_read,
                    server_write,
                )));
            Box::pin(async move {
                let (client_read, client_write) = tokio::io::split(client);
                Connection::connect_io(name("watched"), client_read, client_write, &options(era))
                    .await
            })
        })
    };
    let mut settings = switchboard_config::Resilience::default();
    settings.reconnect.initial_backoff = Duration::from_millis(10);
    settings.health_check.interval = Duration::ZERO;
    let resilient = switchboard_client::resilience::Resilient::new(
        name("watched"),
        settings,
        T,
        None,
        Some(connector),
    );
    (resilient, sessions)
}

#[tokio::test]
async fn a_reconnected_server_is_subscribed_again_in_both_eras() {
    for (preference, era) in ERAS {
        let server = server();
        let (resilient, sessions) = resilient(&server, preference);
        let mut events = resilient.take_events().unwrap();
        resilient.subscribe_resource("kit://a").await.unwrap();
        resilient.subscribe_resource("kit://b").await.unwrap();
        resilient.unsubscribe_resource("kit://b").await.unwrap();
        assert_eq!(resilient.current().unwrap().description().era, era);
        server.notify_resource_updated("kit://a");
        assert_eq!(next_update(&mut events).await, "kit://a", "{era:?}");

        // The session ends (the server process died, say); a health check reconnects.
        let first = sessions.lock().unwrap()[0].abort_handle();
        first.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        resilient.check_health().await;
        assert_eq!(sessions.lock().unwrap().len(), 2, "{era:?}: reconnected");
        // What changed meanwhile is not known: a is reported updated, b is not.
        assert_eq!(next_update(&mut events).await, "kit://a", "{era:?}");
        // And the new session is subscribed to a, not b.
        server.notify_resource_updated("kit://b");
        server.notify_resource_updated("kit://a");
        assert_eq!(next_update(&mut events).await, "kit://a", "{era:?}");
        let quiet =
            tokio::time::timeout(Duration::from_millis(200), next_update(&mut events)).await;
        assert!(quiet.is_err(), "{era:?}: {quiet:?}");
    }
}

/// Events until both `wanted` have arrived (others are skipped), within `T`.
async fn until_both(events: &mut mpsc::Receiver<ServerEvent>, wanted: [&str; 2]) {
    let mut seen = [false; 2];
    let deadline = tokio::time::Instant::now() + T;
    while seen != [true; 2] {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("not all of {wanted:?} within {T:?}: seen {seen:?}"))
            .expect("the events ended");
        let label = match &event {
            ServerEvent::ToolsChanged => "tools".to_owned(),
            ServerEvent::ResourceUpdated { uri } => uri.clone(),
            _ => continue,
        };
        for (i, want) in wanted.iter().enumerate() {
            seen[i] |= label == *want;
        }
    }
}

#[tokio::test]
async fn modern_listen_streams_are_opened_again_when_the_server_comes_back() {
    let mut upstream = test_support::restart::Restartable::start();
    let entry = crate::http_entry("restarting", &upstream.url());
    let connection = Connection::connect(&entry, &options(EraPreference::Modern))
        .await
        .unwrap();
    assert_eq!(connection.description().era, Era::Modern);
    let mut events = connection.take_events().unwrap();
    connection.subscribe_resource("kit://a", T).await.unwrap();
    // Both streams are open: the list-changes one (opened in the background; announce until
    // it carries one) and the updates one (acknowledged before subscribe_resource returned).
    let mut heard = false;
    for _ in 0..50 {
        upstream
            .server()
            .notify_list_changed(switchboard_server::ListKind::Tools);
        upstream.server().notify_resource_updated("kit://a");
        if tokio::time::timeout(
            Duration::from_millis(100),
            until_both(&mut events, ["tools", "kit://a"]),
        )
        .await
        .is_ok()
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "the first server's announcements never arrived");

    // The server goes away with both streams, and comes back on the same address.
    upstream.crash();
    while events.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(100)).await;
    upstream.restart().await;

    // Both streams are opened again, and each reports what it may have missed meanwhile.
    until_both(&mut events, ["tools", "kit://a"]).await;
    // And they carry the new server's announcements.
    upstream
        .server()
        .notify_list_changed(switchboard_server::ListKind::Tools);
    upstream.server().notify_resource_updated("kit://a");
    until_both(&mut events, ["tools", "kit://a"]).await;
}
