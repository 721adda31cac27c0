//! Resource subscriptions in both eras, on the wire: a legacy session's `resources/subscribe`,
//! and a 2026-07-28 `subscriptions/listen` that names `resourceSubscriptions`; on a static
//! server, and through a catalogue's hooks, which hear each subscriber once and hear it leave.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use switchboard_server::{
    Catalogue, CatalogueResult, HandlerError, ListRequest, MAX_RESOURCE_SUBSCRIPTIONS,
    RequestContext, Resource, Server,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf};

use crate::MODERN_META;

/// A client's end of a stdio connection to a served server.
struct Wire {
    write: tokio::io::WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Wire {
    fn start(server: Server) -> Wire {
        let (client, server_side) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_side);
        let served = tokio::spawn(switchboard_server::serve(server, server_read, server_write));
        let (read, write) = tokio::io::split(client);
        Wire {
            write,
            lines: BufReader::new(read).lines(),
            served,
        }
    }

    async fn send(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
            .await
            .expect("the server said nothing for 5 s")
            .unwrap()
            .expect("the server closed its output");
        serde_json::from_str(&line).unwrap()
    }

    /// Send `line` and return the next message, which must answer request `id`.
    async fn ask(&mut self, id: &str, line: &str) -> Value {
        self.send(line).await;
        let answer = self.next().await;
        assert_eq!(answer["id"], json!(id), "{answer}");
        answer
    }

    /// Nothing arrives for a while.
    async fn quiet(&mut self) {
        let heard = tokio::time::timeout(Duration::from_millis(150), self.lines.next_line()).await;
        assert!(heard.is_err(), "unexpected: {heard:?}");
    }

    /// Close the server's input, which ends the session, and wait for it to finish.
    async fn end(mut self) {
        self.write.shutdown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.served)
            .await
            .expect("the server did not finish")
            .unwrap()
            .unwrap();
    }
}

fn listen(id: &str, notifications: Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"{id}","method":"subscriptions/listen","params":{{"notifications":{notifications},{MODERN_META}}}}}"#
    )
}

fn cancel(id: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":"{id}"}}}}"#
    )
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

fn legacy(id: &str, method: &str, uri: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":"{id}","method":"{method}","params":{{"uri":"{uri}"}}}}"#)
}

