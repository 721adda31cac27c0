//! Resource subscriptions through the gateway: a legacy client subscribes under the gateway's
//! URI, the gateway subscribes upstream once, and the upstream's updates come back under the
//! gateway's URI.

use std::{sync::Arc, time::Duration};

use switchboard_client::{
    ConnectOptions, Connection, EraPreference, WireTap,
    model::{Direction, Era, ServerEvent},
};
use switchboard_gateway::{Gateway, GatewayConfig};
use switchboard_server::{Resource, ResourceContents, Server};
use tokio::sync::mpsc;

use crate::{TIMEOUT, http_upstream};

fn resource(uri: &'static str) -> Resource {
    Resource::new(uri, uri, "text/plain", move |_| async move {
        Ok(vec![ResourceContents::text(uri, "text/plain", "now")])
    })
}

fn watched() -> Server {
    Server::builder("watched", "1")
        .resource(resource("kit://a"))
        .resource(resource("kit://b"))
        .resource_subscriptions()
        .build()
        .unwrap()
}

/// The requests the gateway sends its upstream, by method.
#[derive(Debug, Default)]
struct Sent(std::sync::Mutex<Vec<String>>);

impl Sent {
    fn count(&self, method: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| *m == method)
            .count()
    }
}

impl WireTap for Sent {
    fn message(&self, _server: &str, direction: Direction, json: &str) {
        if direction == Direction::Outgoing
            && let Ok(message) = serde_json::from_str::<serde_json::Value>(json)
            && let Some(method) = message["method"].as_str()
        {
            self.0.lock().unwrap().push(method.to_owned());
        }
    }
    fn garbage(&self, _server: &str, _line: &str) {}
    fn stderr(&self, _server: &str, _line: &str) {}
}

async fn next_update(events: &mut mpsc::Receiver<ServerEvent>) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(ServerEvent::ResourceUpdated { uri })) => return uri,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the events ended"),
            Err(_) => panic!("no resource update within 5 s"),
        }
    }
}

#[tokio::test]
async fn a_subscription_goes_upstream_and_updates_come_back_under_the_gateways_uri() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream_server = watched();
    let upstream = http_upstream(upstream_server.clone()).await;
    let config = GatewayConfig::parse(
        &format!("[upstreams.watched]\nurl = \"{}\"\n", upstream.url),
        None,
        &|_| None,
    )
    .unwrap();
    // Resource subscriptions are a legacy feature of our client: speak legacy upstream.
    let sent = Arc::new(Sent::default());
    let connect = ConnectOptions {
        era: EraPreference::Legacy,
        tap: Some(sent.clone()),
        ..ConnectOptions::default()
    };
    let gateway = crate::serve(Arc::new(
        Gateway::connect_with(config, connect).await.unwrap(),
    ))
    .await;

    let first: Connection = gateway.connect(EraPreference::Legacy).await;
    let second: Connection = gateway.connect(EraPreference::Legacy).await;
    assert_eq!(first.description().era, Era::Legacy);
    assert!(first.description().capabilities.resource_subscribe);
    let resources = first.list_resources(TIMEOUT).await.unwrap();
    let public = |original: &str| {
        resources
            .iter()
            .find(|r| r.uri.ends_with(original))
            .unwrap_or_else(|| panic!("{original} is listed: {resources:?}"))
            .uri
            .clone()
    };
    let (a, b) = (public("kit://a"), public("kit://b"));
    assert_ne!(a, "kit://a", "the gateway names resources its own way");

    let mut first_events = first.take_events().unwrap();
    let mut second_events = second.take_events().unwrap();
    first.subscribe_resource(&a, TIMEOUT).await.unwrap();
    second.subscribe_resource(&a, TIMEOUT).await.unwrap();
    second.subscribe_resource(&b, TIMEOUT).await.unwrap();

    // Two sessions on a, one on b: one upstream subscription each.
    assert_eq!(sent.count("resources/subscribe"), 2);

    upstream_server.notify_resource_updated("kit://a");
    assert_eq!(next_update(&mut first_events).await, a);
    assert_eq!(next_update(&mut second_events).await, a);

    // The first client leaves a; the second, still subscribed, hears it. Updates keep their
    // order, so the first client's next update being b shows it no longer hears a.
    first.unsubscribe_resource(&a, TIMEOUT).await.unwrap();
    upstream_server.notify_resource_updated("kit://a");
    assert_eq!(next_update(&mut second_events).await, a);
    first.subscribe_resource(&b, TIMEOUT).await.unwrap();
    upstream_server.notify_resource_updated("kit://b");
    assert_eq!(next_update(&mut first_events).await, b);
    assert_eq!(next_update(&mut second_events).await, b);

    // After the last session leaves a (and the gateway unsubscribes upstream), no one hears
    // a: the next update either client hears is of b.
    second.unsubscribe_resource(&a, TIMEOUT).await.unwrap();
    upstream_server.notify_resource_updated("kit://a");
    upstream_server.notify_resource_updated("kit://b");
    assert_eq!(next_update(&mut second_events).await, b);
    assert_eq!(next_update(&mut first_events).await, b);
    assert_eq!(
        sent.count("resources/unsubscribe"),
        1,
        "only after the last session"
    );
    assert_eq!(sent.count("resources/subscribe"), 2);
}

#[tokio::test]
async fn subscribing_to_an_unknown_resource_is_an_error_and_the_gateway_keeps_serving() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = http_upstream(watched()).await;
    let gateway = crate::start(&format!(
        "[upstreams.watched]\nurl = \"{}\"\n",
        upstream.url
    ))
    .await;
    let client = gateway.connect(EraPreference::Legacy).await;
    let error = client
        .subscribe_resource("nowhere://x", TIMEOUT)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("unknown resource"), "{error}");
    assert_eq!(client.list_resources(TIMEOUT).await.unwrap().len(), 2);
}
