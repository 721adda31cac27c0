//! The legacy HTTP+SSE and the WebSocket transports, against loopback servers that serve the
//! fixture (or misbehave on purpose). Every server is a task that the test aborts, and every
//! wait is bounded by a connect or request timeout.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, EraPreference, ErrorClass, model::Era,
};
use switchboard_config::{Secret, ServerEntry, Transport};
use test_support::{
    fixture::{FixtureOptions, serve_in_memory},
    ws_bridge::{self, GARBAGE_TEXT, OVERSIZED_MESSAGE_BYTES, WsMode},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{Notify, mpsc},
    task::{JoinHandle, JoinSet},
};

use crate::{name, tap};

const T: Duration = Duration::from_secs(5);

fn quick() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

fn headers(pairs: &[(&str, &str)]) -> indexmap::IndexMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Secret::new(*v)))
        .collect()
}

fn add_args() -> Option<serde_json::Map<String, serde_json::Value>> {
    json!({"a": 2, "b": 40}).as_object().cloned()
}

// ---------------------------------------------------------------------------------------------
// A small HTTP+SSE server (2024-11-05) over raw TCP that serves the fixture.
// ---------------------------------------------------------------------------------------------

/// Connections one server accepts before it stops listening.
const SSE_MAX_CONNECTIONS: usize = 64;
/// Requests one keep-alive connection may carry.
const SSE_MAX_REQUESTS: usize = 1_000;
/// Largest request head plus body the server reads.
const SSE_MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Messages the SSE stream relays before the server hangs up.
const SSE_MAX_EVENTS: usize = 10_000;
/// How long a stream that never sends anything useful is held open.
const SSE_HOLD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SseMode {
    /// `endpoint`, then the fixture's messages.
    Fixture,
    /// Opens the stream but never sends `endpoint`.
    NoEndpoint,
    /// Sends an `endpoint` on another origin.
    ForeignEndpoint,
    /// Serves the fixture, but drops the stream when a `tools/call` is POSTed.
    DropOnCall,
    /// Sends one event larger than the client accepts (16 MiB).
    HugeEvent,
}

#[derive(Debug)]
struct SseState {
    mode: SseMode,
    /// Status line for a POST to `/sse` (what a Streamable HTTP client tries first).
    post_to_sse: &'static str,
    /// Request heads, in arrival order.
    heads: Mutex<Vec<String>>,
    /// Where POSTed messages go: the fixture's stdin for the open stream.
    session: Mutex<Option<mpsc::Sender<String>>>,
    hang_up: Notify,
}

struct SseServer {
    url: String,
    state: Arc<SseState>,
    task: JoinHandle<()>,
}

impl SseServer {
    fn heads(&self) -> Vec<String> {
        self.state.heads.lock().unwrap().clone()
    }
}

impl Drop for SseServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sse_server(mode: SseMode, post_to_sse: &'static str) -> SseServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sse", listener.local_addr().unwrap());
    let state = Arc::new(SseState {
        mode,
        post_to_sse,
        heads: Mutex::default(),
        session: Mutex::default(),
        hang_up: Notify::new(),
    });
    let shared = state.clone();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        for _ in 0..SSE_MAX_CONNECTIONS {
            let Ok((socket, _)) = listener.accept().await else {
                break;
            };
            connections.spawn(sse_connection(socket, shared.clone()));
        }
        while connections.join_next().await.is_some() {}
    });
    SseServer { url, state, task }
}

/// Reads one request; `None` at the end of the connection.
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > SSE_MAX_REQUEST_BYTES {
            return None;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(SSE_MAX_REQUEST_BYTES);
    while buffer.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[head_end..head_end + length].to_vec();
    buffer.drain(..head_end + length);
    Some((head, body))
}

async fn respond(socket: &mut TcpStream, status: &str, body: &str) -> bool {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.is_ok()
}

async fn sse_connection(mut socket: TcpStream, state: Arc<SseState>) {
    let mut buffer = Vec::new();
    for _ in 0..SSE_MAX_REQUESTS {
        let Some((head, body)) = read_request(&mut socket, &mut buffer).await else {
            return;
        };
        state.heads.lock().unwrap().push(head.clone());
        let mut request_line = head.lines().next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default();
        let path = request_line.next().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        let answered = match (method, path) {
            ("GET", "/sse") => return sse_stream(socket, state).await,
            ("POST", "/sse") => respond(&mut socket, state.post_to_sse, "Cannot POST /sse").await,
            ("POST", "/message") => {
                let text = String::from_utf8_lossy(&body).into_owned();
                if state.mode == SseMode::DropOnCall && text.contains("\"tools/call\"") {
                    state.hang_up.notify_one();
                }
                let session = state.session.lock().unwrap().clone();
                match session {
                    Some(session) if session.send(text).await.is_ok() => {
                        respond(&mut socket, "202 Accepted", "Accepted").await
                    }
                    _ => respond(&mut socket, "404 Not Found", "no such session").await,
                }
            }
            _ => respond(&mut socket, "404 Not Found", "not found").await,
        };
        if !answered {
            return;
        }
    }
}

