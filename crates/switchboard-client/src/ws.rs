//! The WebSocket transport: one JSON-RPC message per text frame, over `ws://` or `wss://`.
//!
//! The upgrade request asks for the `mcp` subprotocol and carries the configured headers. Like
//! stdio, a WebSocket is bidirectional, so both protocol eras work over it. Frames that are not
//! JSON-RPC (binary frames, other text) are recorded and skipped, as stdio garbage is; a close
//! frame ends the session and its code and reason go into the error.

use std::{borrow::Cow, sync::Arc, time::Duration};

use futures::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use indexmap::IndexMap;
use rmcp::{
    service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use switchboard_config::{Secret, ServerName};
use tokio::{net::TcpStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest,
        error::{CapacityError, ProtocolError, SubProtocolError},
        http::{HeaderName, HeaderValue, header::SEC_WEBSOCKET_PROTOCOL},
        protocol::WebSocketConfig,
    },
};

use crate::{
    MAX_STDIO_LINE_BYTES, error::ClientError, model::Direction, sse::StreamDiagnostics,
    tap::WireTap,
};

/// Largest message (and frame) we accept, the same bound as a stdio line.
pub(crate) const MAX_WEBSOCKET_MESSAGE_BYTES: usize = MAX_STDIO_LINE_BYTES;
/// The subprotocol an MCP client asks for in the upgrade request.
const MCP_SUBPROTOCOL: &str = "mcp";
/// Outgoing messages queued for the writer task before `send` waits.
const OUTGOING_QUEUE: usize = 64;
/// How long closing waits for our close frame to be written.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Headers the WebSocket handshake sets itself; configuring one would break the upgrade.
fn is_handshake_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("sec-websocket-") || matches!(name, "host" | "connection" | "upgrade")
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebSocketSendError {
    #[error("the message could not be serialised")]
    Serialize(#[from] serde_json::Error),
    #[error("the WebSocket is closed")]
    Closed,
}

/// A session over a WebSocket.
pub(crate) struct WebSocketTransport {
    server: Arc<str>,
    incoming: SplitStream<Socket>,
    outgoing: Option<mpsc::Sender<Message>>,
    writer: JoinHandle<()>,
    diagnostics: Arc<StreamDiagnostics>,
    tap: Option<Arc<dyn WireTap>>,
}

impl WebSocketTransport {
    /// Opens the WebSocket (within `timeout`), asking for the `mcp` subprotocol.
    pub(crate) async fn connect(
        name: &ServerName,
        url: &reqwest::Url,
        headers: &IndexMap<String, Secret>,
        timeout: Duration,
        tap: Option<Arc<dyn WireTap>>,
    ) -> Result<(Self, Arc<StreamDiagnostics>), ClientError> {
        let invalid = |detail: String| ClientError::InvalidHttpSetting {
            server: name.clone(),
            detail,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| invalid(format!("the WebSocket URL is not usable: {e}")))?;
        for (key, value) in headers {
            let header = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| invalid(format!("{key:?} is not a valid HTTP header name")))?;
            if is_handshake_header(&header) {
                return Err(invalid(format!(
                    "header {key:?} is set by the WebSocket handshake and cannot be configured"
                )));
            }
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                invalid(format!("the value of header {key:?} is not valid in HTTP"))
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(header, value);
        }
        request.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(MCP_SUBPROTOCOL),
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WEBSOCKET_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_WEBSOCKET_MESSAGE_BYTES));
        // TCP_NODELAY: small JSON-RPC frames must not wait for delayed ACKs.
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, None);
        let socket = match tokio::time::timeout(timeout, connecting).await {
            Err(_elapsed) => {
                return Err(ClientError::ConnectTimeout {
                    server: name.clone(),
                    after: timeout,
                    diagnostics: "; the WebSocket upgrade got no answer".to_owned(),
                });
            }
            Ok(Err(error)) => {
                return Err(ClientError::Handshake {
                    server: name.clone(),
                    reason: describe_upgrade_error(&error),
                    diagnostics: String::new(),
                });
            }
            Ok(Ok((socket, _response))) => socket,
        };
        let server: Arc<str> = Arc::from(name.as_str());
        let diagnostics = Arc::new(StreamDiagnostics::default());
        let (sink, incoming) = socket.split();
        let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
        let writer = tokio::spawn(write_frames(sink, queue));
        Ok((
            WebSocketTransport {
                server,
                incoming,
                outgoing: Some(outgoing),
                writer,
                diagnostics: diagnostics.clone(),
                tap,
            },
            diagnostics,
        ))
    }
}

