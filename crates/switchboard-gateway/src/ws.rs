//! The WebSocket front at `/ws`: one JSON-RPC message per text frame (subprotocol `mcp`), one
//! session per connection, in either era.
//!
//! A connection is bridged to the server kit's newline-delimited session loop, exactly like a
//! stdio client: frames in become lines, lines out become frames. So a legacy session gets its
//! list changes unasked, a 2026-07-28 client opens `subscriptions/listen`, and
//! `notifications/cancelled` cancels, with no WebSocket-specific dispatch. A raw newline in a
//! frame can only be JSON whitespace (JSON strings cannot hold one), so it is replaced by a
//! space before the frame is passed on as one line.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use switchboard_server::{Caller, HttpConfig, Server, check_host_and_origin, serve_session};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    sync::Semaphore,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message, handshake::derive_accept_key, protocol::Role, protocol::WebSocketConfig,
    },
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{front::too_deep, metrics as m};

/// The subprotocol of MCP over WebSocket.
pub const SUBPROTOCOL: &str = "mcp";
/// Bytes buffered between a connection and its session loop, each way.
const BRIDGE_BUFFER: usize = 64 * 1024;

/// What the `/ws` handler shares.
#[derive(Clone)]
pub struct WsFront {
    pub server: Server,
    pub http: HttpConfig,
    pub max_json_depth: usize,
    /// A connection that sends nothing (not even a ping) for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Bounds the open WebSocket sessions (with legacy HTTP sessions, `max_sessions` each).
    pub sessions: Arc<Semaphore>,
    /// Owns every connection's task.
    pub tasks: TaskTracker,
    /// Cancelled when the gateway stops: open connections are closed.
    pub stopping: CancellationToken,
}

impl std::fmt::Debug for WsFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsFront")
            .field("open", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// `GET /ws`: check the handshake, answer 101, and bridge the connection to a session.
pub async fn websocket(State(front): State<WsFront>, request: Request) -> Response {
    let headers = request.headers();
    if let Err(reason) = check_host_and_origin(&front.http, headers) {
        return refuse(StatusCode::FORBIDDEN, reason);
    }
    if !header_has(headers, header::UPGRADE, "websocket")
        || !header_has(headers, header::CONNECTION, "upgrade")
    {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "/ws speaks WebSocket: send Upgrade: websocket",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    let accept = derive_accept_key(key.as_bytes());
    let wants_mcp = header_has(headers, header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
    let Ok(permit) = front.sessions.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open WebSocket sessions; try again later",
        );
    };
    let caller = request.extensions().get::<Caller>().cloned().map(Arc::new);
    let upgrade = hyper::upgrade::on(request);
    let config = WebSocketConfig::default()
        .max_message_size(Some(front.http.max_body_bytes))
        .max_frame_size(Some(front.http.max_body_bytes));
    let WsFront {
        server,
        max_json_depth,
        idle_timeout,
        tasks,
        stopping,
        ..
    } = front;
    tasks.spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "the WebSocket upgrade failed");
                return;
            }
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        tokio::select! {
            () = bridge(server, socket, caller, max_json_depth, idle_timeout) => {}
            () = stopping.cancelled() => {}
        }
        drop(permit);
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let answer = response.headers_mut();
    answer.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    answer.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        answer.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if wants_mcp {
        answer.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

/// Pass frames to a session loop as lines, and its lines back as frames, until either side
/// ends.
async fn bridge<S>(
    server: Server,
    socket: WebSocketStream<S>,
    caller: Option<Arc<Caller>>,
    max_json_depth: usize,
    idle_timeout: std::time::Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (mut sink, mut frames) = socket.split();
    let (session_side, bridge_side) = tokio::io::duplex(BRIDGE_BUFFER);
    let (session_read, session_write) = tokio::io::split(session_side);
    let (bridge_read, mut bridge_write) = tokio::io::split(bridge_side);
    let (refusals, mut refused) = tokio::sync::mpsc::channel::<String>(8);

    let session = serve_session(server, session_read, session_write, caller);
    let inbound = async move {
        // Silence for `idle_timeout` ends the connection, like an idle legacy session.
        while let Ok(Some(frame)) = tokio::time::timeout(idle_timeout, frames.next()).await {
            let text = match frame {
                Ok(Message::Text(text)) => text.as_str().to_owned(),
                Ok(Message::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            };
            if let Some(depth) = too_deep(text.as_bytes(), max_json_depth) {
                metrics::counter!(m::REJECTED, "reason" => "too_deep").increment(1);
                let error = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {
                    "code": -32600,
                    "message": format!("the message nests JSON {depth} levels deep; at most {max_json_depth} are accepted"),
                }});
                if refusals.send(error.to_string()).await.is_err() {
                    break;
                }
                continue;
            }
            let mut line = text.replace('\n', " ").into_bytes();
            line.push(b'\n');
            if bridge_write.write_all(&line).await.is_err() {
                break;
            }
        }
        // End of input for the session: it answers what is running, then ends.
        let _ = bridge_write.shutdown().await;
        drop(refusals);
    };
    let outbound = async move {
        let mut lines = BufReader::new(bridge_read).lines();
        loop {
            let message = tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => line,
                    Ok(None) | Err(_) => break,
                },
                Some(refusal) = refused.recv() => refusal,
            };
            if sink.send(Message::text(message)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let (served, (), ()) = tokio::join!(session, inbound, outbound);
    if let Err(error) = served {
        tracing::debug!(%error, "a WebSocket session ended with an error");
    }
}