/// The GET: an event stream without a length, so it lasts until the connection closes.
async fn sse_stream(mut socket: TcpStream, state: Arc<SseState>) {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    match state.mode {
        SseMode::NoEndpoint => {
            let _ = socket.write_all(b": waiting for nothing\n\n").await;
            tokio::time::sleep(SSE_HOLD).await;
            return;
        }
        SseMode::ForeignEndpoint => {
            let event = "event: endpoint\ndata: http://203.0.113.7:8080/message?sessionId=1\n\n";
            let _ = socket.write_all(event.as_bytes()).await;
            tokio::time::sleep(SSE_HOLD).await;
            return;
        }
        SseMode::HugeEvent => {
            let data = "x".repeat(16 * 1024 * 1024 + 1);
            let event = format!("event: message\ndata: {data}\n\n");
            let _ = socket.write_all(event.as_bytes()).await;
            tokio::time::sleep(SSE_HOLD).await;
            return;
        }
        SseMode::Fixture | SseMode::DropOnCall => {}
    }
    let (fixture_out, mut fixture_in) = serve_in_memory(FixtureOptions::default());
    let mut lines = BufReader::new(fixture_out).lines();
    let (session, mut posted) = mpsc::channel::<String>(64);
    *state.session.lock().unwrap() = Some(session);
    let endpoint = "event: endpoint\ndata: /message?sessionId=1\n\n";
    if socket.write_all(endpoint.as_bytes()).await.is_err() {
        return;
    }
    for _ in 0..SSE_MAX_EVENTS {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return };
                let event = format!("event: message\ndata: {line}\n\n");
                if socket.write_all(event.as_bytes()).await.is_err() {
                    return;
                }
            }
            message = posted.recv() => {
                let Some(message) = message else { return };
                if fixture_in.write_all(format!("{message}\n").as_bytes()).await.is_err() {
                    return;
                }
            }
            () = state.hang_up.notified() => return,
        }
    }
}

fn sse_entry(url: &str) -> ServerEntry {
    ServerEntry::new(
        name("legacy"),
        Transport::Sse {
            url: url.parse().unwrap(),
            headers: headers(&[("Authorization", "Bearer sse-token")]),
        },
    )
}

fn streamable_entry(url: &str) -> ServerEntry {
    ServerEntry::new(
        name("legacy"),
        Transport::StreamableHttp {
            url: url.parse().unwrap(),
            headers: headers(&[("Authorization", "Bearer sse-token")]),
        },
    )
}