fn describe_upgrade_error(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Http(response) => format!(
            "the WebSocket upgrade was refused with HTTP {}",
            response.status()
        ),
        tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        )) => format!("the server did not accept the \"{MCP_SUBPROTOCOL}\" WebSocket subprotocol"),
        tungstenite::Error::Io(error) => format!("could not open the WebSocket: {error}"),
        tungstenite::Error::Tls(error) => format!("the TLS handshake failed: {error}"),
        other => format!("the WebSocket upgrade failed: {other}"),
    }
}

/// Writes queued frames, flushing once per batch of what is already queued. When the queue
/// closes, says goodbye with a close frame.
async fn write_frames(mut sink: SplitSink<Socket, Message>, mut queue: mpsc::Receiver<Message>) {
    while let Some(frame) = queue.recv().await {
        if sink.feed(frame).await.is_err() {
            return;
        }
        while let Ok(more) = queue.try_recv() {
            if sink.feed(more).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

impl Transport<RoleClient> for WebSocketTransport {
    type Error = WebSocketSendError;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WebSocket")
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let text = serde_json::to_string(&item);
        if let (Ok(json), Some(tap)) = (&text, &self.tap) {
            tap.message(&self.server, Direction::Outgoing, json);
        }
        let outgoing = self.outgoing.clone();
        async move {
            let text = text?;
            let outgoing = outgoing.ok_or(WebSocketSendError::Closed)?;
            outgoing
                .send(Message::text(text))
                .await
                .map_err(|_| WebSocketSendError::Closed)
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let frame = match self.incoming.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    self.diagnostics.record_end(describe_read_error(&error));
                    return None;
                }
                None => {
                    self.diagnostics
                        .record_end("the WebSocket closed without a close frame");
                    return None;
                }
            };
            let text = match frame {
                Message::Text(text) => text,
                Message::Binary(bytes) => {
                    let note = format!("<a binary frame of {} bytes>", bytes.len());
                    self.skip(&note);
                    continue;
                }
                Message::Close(frame) => {
                    let why = match frame {
                        Some(frame) if frame.reason.is_empty() => format!(
                            "the server closed the WebSocket (code {})",
                            u16::from(frame.code)
                        ),
                        Some(frame) => format!(
                            "the server closed the WebSocket (code {}: {:?})",
                            u16::from(frame.code),
                            clip_reason(frame.reason.as_str())
                        ),
                        None => "the server closed the WebSocket".to_owned(),
                    };
                    self.diagnostics.record_end(why);
                    return None;
                }
                // Pings are answered by tungstenite itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(text.as_str()) {
                Ok(message) => {
                    if let Some(tap) = &self.tap {
                        tap.message(&self.server, Direction::Incoming, text.as_str());
                    }
                    return Some(message);
                }
                Err(error) => {
                    tracing::debug!(server = %self.server, %error, "skipping a WebSocket frame that is not JSON-RPC");
                    self.skip(text.as_str());
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Closing the queue makes the writer send a close frame.
        self.outgoing.take();
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut self.writer).await;
        Ok(())
    }
}

impl WebSocketTransport {
    fn skip(&self, text: &str) {
        self.diagnostics.record_garbage(text);
        if let Some(tap) = &self.tap {
            tap.garbage(&self.server, text);
        }
    }
}

/// A close reason is at most 123 bytes, but keep it to one short phrase anyway.
fn clip_reason(reason: &str) -> &str {
    match reason.char_indices().nth(120) {
        Some((cut, _)) => &reason[..cut],
        None => reason,
    }
}

fn describe_read_error(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, .. }) => format!(
            "the server sent a WebSocket message of {size} bytes, more than the {MAX_WEBSOCKET_MESSAGE_BYTES} we accept"
        ),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "the WebSocket was reset without a close frame".to_owned()
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the WebSocket is closed".to_owned()
        }
        other => format!("reading the WebSocket failed: {other}"),
    }
}

impl Drop for WebSocketTransport {
    fn drop(&mut self) {
        self.writer.abort();
    }
}
