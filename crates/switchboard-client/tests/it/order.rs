//! Progress and logs sent just before a call's answer reach the caller before the answer does.
//!
//! The server here is a script over an in-memory duplex: it answers `initialize`, then answers
//! each `tools/call` with a burst of notifications and the result in one write, which is the
//! order a gateway must pass them on in. A multi-thread runtime gives a late delivery every
//! chance to show.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchboard_client::{
    CallOptions, ConnectOptions, Connection, EraPreference,
    callbacks::{CallRelay, CallbackError, CallbackFuture},
    model::LogMessage,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::name;

/// Notifications in each burst.
const BURST: usize = 40;
/// Calls per test: each one is a fresh chance for a notification to arrive late.
const CALLS: usize = 25;

/// A legacy server that answers every `tools/call` with `BURST` progress updates (for the
/// call's token) and `BURST` logs, then the result, all in one write.
async fn connect() -> Connection {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (server_read, mut server_write) = tokio::io::split(server);
    tokio::spawn(async move {
        let mut lines = BufReader::new(server_read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: Value = serde_json::from_str(&line).unwrap();
            let Some(id) = request.get("id").cloned() else {
                continue;
            };
            let mut out = String::new();
            let mut push = |message: Value| {
                out.push_str(&message.to_string());
                out.push('\n');
            };
            match request["method"].as_str() {
                Some("initialize") => push(json!({"jsonrpc": "2.0", "id": id, "result": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}, "logging": {}},
                    "serverInfo": {"name": "bursty", "version": "1"},
                }})),
                Some("tools/call") => {
                    let token = request["params"]["_meta"]["progressToken"].clone();
                    for n in 1..=BURST {
                        push(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                            "params": {"progressToken": token, "progress": n, "total": BURST}}));
                        push(json!({"jsonrpc": "2.0", "method": "notifications/message",
                            "params": {"level": "info", "data": n}}));
                    }
                    push(json!({"jsonrpc": "2.0", "id": id, "result": {
                        "content": [{"type": "text", "text": "done"}],
                    }}));
                }
                _ => push(json!({"jsonrpc": "2.0", "id": id, "result": {}})),
            }
            if server_write.write_all(out.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let (client_read, client_write) = tokio::io::split(client);
    let options = ConnectOptions {
        era: EraPreference::Legacy,
        ..ConnectOptions::default()
    };
    Connection::connect_io(name("bursty"), client_read, client_write, &options)
        .await
        .unwrap()
}

/// Records the logs of the call it relays; it is never asked anything.
#[derive(Debug, Default)]
struct Logs(Mutex<Vec<Value>>);

impl CallRelay for Logs {
    fn answer<'a>(
        &'a self,
        _key: Option<&'a str>,
        method: &'a str,
        _params: Value,
    ) -> CallbackFuture<'a, Value> {
        Box::pin(async move { Err(CallbackError::unsupported(method)) })
    }

    fn log(&self, message: LogMessage) {
        self.0.lock().unwrap().push(message.data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_sent_before_the_answer_is_there_when_the_call_returns() {
    let connection = connect().await;
    for call in 0..CALLS {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(BURST);
        let options = CallOptions {
            progress: Some(sender),
            ..CallOptions::default()
        };
        let result = connection.call_tool("any", None, options).await.unwrap();
        assert!(!result.is_error);
        let mut seen = Vec::new();
        while let Ok(update) = receiver.try_recv() {
            seen.push(update.progress);
        }
        let expected: Vec<f64> = (1..=BURST).map(|n| n as f64).collect();
        assert_eq!(seen, expected, "call {call}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_sent_before_the_answer_reach_the_calls_relay_first() {
    let connection = connect().await;
    for call in 0..CALLS {
        let relay = Arc::new(Logs::default());
        let options = CallOptions {
            relay: Some(relay.clone()),
            ..CallOptions::default()
        };
        connection.call_tool("any", None, options).await.unwrap();
        let expected: Vec<Value> = (1..=BURST).map(|n| json!(n)).collect();
        assert_eq!(*relay.0.lock().unwrap(), expected, "call {call}");
    }
}
