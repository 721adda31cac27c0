//! Our own client (rmcp underneath) against the server kit, in both eras.

use serde_json::json;
use switchboard_client::{
    CallOptions, ConnectOptions, Connection, EraPreference,
    model::{Content, Era},
};
use switchboard_config::ServerName;

use crate::test_server;

async fn connect(era: EraPreference) -> Connection {
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(
        test_server(),
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client);
    let options = ConnectOptions {
        era,
        ..ConnectOptions::default()
    };
    Connection::connect_io(
        ServerName::new("kit").unwrap(),
        client_read,
        client_write,
        &options,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn both_eras_work_with_an_rmcp_client() {
    for (era, expected, version) in [
        (EraPreference::Auto, Era::Modern, "2026-07-28"),
        (EraPreference::Legacy, Era::Legacy, "2025-11-25"),
    ] {
        let connection = connect(era).await;
        assert_eq!(connection.description().era, expected);
        assert_eq!(connection.description().protocol_version, version);
        let tools = connection
            .list_tools(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(tools.len(), 4);
        let result = connection
            .call_tool(
                "echo",
                json!({"text": "both"}).as_object().cloned(),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            result.content,
            vec![Content::Text {
                text: "both".into()
            }]
        );
        let read = connection
            .read_resource("kit://item/5", std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(read.contents[0].text.as_deref(), Some("{\"id\":\"5\"}"));
    }
}

#[tokio::test]
async fn progress_reaches_an_rmcp_client() {
    let connection = connect(EraPreference::Legacy).await;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
    let options = CallOptions {
        progress: Some(sender),
        ..CallOptions::default()
    };
    let result = connection
        .call_tool("slow", json!({"ms": 40}).as_object().cloned(), options)
        .await
        .unwrap();
    assert_eq!(
        result.content,
        vec![Content::Text {
            text: "slept".into()
        }]
    );
    let mut count = 0;
    while receiver.try_recv().is_ok() {
        count += 1;
    }
    assert_eq!(count, 4);
}
