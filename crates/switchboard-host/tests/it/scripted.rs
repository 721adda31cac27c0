//! A hand-written legacy-era MCP server for orderings the fixture cannot produce on demand.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf},
    sync::Notify,
};

/// How long the server waits for the test's go-ahead before answering anyway.
const GO_AHEAD_WAIT: Duration = Duration::from_secs(5);

fn tool(name: &str) -> Value {
    json!({"name": name, "inputSchema": {"type": "object"}})
}

/// Serve a server whose tool list changes while it answers the first `tools/list`: it sends
/// `notifications/tools/list_changed`, waits until `go_ahead` is notified, then answers with the
/// list from before the change (`add`). Every later `tools/list` answers `add` and `extra`.
/// Returns the client's ends.
pub fn serve_list_change_during_first_listing(
    go_ahead: Arc<Notify>,
) -> (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (reader, mut writer) = tokio::io::split(server);
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        let mut listings = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            let message: Value = serde_json::from_str(&line).unwrap();
            let (Some(id), Some(method)) = (message.get("id"), message.get("method")) else {
                continue; // a notification, such as notifications/initialized
            };
            let outcome = match method.as_str().unwrap_or_default() {
                "initialize" => json!({"result": {
                    "protocolVersion": message["params"]["protocolVersion"],
                    "capabilities": {"tools": {"listChanged": true}},
                    "serverInfo": {"name": "scripted", "version": "1.0.0"}
                }}),
                "tools/list" => {
                    listings += 1;
                    if listings == 1 {
                        let changed =
                            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
                        writer
                            .write_all(format!("{changed}\n").as_bytes())
                            .await
                            .unwrap();
                        writer.flush().await.unwrap();
                        let _ = tokio::time::timeout(GO_AHEAD_WAIT, go_ahead.notified()).await;
                        json!({"result": {"tools": [tool("add")]}})
                    } else {
                        json!({"result": {"tools": [tool("add"), tool("extra")]}})
                    }
                }
                _ => json!({"error": {"code": -32601, "message": "method not found"}}),
            };
            let mut reply = json!({"jsonrpc": "2.0", "id": id});
            reply
                .as_object_mut()
                .unwrap()
                .extend(outcome.as_object().unwrap().clone());
            if writer
                .write_all(format!("{reply}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let _ = writer.flush().await;
        }
    });
    tokio::io::split(client)
}