fn static_server() -> Server {
    let text = |uri: &'static str| {
        Resource::new(uri, uri, "text/plain", |_| async move { Ok(Vec::new()) })
    };
    Server::builder("watched", "1")
        .resource(text("kit://a"))
        .resource(text("kit://b"))
        .resource_subscriptions()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_listen_stream_hears_updates_of_the_resources_it_names() {
    let server = static_server();
    let mut wire = Wire::start(server.clone());
    // Named twice, and with a list this static server never changes: the acknowledgement
    // names what the server will send, once.
    wire.send(&listen(
        "L",
        json!({"resourceSubscriptions": ["kit://a", "kit://a"], "toolsListChanged": true}),
    ))
    .await;
    let ack = wire.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": ["kit://a"]})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L"
    );

    server.notify_resource_updated("kit://b");
    server.notify_resource_updated("kit://a");
    let update = wire.next().await;
    assert_eq!(
        update,
        json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
               "params": {"uri": "kit://a", "_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}})
    );
    wire.quiet().await;

    // Cancelled: no answer, and no more updates.
    wire.send(&cancel("L")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.notify_resource_updated("kit://a");
    wire.quiet().await;
    wire.end().await;
}

#[tokio::test]
async fn legacy_sessions_and_listen_streams_hear_only_their_own_subscriptions() {
    let server = static_server();
    let mut legacy_wire = Wire::start(server.clone());
    legacy_wire.ask("init", INITIALIZE).await;
    let answer = legacy_wire
        .ask("s", &legacy("s", "resources/subscribe", "kit://b"))
        .await;
    assert_eq!(answer["result"], json!({}));
    let mut modern_wire = Wire::start(server.clone());
    modern_wire
        .send(&listen("L", json!({"resourceSubscriptions": ["kit://a"]})))
        .await;
    modern_wire.next().await;

    server.notify_resource_updated("kit://a");
    server.notify_resource_updated("kit://b");
    let legacy_update = legacy_wire.next().await;
    assert_eq!(legacy_update["params"], json!({"uri": "kit://b"}));
    let modern_update = modern_wire.next().await;
    assert_eq!(modern_update["params"]["uri"], "kit://a");
    legacy_wire.quiet().await;
    modern_wire.quiet().await;
    legacy_wire.end().await;
    modern_wire.end().await;
}

#[tokio::test]
async fn bad_listen_filters_get_invalid_params() {
    let mut wire = Wire::start(static_server());
    let too_many: Vec<String> = (0..=MAX_RESOURCE_SUBSCRIPTIONS)
        .map(|i| format!("kit://{i}"))
        .collect();
    for (filter, expected) in [
        (json!({"resourceSubscriptions": "kit://a"}), "invalid type"),
        (json!({"resourceSubscriptions": [1, 2]}), "invalid type"),
        (
            json!({"resourceSubscriptions": too_many}),
            "at most 1024 per subscriptions/listen",
        ),
    ] {
        let answer = wire.ask("bad", &listen("bad", filter)).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("resourceSubscriptions") && message.contains(expected),
            "{message}"
        );
    }
    // The server is still serving.
    wire.send(&listen("ok", json!({"resourceSubscriptions": ["kit://a"]})))
        .await;
    assert_eq!(
        wire.next().await["method"],
        "notifications/subscriptions/acknowledged"
    );
    wire.end().await;
}

/// A catalogue that records its subscription hooks: `+uri` and `-uri`. It refuses `deny://`.
#[derive(Debug, Default)]
struct Ledger {
    hooks: Mutex<Vec<String>>,
}

impl Ledger {
    fn hooks(&self) -> Vec<String> {
        self.hooks.lock().unwrap().clone()
    }

    /// Wait until the hooks are `expected` (released subscriptions are released in the
    /// background).
    async fn settles_at(&self, expected: &[&str]) {
        for _ in 0..100 {
            if self.hooks() == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.hooks(), expected);
    }
}