#[tokio::test]
async fn sse_serves_the_fixture_and_sends_headers_on_get_and_post() {
    let server = sse_server(SseMode::Fixture, "404 Not Found").await;
    let recorder = tap();
    let options = ConnectOptions {
        tap: Some(recorder.clone()),
        ..quick()
    };
    let connection = Connection::connect(&sse_entry(&server.url), &options)
        .await
        .unwrap();
    assert_eq!(connection.description().transport, "sse");
    assert_eq!(connection.description().era, Era::Legacy);
    let tools = connection.list_tools(T).await.unwrap();
    assert!(tools.iter().any(|t| t.name == "add"), "{tools:?}");
    let result = connection
        .call_tool("add", add_args(), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(result.structured_content, Some(json!({"sum": 42})));

    let heads = server.heads();
    let get = heads.iter().find(|h| h.starts_with("GET /sse ")).unwrap();
    assert!(
        get.to_ascii_lowercase()
            .contains("accept: text/event-stream"),
        "{get}"
    );
    assert!(get.contains("Bearer sse-token"), "{get}");
    let post = heads
        .iter()
        .find(|h| h.starts_with("POST /message?sessionId=1 "))
        .unwrap();
    assert!(post.contains("Bearer sse-token"), "{post}");
    assert!(
        post.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{post}"
    );
    // The tap sees the exact messages both ways.
    connection.close().await;
    let lines = recorder.lines.lock().unwrap();
    assert!(lines.iter().any(|(_, _, json)| json.contains("\"sum\":42")));
    assert!(lines.iter().any(|(_, _, json)| json.contains("tools/call")));
}

#[tokio::test]
async fn streamable_http_falls_back_to_sse_on_400_404_and_405() {
    for status in ["400 Bad Request", "404 Not Found", "405 Method Not Allowed"] {
        let server = sse_server(SseMode::Fixture, status).await;
        let connection = Connection::connect(&streamable_entry(&server.url), &quick())
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(connection.description().transport, "sse", "{status}");
        assert_eq!(connection.description().era, Era::Legacy, "{status}");
        let result = connection
            .call_tool("add", add_args(), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(result.structured_content, Some(json!({"sum": 42})));
        // Streamable HTTP really was tried first.
        let heads = server.heads();
        assert!(heads[0].starts_with("POST /sse "), "{heads:?}");
        connection.close().await;
    }
}

#[tokio::test]
async fn streamable_http_does_not_fall_back_on_a_server_error() {
    let server = sse_server(SseMode::Fixture, "500 Internal Server Error").await;
    let error = Connection::connect(&streamable_entry(&server.url), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    assert!(message.contains("500"), "{message}");
    assert!(
        !server.heads().iter().any(|h| h.starts_with("GET /sse ")),
        "no SSE stream is opened for a 500"
    );
}

#[tokio::test]
async fn the_modern_era_does_not_fall_back_to_sse() {
    let server = sse_server(SseMode::Fixture, "404 Not Found").await;
    let options = ConnectOptions {
        era: EraPreference::Modern,
        ..quick()
    };
    let error = Connection::connect(&streamable_entry(&server.url), &options)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Handshake { .. }), "{error}");
    assert!(!server.heads().iter().any(|h| h.starts_with("GET /sse ")));
}

#[tokio::test]
async fn a_failed_fallback_names_both_attempts() {
    // Every request, the SSE GET included, is answered 404.
    let server = sse_server(SseMode::Fixture, "404 Not Found").await;
    let url = server.url.replace("/sse", "/nowhere");
    let error = Connection::connect(&streamable_entry(&url), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    assert!(
        message.contains("Streamable HTTP was refused with HTTP 404 and the legacy HTTP+SSE transport failed too: the SSE stream was refused with HTTP 404 Not Found"),
        "{message}"
    );
    assert!(!message.contains("sse-token"), "{message}");
}

#[tokio::test]
async fn an_sse_server_that_never_sends_the_endpoint_times_out() {
    let server = sse_server(SseMode::NoEndpoint, "404 Not Found").await;
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(700),
        ..quick()
    };
    let started = Instant::now();
    let error = Connection::connect(&sse_entry(&server.url), &options)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    let message = error.to_string();
    assert!(
        matches!(error, ClientError::ConnectTimeout { after, .. } if after == Duration::from_millis(700)),
        "{message}"
    );
    assert!(
        message.contains("the SSE stream opened but the server sent no endpoint event"),
        "{message}"
    );
    assert_eq!(error.class(), ErrorClass::Timeout);
}

#[tokio::test]
async fn an_endpoint_on_another_origin_is_refused() {
    let server = sse_server(SseMode::ForeignEndpoint, "404 Not Found").await;
    let started = Instant::now();
    let error = Connection::connect(&sse_entry(&server.url), &quick())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    let origin = server.url.trim_end_matches("/sse");
    assert!(
        message.contains(&format!("the endpoint event points to another origin (http://203.0.113.7:8080), which is refused: messages go only to the origin of the SSE URL ({origin})")),
        "{message}"
    );
    assert!(!message.contains("sse-token"), "{message}");
    // Nothing was POSTed anywhere.
    assert!(!server.heads().iter().any(|h| h.starts_with("POST ")));
}

#[tokio::test]
async fn an_sse_event_over_16_mib_ends_the_stream_with_a_reason() {
    let server = sse_server(SseMode::HugeEvent, "404 Not Found").await;
    let error = Connection::connect(&sse_entry(&server.url), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    assert!(
        message.contains("the SSE stream broke before the endpoint event")
            && message.contains("the server sent an SSE event larger than 16777216 bytes"),
        "{message}"
    );
}

#[tokio::test]
async fn an_sse_stream_dropped_mid_call_is_a_lost_connection() {
    let server = sse_server(SseMode::DropOnCall, "404 Not Found").await;
    let connection = Connection::connect(&sse_entry(&server.url), &quick())
        .await
        .unwrap();
    let error = connection
        .call_tool("add", add_args(), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::ConnectionLost {
                method: "tools/call",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Connection);
}

#[tokio::test]
async fn the_sse_transport_refuses_the_modern_era() {
    let server = sse_server(SseMode::Fixture, "404 Not Found").await;
    let options = ConnectOptions {
        era: EraPreference::Modern,
        ..quick()
    };
    let error = Connection::connect(&sse_entry(&server.url), &options)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot carry the 2026-07-28 revision"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// WebSocket, against test_support's bridge.
// ---------------------------------------------------------------------------------------------

fn ws_entry(url: &str) -> ServerEntry {
    ServerEntry::new(
        name("socket"),
        Transport::WebSocket {
            url: url.parse().unwrap(),
            headers: headers(&[("Authorization", "Bearer ws-token"), ("X-Team", "blue")]),
        },
    )
}

#[tokio::test]
async fn websocket_serves_the_fixture() {
    let (addr, server) = ws_bridge::serve_ws_fixture().await;
    let connection = Connection::connect(&ws_entry(&format!("ws://{addr}/mcp")), &quick())
        .await
        .unwrap();
    assert_eq!(connection.description().transport, "websocket");
    assert_eq!(connection.description().era, Era::Modern);
    let tools = connection.list_tools(T).await.unwrap();
    assert!(tools.iter().any(|t| t.name == "add"), "{tools:?}");
    let result = connection
        .call_tool("add", add_args(), CallOptions::default())
        .await
        .unwrap();
    assert!(!result.is_error);
    assert_eq!(result.structured_content, Some(json!({"sum": 42})));
    connection.close().await;
    server.abort();
}

#[tokio::test]
async fn websocket_legacy_era_works_too() {
    let bridge = ws_bridge::serve_ws(WsMode::Fixture).await;
    let options = ConnectOptions {
        era: EraPreference::Legacy,
        ..quick()
    };
    let connection = Connection::connect(&ws_entry(&bridge.url()), &options)
        .await
        .unwrap();
    assert_eq!(connection.description().era, Era::Legacy);
    connection.ping(T).await.unwrap();
}

#[tokio::test]
async fn websocket_upgrade_carries_the_headers_and_the_mcp_subprotocol() {
    let bridge = ws_bridge::serve_ws(WsMode::Fixture).await;
    let connection = Connection::connect(&ws_entry(&bridge.url()), &quick())
        .await
        .unwrap();
    let upgrades = bridge.upgrade_headers();
    assert_eq!(upgrades.len(), 1);
    let header = |name: &str| {
        upgrades[0]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some("Bearer ws-token"));
    assert_eq!(header("x-team").as_deref(), Some("blue"));
    assert_eq!(header("sec-websocket-protocol").as_deref(), Some("mcp"));
    connection.close().await;
}

#[tokio::test]
async fn a_websocket_closed_mid_call_is_a_lost_connection() {
    let bridge = ws_bridge::serve_ws(WsMode::CloseOnCall).await;
    let connection = Connection::connect(&ws_entry(&bridge.url()), &quick())
        .await
        .unwrap();
    let error = connection
        .call_tool("add", add_args(), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::ConnectionLost {
                method: "tools/call",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Connection);
}

#[tokio::test]
async fn websocket_garbage_is_skipped_and_reported_in_the_timeout() {
    let bridge = ws_bridge::serve_ws(WsMode::Garbage).await;
    let recorder = tap();
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(1500),
        tap: Some(recorder.clone()),
        ..quick()
    };
    let started = Instant::now();
    let error = Connection::connect(&ws_entry(&bridge.url()), &options)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    assert!(
        matches!(error, ClientError::ConnectTimeout { after, .. } if after == Duration::from_millis(1500)),
        "{message}"
    );
    assert!(message.contains("not JSON-RPC"), "{message}");
    assert!(
        message.contains(&format!("the first: {GARBAGE_TEXT:?}")),
        "{message}"
    );
    let garbage = recorder.garbage.lock().unwrap();
    assert!(garbage.iter().any(|g| g == GARBAGE_TEXT), "{garbage:?}");
    assert!(
        garbage.iter().any(|g| g == "<a binary frame of 3 bytes>"),
        "{garbage:?}"
    );
}

#[tokio::test]
async fn a_websocket_message_over_16_mib_ends_the_session_with_a_reason() {
    let bridge = ws_bridge::serve_ws(WsMode::Oversized).await;
    let error = Connection::connect(&ws_entry(&bridge.url()), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    assert!(
        message.contains(&format!(
            "the server sent a WebSocket message of {OVERSIZED_MESSAGE_BYTES} bytes, more than the 16777216 we accept"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_websocket_closed_at_once_fails_the_handshake_with_the_reason() {
    let bridge = ws_bridge::serve_ws(WsMode::CloseImmediately).await;
    let started = Instant::now();
    let error = Connection::connect(&ws_entry(&bridge.url()), &quick())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    let message = error.to_string();
    assert!(matches!(error, ClientError::Handshake { .. }), "{message}");
    assert!(
        message.contains("the server closed the WebSocket"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_websocket_upgrade_names_the_status_not_the_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/mcp", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = Vec::new();
            let _ = read_request(&mut socket, &mut buffer).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let error = Connection::connect(&ws_entry(&url), &quick())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert_eq!(
        message,
        "server \"socket\": the MCP handshake failed: the WebSocket upgrade was refused with HTTP 401 Unauthorized"
    );
    server.abort();
}
