//! Broken peers: real child processes and raw TCP servers. Every wait is bounded.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, ErrorClass, model::Era,
};
use switchboard_config::{Secret, ServerEntry, Transport};
use test_support::bin_path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{name, tap};

fn fixture(args: &[&str]) -> ServerEntry {
    ServerEntry::new(
        name("fx"),
        Transport::Stdio {
            command: bin_path("sb-fixture-server").display().to_string(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: Default::default(),
            cwd: None,
        },
    )
}

fn quick() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(3),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn a_stdio_server_works_and_its_stderr_is_logged() {
    let logs = tempfile::tempdir().unwrap();
    let options = ConnectOptions {
        log_dir: Some(logs.path().to_owned()),
        ..quick()
    };
    let connection = Connection::connect(&fixture(&["--crash-after", "1"]), &options)
        .await
        .unwrap();
    assert_eq!(connection.description().era, Era::Modern);
    assert_eq!(connection.description().transport, "stdio");
    connection
        .call_tool(
            "echo",
            json!({"text": "one"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let error = connection
        .call_tool(
            "echo",
            json!({"text": "two"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    // The crash is explained: exit status and the server's last words.
    let message = error.to_string();
    assert!(
        matches!(
            error,
            ClientError::ConnectionLost {
                method: "tools/call",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("exit status: 101"), "{message}");
    assert!(
        message.contains("fixture: crashing on call 2 as asked"),
        "{message}"
    );
    assert_eq!(error.class(), ErrorClass::Connection);
    let log = std::fs::read_to_string(logs.path().join("fx.log")).unwrap();
    assert!(log.contains("crashing on call 2"), "{log}");
}

#[tokio::test]
async fn a_missing_command_is_named() {
    let entry = ServerEntry::new(
        name("ghost"),
        Transport::Stdio {
            command: "switchboard-no-such-program".into(),
            args: vec![],
            env: Default::default(),
            cwd: None,
        },
    );
    let error = Connection::connect(&entry, &quick()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "server \"ghost\": command \"switchboard-no-such-program\" was not found on PATH; install it, or give its full path in the config"
    );
    assert_eq!(error.class(), ErrorClass::Config);
}

#[tokio::test]
async fn a_server_that_exits_during_the_handshake_is_explained() {
    let error = Connection::connect(&fixture(&["--mode", "exit-during-init"]), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    assert!(message.contains("exit status: 2"), "{message}");
    assert!(
        message.contains("missing API key, refusing to start"),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_on_stdout_is_reported_not_hung_on() {
    let recorder = tap();
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(1500),
        tap: Some(recorder.clone()),
        ..quick()
    };
    let started = Instant::now();
    let error = Connection::connect(&fixture(&["--mode", "garbage"]), &options)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    assert!(
        matches!(error, ClientError::ConnectTimeout { .. }),
        "{message}"
    );
    assert!(message.contains("not JSON-RPC"), "{message}");
    assert!(message.contains("\"this is not json-rpc\""), "{message}");
    assert_eq!(recorder.garbage.lock().unwrap()[0], "this is not json-rpc");
}

#[tokio::test]
async fn a_banner_before_the_protocol_is_skipped() {
    let connection = Connection::connect(&fixture(&["--mode", "banner"]), &quick())
        .await
        .unwrap();
    let result = connection
        .call_tool(
            "echo",
            json!({"text": "ok"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(!result.is_error);
}

#[tokio::test]
async fn a_legacy_only_server_is_reached_with_initialize() {
    let connection = Connection::connect(&fixture(&["--legacy-only"]), &quick())
        .await
        .unwrap();
    assert_eq!(connection.description().era, Era::Legacy);
    assert_eq!(connection.description().protocol_version, "2025-11-25");
    connection.ping(Duration::from_secs(3)).await.unwrap();
}

#[tokio::test]
async fn a_silent_server_times_out_at_the_connect_timeout() {
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(500),
        ..quick()
    };
    let started = Instant::now();
    let error = Connection::connect(&fixture(&["--mode", "silent"]), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::ConnectTimeout { .. }),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

fn http(url: &str) -> ServerEntry {
    ServerEntry::new(
        name("web"),
        Transport::StreamableHttp {
            url: url.parse().unwrap(),
            headers: [("Authorization".to_owned(), Secret::new("Bearer sekrit"))]
                .into_iter()
                .collect(),
        },
    )
}

/// Answers every HTTP request with `status`, and records the request heads it saw.
async fn http_answering(status: &'static str) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (seen, heads) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = vec![0u8; 64 * 1024];
            let n = socket.read(&mut buffer).await.unwrap_or(0);
            let _ = seen.try_send(String::from_utf8_lossy(&buffer[..n]).into_owned());
            let body = "upstream exploded";
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, heads)
}

#[tokio::test]
async fn an_http_server_answering_500_fails_the_handshake_with_the_status() {
    let (url, mut heads) = http_answering("500 Internal Server Error").await;
    let error = Connection::connect(&http(&url), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("500"), "{message}");
    assert!(
        !message.contains("sekrit"),
        "the token must not leak into errors: {message}"
    );
    let head = heads.recv().await.unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sekrit"),
        "custom headers are sent: {head}"
    );
}

#[tokio::test]
async fn an_http_server_that_never_answers_is_bounded_by_the_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            if held.len() > 8 {
                break;
            }
        }
    });
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(700),
        ..quick()
    };
    let started = Instant::now();
    let error = Connection::connect(&http(&url), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::ConnectTimeout { .. }),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    holder.abort();
}
