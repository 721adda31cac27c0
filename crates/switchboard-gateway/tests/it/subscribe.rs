//! Resource subscriptions through the gateway, for clients and upstreams of both eras: a
//! client subscribes under the gateway's URI, the gateway subscribes upstream once however
//! many clients ask, and the upstream's updates come back under the gateway's URI. Legacy
//! sessions use resources/subscribe; 2026-07-28 clients, subscriptions/listen.

use std::{sync::Arc, time::Duration};

use switchboard_client::{
    ConnectOptions, Connection, EraPreference, WireTap,
    model::{Direction, ServerEvent},
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

/// The upstream's `resources/subscribe`, or `subscriptions/listen` in 2026-07-28, and its
/// `resources/unsubscribe` (a 2026-07-28 upstream hears a new listen stream instead).
fn upstream_methods(era: EraPreference) -> (&'static str, Option<&'static str>) {
    match era {
        EraPreference::Modern => ("subscriptions/listen", None),
        _ => ("resources/subscribe", Some("resources/unsubscribe")),
    }
}

/// Wait until `sent` counts `expected` of `method` (a subscriber that leaves is released in
/// the background).
async fn settles_at(sent: &Sent, method: &str, expected: usize) {
    for _ in 0..200 {
        if sent.count(method) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sent.count(method), expected, "{method}");
}

/// A gateway in front of `upstream_server`, reached in `upstream_era`; what it sends upstream.
async fn gateway_before(
    upstream_server: &Server,
    upstream_era: EraPreference,
) -> (crate::Running, Arc<Sent>, crate::HttpUpstream) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = http_upstream(upstream_server.clone()).await;
    let config = GatewayConfig::parse(
        &format!("[upstreams.watched]\nurl = \"{}\"\n", upstream.url),
        None,
        &|_| None,
    )
    .unwrap();
    let sent = Arc::new(Sent::default());
    let connect = ConnectOptions {
        era: upstream_era,
        tap: Some(sent.clone()),
        ..ConnectOptions::default()
    };
    let gateway = crate::serve(Arc::new(
        Gateway::connect_with(config, connect).await.unwrap(),
    ))
    .await;
    (gateway, sent, upstream)
}

const ERAS: [EraPreference; 2] = [EraPreference::Legacy, EraPreference::Modern];

#[tokio::test]
async fn a_subscription_goes_upstream_and_updates_come_back_under_the_gateways_uri() {
    for upstream_era in ERAS {
        for client_era in ERAS {
            subscriptions_through_the_gateway(upstream_era, client_era).await;
        }
    }
}

async fn subscriptions_through_the_gateway(upstream_era: EraPreference, client_era: EraPreference) {
    let case = format!("{client_era:?} client, {upstream_era:?} upstream");
    let upstream_server = watched();
    let (gateway, sent, _upstream) = gateway_before(&upstream_server, upstream_era).await;
    let (subscribe, unsubscribe) = upstream_methods(upstream_era);

    let first: Connection = gateway.connect(client_era).await;
    let second: Connection = gateway.connect(client_era).await;
    assert!(
        first.description().capabilities.resource_subscribe,
        "{case}"
    );
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

    // Two clients on a, one on b: one upstream subscription each.
    settles_at(&sent, subscribe, 2).await;

    upstream_server.notify_resource_updated("kit://a");
    assert_eq!(next_update(&mut first_events).await, a, "{case}");
    assert_eq!(next_update(&mut second_events).await, a, "{case}");

    // The first client leaves a; the second, still subscribed, hears it. Updates keep their
    // order, so the first client's next update being b shows it no longer hears a.
    first.unsubscribe_resource(&a, TIMEOUT).await.unwrap();
    upstream_server.notify_resource_updated("kit://a");
    assert_eq!(next_update(&mut second_events).await, a, "{case}");
    first.subscribe_resource(&b, TIMEOUT).await.unwrap();
    upstream_server.notify_resource_updated("kit://b");
    assert_eq!(next_update(&mut first_events).await, b, "{case}");
    assert_eq!(next_update(&mut second_events).await, b, "{case}");

    // After the last client leaves a (and the gateway unsubscribes upstream), no one hears
    // a: the next update either client hears is of b.
    second.unsubscribe_resource(&a, TIMEOUT).await.unwrap();
    match unsubscribe {
        Some(unsubscribe) => settles_at(&sent, unsubscribe, 1).await,
        None => settles_at(&sent, subscribe, 3).await,
    }
    upstream_server.notify_resource_updated("kit://a");
    upstream_server.notify_resource_updated("kit://b");
    assert_eq!(next_update(&mut second_events).await, b, "{case}");
    assert_eq!(next_update(&mut first_events).await, b, "{case}");
    if let Some(unsubscribe) = unsubscribe {
        assert_eq!(
            sent.count(unsubscribe),
            1,
            "{case}: only after the last client"
        );
        assert_eq!(sent.count(subscribe), 2, "{case}");
    }

    // Clients that go away without unsubscribing are released: once both have, the gateway
    // lets go of b upstream.
    first.close().await;
    second.close().await;
    match unsubscribe {
        Some(unsubscribe) => settles_at(&sent, unsubscribe, 2).await,
        // A new listen stream without any resource is none at all.
        None => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(sent.count(subscribe), 3, "{case}");
        }
    }
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