impl Catalogue for Ledger {
    fn list(
        &self,
        list: ListRequest,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<Value>, HandlerError>> {
        let items = match list {
            ListRequest::Resources => vec![json!({"uri": "kit://a", "name": "a"})],
            _ => Vec::new(),
        };
        Box::pin(async move { Ok(items) })
    }

    fn call_tool(&self, name: String, _: Map<String, Value>, _: RequestContext) -> CatalogueResult {
        Box::pin(async move {
            Err(HandlerError::NotFound {
                message: format!("unknown tool: {name}"),
                data: json!({"name": name}),
            })
        })
    }

    fn read_resource(&self, uri: String, _cx: RequestContext) -> CatalogueResult {
        Box::pin(async move {
            let result = json!({"contents": [{"uri": uri, "text": "ledger"}]});
            Ok(result.as_object().cloned().unwrap_or_default())
        })
    }

    fn get_prompt(
        &self,
        name: String,
        _: Map<String, Value>,
        _: RequestContext,
    ) -> CatalogueResult {
        Box::pin(async move {
            Err(HandlerError::NotFound {
                message: format!("unknown prompt: {name}"),
                data: json!({"name": name}),
            })
        })
    }

    fn subscribe(
        &self,
        uri: String,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let refused = uri.starts_with("deny://");
        if !refused {
            self.hooks.lock().unwrap().push(format!("+{uri}"));
        }
        Box::pin(async move {
            if refused {
                return Err(HandlerError::NotFound {
                    message: format!("no such resource: {uri}"),
                    data: json!({"uri": uri}),
                });
            }
            // Accepting takes a moment, as it does when an upstream is asked.
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
    }

    fn unsubscribe(
        &self,
        uri: String,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        self.hooks.lock().unwrap().push(format!("-{uri}"));
        Box::pin(async { Ok(()) })
    }
}

fn ledger_server(ledger: Arc<Ledger>) -> Server {
    Server::builder("ledger", "1")
        .catalogue(ledger)
        .resource_subscriptions()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_catalogue_hears_each_legacy_subscriber_once_and_when_it_leaves() {
    let ledger = Arc::new(Ledger::default());
    let server = ledger_server(ledger.clone());
    let mut wire = Wire::start(server.clone());
    wire.ask("init", INITIALIZE).await;
    for id in ["s1", "s2"] {
        let answer = wire
            .ask(id, &legacy(id, "resources/subscribe", "kit://a"))
            .await;
        assert_eq!(answer["result"], json!({}), "{answer}");
    }
    // Never subscribed: nothing to release.
    let answer = wire
        .ask("u", &legacy("u", "resources/unsubscribe", "kit://b"))
        .await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    // Refused: the catalogue's error is the answer, and no update comes for it.
    let answer = wire
        .ask("d", &legacy("d", "resources/subscribe", "deny://x"))
        .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such resource: deny://x"),
        "{answer}"
    );
    assert_eq!(ledger.hooks(), ["+kit://a"]);

    server.notify_resource_updated("deny://x");
    server.notify_resource_updated("kit://a");
    assert_eq!(wire.next().await["params"], json!({"uri": "kit://a"}));

    // The session ends without unsubscribing: the catalogue hears it.
    wire.end().await;
    ledger.settles_at(&["+kit://a", "-kit://a"]).await;
}

#[tokio::test]
async fn a_catalogue_hears_a_legacy_unsubscribe_once() {
    let ledger = Arc::new(Ledger::default());
    let mut wire = Wire::start(ledger_server(ledger.clone()));
    wire.ask("init", INITIALIZE).await;
    wire.ask("s", &legacy("s", "resources/subscribe", "kit://a"))
        .await;
    for id in ["u1", "u2"] {
        let answer = wire
            .ask(id, &legacy(id, "resources/unsubscribe", "kit://a"))
            .await;
        assert_eq!(answer["result"], json!({}), "{answer}");
    }
    wire.end().await;
    ledger.settles_at(&["+kit://a", "-kit://a"]).await;
}

#[tokio::test]
async fn a_catalogue_accepts_each_resource_of_a_listen_and_hears_the_stream_end() {
    let ledger = Arc::new(Ledger::default());
    let server = ledger_server(ledger.clone());
    let mut wire = Wire::start(server.clone());
    wire.send(&listen(
        "L",
        json!({"resourceSubscriptions": ["kit://a", "deny://x", "kit://b"], "toolsListChanged": true}),
    ))
    .await;
    let ack = wire.next().await;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["kit://a", "kit://b"]}),
        "the refused resource is left out: {ack}"
    );
    server.notify_resource_updated("deny://x");
    server.notify_resource_updated("kit://b");
    let update = wire.next().await;
    assert_eq!(update["params"]["uri"], "kit://b");
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L"
    );

    wire.send(&cancel("L")).await;
    ledger
        .settles_at(&["+kit://a", "+kit://b", "-kit://a", "-kit://b"])
        .await;
    wire.quiet().await;
    wire.end().await;
}

#[tokio::test]
async fn a_listen_stream_closed_by_its_client_releases_its_subscriptions() {
    let ledger = Arc::new(Ledger::default());
    let mut wire = Wire::start(ledger_server(ledger.clone()));
    wire.send(&listen("L", json!({"resourceSubscriptions": ["kit://a"]})))
        .await;
    wire.next().await;
    // The client goes away without cancelling.
    wire.end().await;
    ledger.settles_at(&["+kit://a", "-kit://a"]).await;
}
