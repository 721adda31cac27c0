//! A loopback WebSocket server for tests: per connection it serves the [`Fixture`] by pumping
//! text frames to and from newline-delimited JSON, or it misbehaves on purpose ([`WsMode`]).
//!
//! It records the headers of every upgrade request, so tests can check what the client sent.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use futures::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{ErrorResponse, Request, Response},
    http::{HeaderValue, header::SEC_WEBSOCKET_PROTOCOL},
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use crate::fixture::{FixtureOptions, serve_in_memory};

/// Connections one bridge accepts before it stops listening.
pub const MAX_CONNECTIONS: usize = 64;
/// Frames one connection handles before the bridge hangs up.
pub const MAX_FRAMES_PER_CONNECTION: usize = 10_000;
/// What a [`WsMode::Garbage`] bridge answers to every frame.
pub const GARBAGE_TEXT: &str = "this is not json-rpc";
/// The close reason of a [`WsMode::CloseOnCall`] bridge.
pub const CLOSE_ON_CALL_REASON: &str = "closing during tools/call as asked";
/// The size of a [`WsMode::Oversized`] bridge's answer: one byte more than the 16 MiB a
/// Switchboard client accepts.
pub const OVERSIZED_MESSAGE_BYTES: usize = 16 * 1024 * 1024 + 1;

/// How the bridge behaves on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsMode {
    /// Serve the fixture.
    Fixture,
    /// Answer every frame with a text frame that is not JSON-RPC and a binary frame.
    Garbage,
    /// Accept the upgrade, then close at once.
    CloseImmediately,
    /// Serve the fixture, but close (code 1011) when a `tools/call` arrives.
    CloseOnCall,
    /// Answer the first frame with a text frame of [`OVERSIZED_MESSAGE_BYTES`].
    Oversized,
}

/// The headers of one upgrade request, names lower-cased, in the order received.
pub type UpgradeHeaders = Vec<(String, String)>;

/// A running bridge; dropping it stops the server and its connections.
#[derive(Debug)]
pub struct WsBridge {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    upgrades: Arc<Mutex<Vec<UpgradeHeaders>>>,
}

impl WsBridge {
    /// `ws://127.0.0.1:<port>/mcp`.
    pub fn url(&self) -> String {
        format!("ws://{}/mcp", self.addr)
    }

    /// The headers of every upgrade request so far.
    pub fn upgrade_headers(&self) -> Vec<UpgradeHeaders> {
        self.upgrades.lock().unwrap().clone()
    }
}

impl Drop for WsBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve the fixture over WebSocket on a loopback port. Abort the handle to stop it.
pub async fn serve_ws_fixture() -> (SocketAddr, JoinHandle<()>) {
    let (addr, task, _upgrades) = start(WsMode::Fixture).await;
    (addr, task)
}

/// Start a bridge in the given mode.
pub async fn serve_ws(mode: WsMode) -> WsBridge {
    let (addr, task, upgrades) = start(mode).await;
    WsBridge {
        addr,
        task,
        upgrades,
    }
}

async fn start(mode: WsMode) -> (SocketAddr, JoinHandle<()>, Arc<Mutex<Vec<UpgradeHeaders>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upgrades = Arc::new(Mutex::new(Vec::new()));
    let recorded = upgrades.clone();
    let task = tokio::spawn(async move {
        // The connections live in this set, so aborting the server task ends them too.
        let mut connections = JoinSet::new();
        for _ in 0..MAX_CONNECTIONS {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            connections.spawn(serve_connection(stream, mode, recorded.clone()));
        }
        while connections.join_next().await.is_some() {}
    });
    (addr, task, upgrades)
}

async fn serve_connection(
    stream: TcpStream,
    mode: WsMode,
    upgrades: Arc<Mutex<Vec<UpgradeHeaders>>>,
) {
    let _ = stream.set_nodelay(true);
    // The callback's signature is tungstenite's, large error type included.
    #[allow(clippy::result_large_err)]
    let record = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let headers: UpgradeHeaders = request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let wants_mcp = headers.iter().any(|(name, value)| {
            name == "sec-websocket-protocol" && value.split(',').any(|p| p.trim() == "mcp")
        });
        upgrades.lock().unwrap().push(headers);
        if wants_mcp {
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("mcp"));
        }
        Ok(response)
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
        return;
    };
    match mode {
        WsMode::CloseImmediately => {
            let _ = socket.close(None).await;
        }
        WsMode::Garbage => {
            for _ in 0..MAX_FRAMES_PER_CONNECTION {
                match socket.next().await {
                    Some(Ok(Message::Text(_))) => {
                        let _ = socket.send(Message::text(GARBAGE_TEXT)).await;
                        let _ = socket.send(Message::binary(vec![0u8, 1, 2])).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        }
        WsMode::Oversized => {
            if let Some(Ok(_)) = socket.next().await {
                let huge = "x".repeat(OVERSIZED_MESSAGE_BYTES);
                let _ = socket.send(Message::text(huge)).await;
            }
        }
        WsMode::Fixture | WsMode::CloseOnCall => {
            pump_fixture(socket, mode == WsMode::CloseOnCall).await;
        }
    }
}

/// Frames from the client become lines for the fixture; its lines become frames.
async fn pump_fixture(socket: tokio_tungstenite::WebSocketStream<TcpStream>, close_on_call: bool) {
    let (fixture_out, mut fixture_in) = serve_in_memory(FixtureOptions::default());
    let mut fixture_lines = BufReader::new(fixture_out).lines();
    let (mut sink, mut frames) = socket.split();
    for _ in 0..MAX_FRAMES_PER_CONNECTION {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if close_on_call && text.as_str().contains("\"tools/call\"") {
                        let frame = CloseFrame {
                            code: CloseCode::Error,
                            reason: CLOSE_ON_CALL_REASON.into(),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        return;
                    }
                    let line = format!("{}\n", text.as_str());
                    if fixture_in.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            line = fixture_lines.next_line() => match line {
                Ok(Some(line)) => {
                    if sink.send(Message::text(line)).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = sink.close().await;
                    return;
                }
            },
        }
    }
}
